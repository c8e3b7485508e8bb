//! The credentials file shared by `stsd-loadgen setup` (writer) and `stsd-loadgen run` (reader).
//!
//! Plain text, one record a line, fields separated by one space (no field contains a space):
//!
//! ```text
//! user ACCESS_KEY_ID SECRET
//! session ACCESS_KEY_ID SECRET TOKEN
//! root ACCESS_KEY_ID SECRET
//! mfa ACCESS_KEY_ID SECRET SERIAL BASE32_SEED LAST_USED_STEP
//! ```
//!
//! It holds secrets of a throw-away benchmark server: written 0600 into the run's temporary directory.

use crate::request::Creds;
use anyhow::{Context, bail};
use std::path::Path;

/// An IAM user's key with an enabled virtual MFA device.
#[derive(Clone)]
pub struct MfaUser {
    /// The user's long-term key.
    pub creds: Creds,
    /// The device's serial number (ARN).
    pub serial: String,
    /// The device's base32 seed.
    pub seed: String,
    /// The last TOTP step the server accepted for the device (EnableMFADevice's second code).
    pub last_step: i64,
}

/// Everything a run needs.
#[derive(Clone, Default)]
pub struct CredsFile {
    /// An IAM user's long-term key (workloads a and c).
    pub user: Option<Creds>,
    /// Session credentials of that user from GetSessionToken (workload b).
    pub session: Option<Creds>,
    /// Users with MFA devices (workload d).
    pub mfa: Vec<MfaUser>,
    /// The ARN of a role that trusts `user` (workload e).
    pub role: Option<String>,
    /// The account root's key, which signed the setup (the IAM write workloads h and i).
    pub root: Option<Creds>,
}

impl CredsFile {
    /// The file's text.
    pub fn to_text(&self) -> String {
        let mut out = String::from("# stsd-loadgen credentials (benchmark server only)\n");
        if let Some(u) = &self.user {
            out.push_str(&format!(
                "user {} {}\n",
                u.access_key_id, u.secret_access_key
            ));
        }
        if let Some(s) = &self.session {
            out.push_str(&format!(
                "session {} {} {}\n",
                s.access_key_id,
                s.secret_access_key,
                s.session_token.as_deref().unwrap_or("-")
            ));
        }
        if let Some(r) = &self.root {
            out.push_str(&format!(
                "root {} {}\n",
                r.access_key_id, r.secret_access_key
            ));
        }
        if let Some(r) = &self.role {
            out.push_str(&format!("role {r}\n"));
        }
        for m in &self.mfa {
            out.push_str(&format!(
                "mfa {} {} {} {} {}\n",
                m.creds.access_key_id, m.creds.secret_access_key, m.serial, m.seed, m.last_step
            ));
        }
        out
    }

    /// Parses the file's text.
    ///
    /// # Errors
    /// A line of an unknown kind or with the wrong number of fields.
    pub fn parse(text: &str) -> anyhow::Result<CredsFile> {
        let mut f = CredsFile::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split(' ').collect();
            let creds = |token: Option<&str>| Creds {
                access_key_id: fields[1].to_owned(),
                secret_access_key: fields[2].to_owned(),
                session_token: token.map(str::to_owned),
            };
            match (fields[0], fields.len()) {
                ("user", 3) => f.user = Some(creds(None)),
                ("session", 4) => f.session = Some(creds(Some(fields[3]))),
                ("role", 2) => f.role = Some(fields[1].to_owned()),
                ("root", 3) => f.root = Some(creds(None)),
                ("mfa", 6) => f.mfa.push(MfaUser {
                    creds: creds(None),
                    serial: fields[3].to_owned(),
                    seed: fields[4].to_owned(),
                    last_step: fields[5]
                        .parse()
                        .with_context(|| format!("line {}: last step", n + 1))?,
                }),
                _ => bail!("line {}: unknown record", n + 1),
            }
        }
        Ok(f)
    }

    /// Reads a credentials file.
    ///
    /// # Errors
    /// I/O and format errors.
    pub fn read(path: &Path) -> anyhow::Result<CredsFile> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("in {}", path.display()))
    }

    /// Writes the file (mode 0600 on Unix).
    ///
    /// # Errors
    /// I/O errors.
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        use std::io::Write;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut file = opts
            .open(path)
            .with_context(|| format!("writing {}", path.display()))?;
        file.write_all(self.to_text().as_bytes())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let c = |id: &str, t: Option<&str>| Creds {
            access_key_id: id.into(),
            secret_access_key: "s/+=".into(),
            session_token: t.map(Into::into),
        };
        let f = CredsFile {
            user: Some(c("AKIA1", None)),
            session: Some(c("ASIA1", Some("tok"))),
            mfa: vec![MfaUser {
                creds: c("AKIA2", None),
                serial: "arn:aws:iam::123456789012:mfa/d1".into(),
                seed: "ABCDEF".into(),
                last_step: 42,
            }],
            role: Some("arn:aws:iam::123456789012:role/bench-role".into()),
            root: Some(c("AKIAROOT", None)),
        };
        let g = CredsFile::parse(&f.to_text()).expect("parses");
        assert_eq!(g.to_text(), f.to_text());
        assert_eq!(g.role, f.role);
        assert!(CredsFile::parse("mfa a b").is_err());
        assert!(CredsFile::parse("what a b").is_err());
    }
}
