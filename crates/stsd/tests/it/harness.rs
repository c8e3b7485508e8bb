//! Spawning the real `stsd` binary: temporary data directories, start-up (waiting for the listening line),
//! graceful stop (SIGTERM) and start-ups that are expected to fail.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::sign::Creds;

/// Root access key id given to most servers through `STSD_ROOT_ACCESS_KEY_ID`.
pub const ROOT_ID: &str = "AKIASTSDTESTROOTKEY1";
/// Root secret given to most servers through `STSD_ROOT_SECRET_ACCESS_KEY`.
pub const ROOT_SECRET: &str = "stsdTestRootSecret/0123456789+abcdefghijk";

/// How long a server may take to print its listening line (or to exit when it is expected to fail).
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a server may take to exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// A directory under the system temp dir, removed on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// A new, empty, uniquely named directory.
    pub fn new(tag: &str) -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let path = std::env::temp_dir().join(format!(
            "stsd-it-{tag}-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&path).unwrap();
        TempDir { path }
    }

    /// The data directory used inside it (created by the server itself).
    pub fn data_dir(&self) -> PathBuf {
        self.path.join("data")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// How the root credentials are configured.
#[derive(Debug, Clone)]
pub enum Root {
    /// `STSD_ROOT_ACCESS_KEY_ID` / `STSD_ROOT_SECRET_ACCESS_KEY` set to these.
    Env(String, String),
    /// Neither variable set (the server generates or reuses the stored key).
    Unset,
}

/// Start options.
#[derive(Debug, Clone)]
pub struct Opts {
    /// Root credentials in the environment.
    pub root: Root,
    /// Extra command line arguments after `serve --listen .. --data-dir ..`.
    pub args: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            root: Root::Env(ROOT_ID.to_owned(), ROOT_SECRET.to_owned()),
            args: Vec::new(),
            env: Vec::new(),
        }
    }
}

impl Opts {
    /// Default options plus command line arguments.
    pub fn args(args: &[&str]) -> Self {
        Opts {
            args: args.iter().map(|s| (*s).to_owned()).collect(),
            ..Opts::default()
        }
    }
}

struct Spawned {
    child: Child,
    lines: mpsc::Receiver<String>,
    stdout_thread: Option<JoinHandle<()>>,
    stderr: Arc<Mutex<String>>,
    stderr_thread: Option<JoinHandle<()>>,
}

fn spawn(data_dir: &Path, opts: &Opts) -> Spawned {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stsd"));
    cmd.arg("serve")
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--data-dir")
        .arg(data_dir)
        .args(&opts.args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Nothing from the test runner's environment may configure the server.
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("STSD_") {
            cmd.env_remove(&k);
        }
    }
    if let Root::Env(id, secret) = &opts.root {
        cmd.env("STSD_ROOT_ACCESS_KEY_ID", id)
            .env("STSD_ROOT_SECRET_ACCESS_KEY", secret);
    }
    for (k, v) in &opts.env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawning stsd");
    let stdout = child.stdout.take().unwrap();
    let stderr_pipe = child.stderr.take().unwrap();
    let (tx, lines) = mpsc::channel();
    let stdout_thread = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                // Nobody listens any more: keep draining so the server never blocks on stdout.
                continue;
            }
        }
    });
    let stderr = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&stderr);
    let stderr_thread = std::thread::spawn(move || {
        let mut r = BufReader::new(stderr_pipe);
        let mut buf = [0u8; 4096];
        loop {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => sink
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n])),
            }
        }
    });
    Spawned {
        child,
        lines,
        stdout_thread: Some(stdout_thread),
        stderr,
        stderr_thread: Some(stderr_thread),
    }
}

/// Parses `stsd listening on <addr> (account <12 digits>)`.
fn parse_listening(line: &str) -> Option<(SocketAddr, String)> {
    let rest = line.strip_prefix("stsd listening on ")?;
    let (addr, rest) = rest.split_once(" (account ")?;
    let account = rest.strip_suffix(')')?;
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((addr.parse().ok()?, account.to_owned()))
}

/// Sends SIGTERM to `pid` with the `kill` command.
fn sigterm(pid: u32) {
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
        .expect("running kill");
    assert!(status.success(), "kill -TERM {pid} failed: {status}");
}

/// Waits for `child` to exit, at most `timeout`.
fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A running `stsd serve`. Stopped with SIGTERM (then SIGKILL if needed) on drop.
pub struct Server {
    child: Option<Child>,
    /// The address it listens on.
    pub addr: SocketAddr,
    /// The account id from the listening line.
    pub account: String,
    /// What the server printed on stdout before the listening line.
    pub stdout_before: Vec<String>,
    /// The data directory.
    pub data_dir: PathBuf,
    /// The root credentials the test knows (from the environment, or read from `root-credentials`).
    pub root: Creds,
    stderr: Arc<Mutex<String>>,
    threads: Vec<JoinHandle<()>>,
    own_dir: Option<TempDir>,
}

/// How a server process ended (a start-up expected to fail, or a stop).
pub struct Failed {
    /// Exit status.
    pub status: ExitStatus,
    /// Everything written on stderr.
    pub stderr: String,
}

impl Server {
    /// A server with default options in a fresh data directory of its own.
    pub fn start() -> Server {
        Server::start_with(Opts::default())
    }

    /// A server with `opts` in a fresh data directory of its own.
    pub fn start_with(opts: Opts) -> Server {
        let dir = TempDir::new("srv");
        let mut s = Server::start_in(&dir.data_dir(), &opts);
        s.own_dir = Some(dir);
        s
    }

    /// A server on `data_dir` (which may hold an earlier server's data).
    pub fn start_in(data_dir: &Path, opts: &Opts) -> Server {
        let mut sp = spawn(data_dir, opts);
        let deadline = Instant::now() + START_TIMEOUT;
        let mut before = Vec::new();
        let (addr, account) = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match sp.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(found) = parse_listening(&line) {
                        break found;
                    }
                    before.push(line);
                }
                Err(e) => {
                    let _ = sp.child.kill();
                    let status = sp.child.wait().ok();
                    if let Some(t) = sp.stderr_thread.take() {
                        let _ = t.join();
                    }
                    panic!(
                        "stsd did not print its listening line ({e:?}); exit {status:?}\nstdout: {before:?}\nstderr:\n{}",
                        sp.stderr.lock().unwrap()
                    );
                }
            }
        };
        let root = match &opts.root {
            Root::Env(id, secret) => Creds::new(id, secret),
            // Generated (or kept from an earlier generation): the file has them. Otherwise the stored key came
            // from the environment of an earlier start, which the tests always give as ROOT_ID/ROOT_SECRET.
            Root::Unset if data_dir.join("root-credentials").exists() => {
                read_root_credentials(data_dir)
            }
            Root::Unset => Creds::new(ROOT_ID, ROOT_SECRET),
        };
        let threads = [sp.stdout_thread.take(), sp.stderr_thread.take()]
            .into_iter()
            .flatten()
            .collect();
        Server {
            child: Some(sp.child),
            addr,
            account,
            stdout_before: before,
            data_dir: data_dir.to_owned(),
            root,
            stderr: sp.stderr,
            threads,
            own_dir: None,
        }
    }

    /// Starts a server on `data_dir` that must refuse to start: returns its exit status and stderr.
    pub fn start_failing(data_dir: &Path, opts: &Opts) -> Failed {
        let mut sp = spawn(data_dir, opts);
        let Some(status) = wait_timeout(&mut sp.child, START_TIMEOUT) else {
            let _ = sp.child.kill();
            let _ = sp.child.wait();
            panic!("stsd was expected to refuse to start but is still running");
        };
        for t in [sp.stdout_thread.take(), sp.stderr_thread.take()]
            .into_iter()
            .flatten()
        {
            t.join().unwrap();
        }
        let stdout: Vec<String> = sp.lines.try_iter().collect();
        assert!(
            !stdout.iter().any(|l| parse_listening(l).is_some()),
            "stsd was expected to refuse to start but listened: {stdout:?}"
        );
        let stderr = sp.stderr.lock().unwrap().clone();
        Failed { status, stderr }
    }

    /// Starts a server on `data_dir` and sends SIGTERM the moment its listening line is read, through a
    /// shell forked in advance (`read; kill -TERM PID`), so the signal follows the readiness announcement
    /// as closely as a process supervisor's would. Returns the exit status and stderr.
    pub fn start_then_sigterm_at_once(data_dir: &Path, opts: &Opts) -> Failed {
        let mut sp = spawn(data_dir, opts);
        let mut killer = Command::new("sh")
            .arg("-c")
            .arg(format!("read _ && kill -TERM {}", sp.child.id()))
            .stdin(Stdio::piped())
            .spawn()
            .expect("spawning sh");
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match sp.lines.recv_timeout(left) {
                Ok(line) if parse_listening(&line).is_some() => break,
                Ok(_) => {}
                Err(e) => {
                    let _ = sp.child.kill();
                    let _ = killer.kill();
                    let _ = killer.wait();
                    panic!("stsd did not print its listening line: {e:?}");
                }
            }
        }
        killer.stdin.take().unwrap().write_all(b"go\n").unwrap();
        assert!(killer.wait().unwrap().success(), "kill -TERM failed");
        let Some(status) = wait_timeout(&mut sp.child, STOP_TIMEOUT) else {
            let _ = sp.child.kill();
            let _ = sp.child.wait();
            panic!("stsd did not exit within {STOP_TIMEOUT:?} of SIGTERM");
        };
        for t in [sp.stdout_thread.take(), sp.stderr_thread.take()]
            .into_iter()
            .flatten()
        {
            t.join().unwrap();
        }
        let stderr = sp.stderr.lock().unwrap().clone();
        Failed { status, stderr }
    }

    /// `http://ADDR`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The value of a counter, or of a histogram's `_count`, in `/metrics` (0 while the series is absent).
    pub fn metric(&self, series: &str) -> u64 {
        let r = crate::raw::send(self.addr, "GET", "/metrics", &[], b"");
        assert_eq!(r.status, 200);
        r.body
            .lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or(0)
    }

    /// What the server wrote on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Sends SIGTERM and waits for the exit; returns the exit status.
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("server already stopped");
        sigterm(child.id());
        let Some(status) = wait_timeout(&mut child, STOP_TIMEOUT) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("stsd did not exit within {STOP_TIMEOUT:?} of SIGTERM");
        };
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        status
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if matches!(child.try_wait(), Ok(None)) {
                let _ = Command::new("kill")
                    .arg("-TERM")
                    .arg(child.id().to_string())
                    .status();
                if wait_timeout(&mut child, Duration::from_secs(5)).is_none() {
                    let _ = child.kill();
                }
            }
            let _ = child.wait();
        }
        // `own_dir` is removed after the child is gone (fields drop after this body).
    }
}

/// Reads `DATA_DIR/root-credentials` (INI profile `[stsd-root]`).
pub fn read_root_credentials(data_dir: &Path) -> Creds {
    let text = std::fs::read_to_string(data_dir.join("root-credentials")).unwrap();
    let ini = parse_ini_profile(&text, "stsd-root");
    let id = ini
        .iter()
        .find(|(k, _)| k == "aws_access_key_id")
        .map(|(_, v)| v.clone())
        .expect("aws_access_key_id in root-credentials");
    let secret = ini
        .iter()
        .find(|(k, _)| k == "aws_secret_access_key")
        .map(|(_, v)| v.clone())
        .expect("aws_secret_access_key in root-credentials");
    Creds::new(&id, &secret)
}

/// The `key = value` pairs of INI section `[section]` (panics if the section is absent).
pub fn parse_ini_profile(text: &str, section: &str) -> Vec<(String, String)> {
    let header = format!("[{section}]");
    let mut in_section = false;
    let mut found = false;
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            in_section = line == header;
            found |= in_section;
            continue;
        }
        if in_section && let Some((k, v)) = line.split_once('=') {
            out.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    assert!(found, "no {header} section in:\n{text}");
    out
}

/// Unix time now, in seconds.
pub fn unix_now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

/// `SystemTime` for unix time `now + offset` seconds (keeps the sub-second part of now).
pub fn time_with_offset(offset_secs: i64) -> SystemTime {
    let now = SystemTime::now();
    let d = Duration::from_secs(offset_secs.unsigned_abs());
    if offset_secs >= 0 { now + d } else { now - d }
}

/// `YYYYMMDDTHHMMSSZ` of a unix time (as SigV4 and AWS's skew messages write it).
pub fn amz_date(unix: i64) -> String {
    let s = aws_smithy_types::DateTime::from_secs(unix)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap();
    s.replace(['-', ':'], "")
}

/// The account id encoded in an AWS-style key id (wire reference §4), decoded independently of the server.
pub fn account_from_key_id(id: &str) -> u64 {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bits: u64 = 0;
    for c in id.as_bytes()[4..14].iter() {
        let v = ALPHABET.iter().position(|a| a == c).expect("base32 char");
        bits = (bits << 5) | v as u64;
    }
    // 10 chars = 50 bits; the first 6 bytes are the top 48.
    let x = bits >> 2;
    (x & 0x7fff_ffff_ff80) >> 7
}
