//! Where MFA codes come from: `--mfa-code`, a command (`--mfa-command` / the profile's `mfa_process`, run by
//! `sh -c`, its stdout is the code), or a prompt on the controlling terminal (`/dev/tty`: never stdin or
//! stdout, which `credential_process` callers capture). A code already sent for the device is never returned:
//! a command is asked again until it shows the next code, a person is asked for the next one.

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use time::OffsetDateTime;

use crate::cache::Cache;

/// How long to wait for a command to show a code not sent yet (a TOTP step is 30 s; allow two).
const COMMAND_WAIT: Duration = Duration::from_secs(70);

/// Prompts before giving up on a person typing codes that cannot be used.
const MAX_PROMPTS: usize = 3;

/// A source of MFA codes.
#[derive(Debug, Clone)]
pub enum CodeSource {
    /// `--mfa-code`: one code, used once.
    Given(String),
    /// A shell command printing the code.
    Command(String),
    /// The terminal.
    Terminal,
}

impl CodeSource {
    /// Whether a second code can be had after a refusal.
    pub fn can_retry(&self) -> bool {
        !matches!(self, Self::Given(_))
    }
}

/// Normalises a code as typed or printed (spaces removed); `None` unless six digits.
pub fn normalise_code(raw: &str) -> Option<String> {
    let code: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
    (code.len() == 6 && code.chars().all(|c| c.is_ascii_digit())).then_some(code)
}

/// Runs `cmd` with `sh -c` and returns its normalised stdout.
fn run_command(cmd: &str) -> Result<String> {
    let out = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run the MFA command {cmd:?}"))?;
    if !out.status.success() {
        bail!("the MFA command {cmd:?} failed ({})", out.status);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    normalise_code(&text)
        .with_context(|| format!("the MFA command {cmd:?} did not print a six-digit code"))
}

/// The controlling terminal, opened for one prompt.
struct Tty {
    reader: BufReader<std::fs::File>,
    writer: std::fs::File,
}

impl Tty {
    fn open() -> Result<Self> {
        let open = || {
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/tty")
        };
        let file = open().context(
            "no terminal to ask for the MFA code on: give it with --mfa-code, or a command that prints \
             it with --mfa-command or mfa_process in the profile",
        )?;
        let writer = file.try_clone().context("/dev/tty")?;
        Ok(Self {
            reader: BufReader::new(file),
            writer,
        })
    }

    fn say(&mut self, text: &str) -> Result<()> {
        self.writer
            .write_all(text.as_bytes())
            .and_then(|()| self.writer.flush())
            .context("writing to the terminal")
    }

    fn ask(&mut self, prompt: &str) -> Result<String> {
        self.say(prompt)?;
        let mut line = String::new();
        let n = self
            .reader
            .read_line(&mut line)
            .context("reading from the terminal")?;
        if n == 0 {
            bail!("no MFA code entered (end of input on the terminal)");
        }
        Ok(line.trim().to_owned())
    }
}

/// Tells the person something: on the terminal when there is one, else on stderr.
pub fn notice(text: &str) {
    let shown = Tty::open()
        .and_then(|mut t| t.say(&format!("stsd-creds: {text}\n")))
        .is_ok();
    if !shown {
        eprintln!("stsd-creds: {text}");
    }
}

/// A code for `serial` from `source` that was not sent before (see the module docs); `profile` is named in
/// the prompt.
///
/// # Errors
/// A given code already sent or malformed, a failing command or one that keeps showing a sent code, no
/// terminal, no usable code typed after three prompts.
pub fn obtain_code(
    source: &CodeSource,
    serial: &str,
    cache: &Cache,
    profile: &str,
) -> Result<String> {
    match source {
        CodeSource::Given(raw) => {
            let code = normalise_code(raw)
                .with_context(|| format!("--mfa-code {raw:?} is not a six-digit code"))?;
            if cache.code_was_used(serial, &code, OffsetDateTime::now_utc())? {
                bail!(
                    "the MFA code {code} was already sent for {serial}; a code works once: give the next \
                     one"
                );
            }
            Ok(code)
        }
        CodeSource::Command(cmd) => {
            let start = Instant::now();
            let mut told = false;
            loop {
                let code = run_command(cmd)?;
                if !cache.code_was_used(serial, &code, OffsetDateTime::now_utc())? {
                    return Ok(code);
                }
                if start.elapsed() > COMMAND_WAIT {
                    bail!(
                        "the MFA command {cmd:?} keeps printing {code}, a code already sent for {serial}"
                    );
                }
                if !told {
                    eprintln!(
                        "stsd-creds: the MFA command shows a code already used; waiting for the next one"
                    );
                    told = true;
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        CodeSource::Terminal => {
            let mut tty = Tty::open()?;
            for _ in 0..MAX_PROMPTS {
                let typed = tty.ask(&format!("MFA code for {serial} (profile {profile}): "))?;
                let Some(code) = normalise_code(&typed) else {
                    tty.say("That is not a six-digit code.\n")?;
                    continue;
                };
                if cache.code_was_used(serial, &code, OffsetDateTime::now_utc())? {
                    tty.say(
                        "That code was already used (a code works once): wait for the next one.\n",
                    )?;
                    continue;
                }
                return Ok(code);
            }
            bail!("no usable MFA code entered");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits() {
        assert_eq!(normalise_code(" 123 456\n").as_deref(), Some("123456"));
        assert_eq!(normalise_code("012345").as_deref(), Some("012345"));
        assert!(normalise_code("12345").is_none());
        assert!(normalise_code("1234567").is_none());
        assert!(normalise_code("12345a").is_none());
        assert!(!CodeSource::Given("1".into()).can_retry());
        assert!(CodeSource::Terminal.can_retry());
    }

    #[test]
    fn command_output_is_the_code() {
        assert_eq!(run_command("echo 654321").expect("runs"), "654321");
        assert!(run_command("echo nope").is_err());
        assert!(run_command("exit 3").is_err());
    }
}
