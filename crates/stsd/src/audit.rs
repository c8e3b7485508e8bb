//! The audit log: one JSON line per STS/IAM call, shaped like a CloudTrail record. Secrets (secret access
//! keys, session tokens, TOTP codes) never appear in it.
//!
//! Records are formatted on the request path and handed to a writer task through a bounded channel, so
//! the request never waits for disk; the writer batches writes and flushes when the channel is empty.
//! At shutdown the channel is closed and the writer drains it before the process exits.

use serde_json::{Map, Value, json};
use std::path::PathBuf;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

/// Parameters never written (one-time codes; secrets are never parameters of these APIs).
const REDACTED_PARAMS: &[&str] = &["TokenCode", "AuthenticationCode1", "AuthenticationCode2"];

/// Where audit records go.
#[derive(Debug, Clone)]
pub enum Sink {
    /// Standard output.
    Stdout,
    /// A file, appended to.
    File(PathBuf),
}

impl Sink {
    /// `-` means stdout, anything else a file path.
    pub fn parse(s: &str) -> Sink {
        if s == "-" {
            Sink::Stdout
        } else {
            Sink::File(PathBuf::from(s))
        }
    }
}

/// The sending side, held by the server state.
#[derive(Debug, Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<String>,
}

/// The writer task.
pub struct Writer {
    handle: tokio::task::JoinHandle<()>,
    close: tokio::sync::oneshot::Sender<()>,
}

impl Writer {
    /// Stops accepting records and waits until every record queued so far is written and flushed.
    pub async fn finish(self) {
        let _ = self.close.send(());
        let _ = self.handle.await;
    }
}

/// Opens the sink and starts the writer.
///
/// # Errors
/// When the file cannot be opened.
pub async fn start(sink: Sink) -> anyhow::Result<(AuditLog, Writer)> {
    let mut out: Box<dyn tokio::io::AsyncWrite + Unpin + Send> = match &sink {
        Sink::Stdout => Box::new(tokio::io::stdout()),
        Sink::File(p) => Box::new(
            tokio::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .await
                .map_err(|e| anyhow::anyhow!("opening audit log {}: {e}", p.display()))?,
        ),
    };
    let (tx, mut rx) = mpsc::channel::<String>(65_536);
    let (close, mut closed) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        let mut buf = Vec::with_capacity(64 * 1024);
        loop {
            let line = tokio::select! {
                l = rx.recv() => l,
                _ = &mut closed, if !rx.is_closed() => {
                    // Refuse new records; the loop drains what is queued, then recv() yields None.
                    rx.close();
                    continue;
                }
            };
            let Some(line) = line else { break };
            buf.extend_from_slice(line.as_bytes());
            buf.push(b'\n');
            // Take whatever else is already queued, then write once.
            while buf.len() < 1 << 20 {
                match rx.try_recv() {
                    Ok(l) => {
                        buf.extend_from_slice(l.as_bytes());
                        buf.push(b'\n');
                    }
                    Err(_) => break,
                }
            }
            if let Err(e) = out.write_all(&buf).await {
                tracing::error!(error = %e, "writing the audit log failed");
            }
            let _ = out.flush().await;
            buf.clear();
        }
        let _ = out.flush().await;
    });
    Ok((AuditLog { tx }, Writer { handle, close }))
}

impl AuditLog {
    /// Queues a record. If the writer is far behind (65 536 queued records) the record is dropped and
    /// an error is logged rather than blocking the request.
    pub fn record(&self, record: &Value) {
        if self.tx.try_send(record.to_string()).is_err() {
            tracing::error!("audit log queue full: a record was dropped");
        }
    }
}

/// `DurationSeconds` → `durationSeconds`, as CloudTrail writes request parameters.
fn lower_camel(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// The request parameters worth recording: everything but protocol and signing parameters and one-time
/// codes.
pub fn request_parameters(params: &stsd_proto::Params) -> Value {
    let mut m = Map::new();
    for (k, v) in params.pairs() {
        if k == "Action"
            || k == "Version"
            || k.starts_with("X-Amz-")
            || REDACTED_PARAMS.contains(&k.as_str())
        {
            continue;
        }
        m.entry(lower_camel(k))
            .or_insert_with(|| Value::String(v.clone()));
    }
    if m.is_empty() {
        Value::Null
    } else {
        Value::Object(m)
    }
}

/// Who made a call, as CloudTrail's `userIdentity`.
pub fn user_identity(
    identity: &crate::auth::Identity,
    account: &str,
    access_key_id: &str,
    mfa: Option<bool>,
) -> Value {
    let kind = if identity.user_name.is_some() {
        "IAMUser"
    } else {
        "Root"
    };
    let mut v = json!({
        "type": kind,
        "principalId": identity.user_id,
        "arn": identity.arn,
        "accountId": account,
        "accessKeyId": access_key_id,
    });
    if let Some(name) = &identity.user_name {
        v["userName"] = json!(name);
    }
    if let Some(mfa) = mfa {
        v["sessionContext"] = json!({"attributes": {"mfaAuthenticated": mfa.to_string()}});
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_drop_codes_and_signing() {
        let p = stsd_proto::Params::parse(
            b"Action=GetSessionToken&Version=2011-06-15&DurationSeconds=900&SerialNumber=arn%3Ax&TokenCode=123456&X-Amz-Signature=ab",
        );
        let v = request_parameters(&p);
        assert_eq!(
            v,
            json!({"durationSeconds": "900", "serialNumber": "arn:x"})
        );
        assert!(!v.to_string().contains("123456"));
        assert_eq!(
            request_parameters(&stsd_proto::Params::parse(b"Action=GetCallerIdentity")),
            Value::Null
        );
    }

    #[tokio::test]
    async fn writer_flushes_everything_at_finish() {
        let path = std::env::temp_dir().join(format!("stsd-audit-{}.log", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let (log, writer) = start(Sink::File(path.clone())).await.unwrap();
        for i in 0..1000 {
            log.record(&json!({"n": i}));
        }
        // The sender is still alive (held by the server state): finish must not wait for it.
        writer.finish().await;
        drop(log);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 1000);
        assert_eq!(text.lines().last(), Some("{\"n\":999}"));
        let _ = std::fs::remove_file(&path);
    }
}
