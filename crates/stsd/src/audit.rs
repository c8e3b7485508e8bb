//! The audit log: one JSON line per STS/IAM call, shaped like a CloudTrail record. Secrets (secret access
//! keys, session tokens, TOTP codes) never appear in it.
//!
//! Records are formatted on the request path and handed to a writer task through a bounded channel, so
//! the request never waits for disk; the writer batches writes and flushes when the channel is empty.
//! At shutdown the channel is closed and the writer drains it before the process exits.

use serde_json::{Map, Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

/// The parameters each action defines: only these are recorded (anything else a client sends, such as
/// a stray `SecurityToken` or `x-amz-security-token`, is dropped), and of these only the ones that are
/// not secret-like by name ([`is_secret_name`]). Unknown actions record no parameters.
fn allowed_params(api: stsd_proto::request::Api, action: &str) -> &'static [&'static str] {
    use stsd_proto::request::Api;
    match (api, action) {
        (Api::Sts, "GetSessionToken") => &[
            "DurationSeconds",
            "SerialNumber",
            "TokenCode",
            "MinimumSessionTokenSize",
        ],
        (Api::Sts, "GetAccessKeyInfo") => &["AccessKeyId"],
        (Api::Sts, "AssumeRole") => &[
            "RoleArn",
            "RoleSessionName",
            "DurationSeconds",
            "ExternalId",
            "SerialNumber",
            "TokenCode",
            "SourceIdentity",
            "MinimumSessionTokenSize",
        ],
        (Api::Sts, "GetScopedCredentials") => &[
            "DurationSeconds",
            "ScopedSessionDescription",
            "MinimumSessionTokenSize",
        ],
        (Api::Iam, "CreateRole") => &["RoleName", "Path", "Description", "MaxSessionDuration"],
        (Api::Iam, "UpdateRole") => &["RoleName", "Description", "MaxSessionDuration"],
        (Api::Iam, "GetRole" | "DeleteRole" | "UpdateAssumeRolePolicy" | "ListRolePolicies") => {
            &["RoleName"]
        }
        (Api::Iam, "ListRoles") => &["PathPrefix", "Marker", "MaxItems"],
        (Api::Iam, "PutRolePolicy" | "GetRolePolicy" | "DeleteRolePolicy") => {
            &["RoleName", "PolicyName"]
        }
        (Api::Iam, "AttachRolePolicy" | "DetachRolePolicy") => &["RoleName", "PolicyArn"],
        (Api::Iam, "ListAttachedRolePolicies") => &["RoleName", "PathPrefix", "Marker", "MaxItems"],
        (Api::Iam, "CreateUser") => &["UserName", "Path"],
        // Passwords (`Password`, `OldPassword`, `NewPassword`) are never recorded; nor is anything
        // whose name contains "password" (`PasswordResetRequired` too: `is_secret_name` errs on the safe side).
        (
            Api::Iam,
            "CreateLoginProfile" | "UpdateLoginProfile" | "GetLoginProfile" | "DeleteLoginProfile",
        ) => &["UserName"],
        (Api::Iam, "UpdateAccountPasswordPolicy") => &[
            "MinimumPasswordLength",
            "RequireSymbols",
            "RequireNumbers",
            "RequireUppercaseCharacters",
            "RequireLowercaseCharacters",
            "AllowUsersToChangePassword",
            "MaxPasswordAge",
            "PasswordReusePrevention",
            "HardExpiry",
        ],
        (Api::Iam, "GetUser" | "DeleteUser" | "CreateAccessKey") => &["UserName"],
        (Api::Iam, "ListUsers") => &["PathPrefix", "Marker", "MaxItems"],
        (Api::Iam, "ListAccessKeys" | "ListMFADevices") => &["UserName", "Marker", "MaxItems"],
        (Api::Iam, "UpdateAccessKey") => &["UserName", "AccessKeyId", "Status"],
        (Api::Iam, "DeleteAccessKey") => &["UserName", "AccessKeyId"],
        (Api::Iam, "GetAccessKeyLastUsed") => &["AccessKeyId"],
        (Api::Iam, "CreateVirtualMFADevice") => &["VirtualMFADeviceName", "Path"],
        (Api::Iam, "EnableMFADevice" | "ResyncMFADevice") => &[
            "UserName",
            "SerialNumber",
            "AuthenticationCode1",
            "AuthenticationCode2",
        ],
        (Api::Iam, "DeactivateMFADevice" | "GetMFADevice") => &["UserName", "SerialNumber"],
        (Api::Iam, "DeleteVirtualMFADevice") => &["SerialNumber"],
        (Api::Iam, "ListVirtualMFADevices") => &["AssignmentStatus", "Marker", "MaxItems"],
        (Api::Iam, "PutUserPolicy") => &["UserName", "PolicyName", "PolicyDocument"],
        (Api::Iam, "GetUserPolicy" | "DeleteUserPolicy") => &["UserName", "PolicyName"],
        (Api::Iam, "ListUserPolicies" | "ListGroupsForUser") => &["UserName", "Marker", "MaxItems"],
        (Api::Iam, "PutGroupPolicy") => &["GroupName", "PolicyName", "PolicyDocument"],
        (Api::Iam, "GetGroupPolicy" | "DeleteGroupPolicy") => &["GroupName", "PolicyName"],
        (Api::Iam, "ListGroupPolicies" | "GetGroup") => &["GroupName", "Marker", "MaxItems"],
        (Api::Iam, "CreatePolicy") => &["PolicyName", "Path", "PolicyDocument", "Description"],
        (
            Api::Iam,
            "GetPolicy" | "DeletePolicy" | "ListPolicyVersions" | "ListEntitiesForPolicy",
        ) => &[
            "PolicyArn",
            "EntityFilter",
            "PathPrefix",
            "Marker",
            "MaxItems",
        ],
        (Api::Iam, "CreatePolicyVersion") => &["PolicyArn", "PolicyDocument", "SetAsDefault"],
        (Api::Iam, "GetPolicyVersion" | "SetDefaultPolicyVersion" | "DeletePolicyVersion") => {
            &["PolicyArn", "VersionId"]
        }
        (Api::Iam, "ListPolicies") => {
            &["Scope", "OnlyAttached", "PathPrefix", "Marker", "MaxItems"]
        }
        (Api::Iam, "AttachUserPolicy" | "DetachUserPolicy") => &["UserName", "PolicyArn"],
        (Api::Iam, "AttachGroupPolicy" | "DetachGroupPolicy") => &["GroupName", "PolicyArn"],
        (Api::Iam, "ListAttachedUserPolicies") => &["UserName", "PathPrefix", "Marker", "MaxItems"],
        (Api::Iam, "ListAttachedGroupPolicies") => {
            &["GroupName", "PathPrefix", "Marker", "MaxItems"]
        }
        (Api::Iam, "CreateGroup") => &["GroupName", "Path"],
        (Api::Iam, "DeleteGroup") => &["GroupName"],
        (Api::Iam, "ListGroups") => &["PathPrefix", "Marker", "MaxItems"],
        (Api::Iam, "AddUserToGroup" | "RemoveUserFromGroup") => &["GroupName", "UserName"],
        (Api::Iam, "SimulatePrincipalPolicy") => &["PolicySourceArn", "Marker", "MaxItems"],
        (Api::Iam, "SimulateCustomPolicy") => &["Marker", "MaxItems"],
        (Api::Iam, "GetContextKeysForPrincipalPolicy") => &["PolicySourceArn"],
        _ => &[],
    }
}

/// True for parameter names that may carry a secret, in any case: tokens, signatures, secrets,
/// passwords, one-time codes, credentials. Their values are never written (and are removed from echoed
/// error messages).
pub fn is_secret_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [
        "token",
        "signature",
        "secret",
        "password",
        "code",
        "credential",
    ]
    .iter()
    .any(|w| lower.contains(w))
}

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

/// The most records queued for the writer.
pub const MAX_QUEUED_RECORDS: usize = 65_536;
/// The most bytes queued for the writer: beyond this records are dropped (and counted) rather than
/// held in memory.
pub const MAX_QUEUED_BYTES: usize = 32 << 20;
/// The longest record written, in bytes (JSON); a longer one loses its parameters and messages.
pub const MAX_RECORD_BYTES: usize = 8 * 1024;
/// The most request parameters recorded.
pub const MAX_PARAMS: usize = 16;
/// The longest value recorded (characters); longer ones are cut and marked with `...`.
pub const MAX_VALUE_CHARS: usize = 256;
/// The longest error message recorded (characters).
pub const MAX_MESSAGE_CHARS: usize = 1024;
/// How often a full queue is reported in the server log.
const DROP_WARNING_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// The sending side, held by the server state.
#[derive(Debug, Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<String>,
    queued_bytes: Arc<AtomicUsize>,
    dropped: Arc<AtomicU64>,
    last_warning: Arc<std::sync::Mutex<Option<std::time::Instant>>>,
}

/// A string fit for one field of a record: control characters (which JSON escapes as six bytes each,
/// so a request full of them grew six-fold on disk) become `?`, and the text is cut at `max`
/// characters.
pub fn clean(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max + 3));
    for (i, c) in s.chars().enumerate() {
        if i == max {
            out.push_str("...");
            break;
        }
        out.push(if c.is_control() { '?' } else { c });
    }
    out
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
pub async fn start(sink: Sink, dropped: Arc<AtomicU64>) -> anyhow::Result<(AuditLog, Writer)> {
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
    let (tx, mut rx) = mpsc::channel::<String>(MAX_QUEUED_RECORDS);
    let queued_bytes = Arc::new(AtomicUsize::new(0));
    let queued = Arc::clone(&queued_bytes);
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
            queued.fetch_sub(line.len(), Ordering::Relaxed);
            buf.extend_from_slice(line.as_bytes());
            buf.push(b'\n');
            // Take whatever else is already queued, then write once.
            while buf.len() < 1 << 20 {
                match rx.try_recv() {
                    Ok(l) => {
                        queued.fetch_sub(l.len(), Ordering::Relaxed);
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
    Ok((
        AuditLog {
            tx,
            queued_bytes,
            dropped,
            last_warning: Arc::default(),
        },
        Writer { handle, close },
    ))
}

/// The JSON line of a record, at most [`MAX_RECORD_BYTES`] long: a longer one keeps its identity fields
/// and loses its parameters, response elements and error message (marked `"truncated": true`).
pub fn line(mut record: Value) -> String {
    let text = record.to_string();
    if text.len() <= MAX_RECORD_BYTES {
        return text;
    }
    if let Some(m) = record.as_object_mut() {
        for k in [
            "requestParameters",
            "responseElements",
            "errorMessage",
            "userAgent",
        ] {
            if m.contains_key(k) {
                m.insert(k.to_owned(), Value::Null);
            }
        }
        m.insert("truncated".to_owned(), Value::Bool(true));
    }
    let text = record.to_string();
    if text.len() <= MAX_RECORD_BYTES {
        text
    } else {
        json!({"truncated": true, "eventTime": record.get("eventTime"), "requestID": record.get("requestID")})
            .to_string()
    }
}

impl AuditLog {
    /// Queues a record. If the writer is far behind ([`MAX_QUEUED_RECORDS`] records or
    /// [`MAX_QUEUED_BYTES`] bytes queued) the record is dropped and counted
    /// (`stsd_audit_dropped_total`) rather than blocking the request or growing the queue; the server
    /// log says so at most every 10 s.
    pub fn record(&self, record: Value) {
        let line = line(record);
        let n = line.len();
        let fits = self.queued_bytes.fetch_add(n, Ordering::Relaxed) + n <= MAX_QUEUED_BYTES;
        if fits && self.tx.try_send(line).is_ok() {
            return;
        }
        self.queued_bytes.fetch_sub(n, Ordering::Relaxed);
        let total = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        if let Ok(mut last) = self.last_warning.lock()
            && last.is_none_or(|t| t.elapsed() >= DROP_WARNING_INTERVAL)
        {
            *last = Some(std::time::Instant::now());
            tracing::error!(
                dropped_total = total,
                "audit log queue full: records are being dropped"
            );
        }
    }

    /// Bytes waiting for the writer.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes.load(Ordering::Relaxed)
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

/// The request parameters worth recording: the ones the action defines ([`allowed_params`]), minus
/// secret-like ones ([`is_secret_name`]).
pub fn request_parameters(params: &stsd_proto::Params, api: stsd_proto::request::Api) -> Value {
    let allowed = params
        .get("Action")
        .map_or(&[][..], |action| allowed_params(api, action));
    let mut m = Map::new();
    for (k, v) in params.pairs() {
        if m.len() >= MAX_PARAMS {
            break;
        }
        if !allowed.contains(&k.as_str()) || is_secret_name(k) {
            continue;
        }
        m.entry(lower_camel(k))
            .or_insert_with(|| Value::String(clean(v, MAX_VALUE_CHARS)));
    }
    if m.is_empty() {
        Value::Null
    } else {
        Value::Object(m)
    }
}

/// An error message fit for the log: validation messages echo values, so the value of every secret-like
/// parameter is removed from it.
pub fn error_message(message: &str, params: &stsd_proto::Params) -> String {
    let mut message = message.to_owned();
    for (k, v) in params.pairs() {
        if is_secret_name(k) && !v.is_empty() {
            message = message.replace(v.as_str(), "***");
        }
    }
    clean(&message, MAX_MESSAGE_CHARS)
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

    use stsd_proto::request::Api;

    #[test]
    fn parameters_drop_codes_and_signing() {
        let p = stsd_proto::Params::parse(
            b"Action=GetSessionToken&Version=2011-06-15&DurationSeconds=900&SerialNumber=arn%3Ax&TokenCode=123456&X-Amz-Signature=ab",
        );
        let v = request_parameters(&p, Api::Sts);
        assert_eq!(
            v,
            json!({"durationSeconds": "900", "serialNumber": "arn:x"})
        );
        assert!(!v.to_string().contains("123456"));
        assert_eq!(
            request_parameters(
                &stsd_proto::Params::parse(b"Action=GetCallerIdentity"),
                Api::Sts
            ),
            Value::Null
        );
    }

    #[test]
    fn passwords_are_never_recorded() {
        let p = stsd_proto::Params::parse(
            b"Action=CreateLoginProfile&Version=2010-05-08&UserName=bob&Password=Hunter2-secret&PasswordResetRequired=true",
        );
        let v = request_parameters(&p, Api::Iam);
        assert_eq!(v, json!({"userName": "bob"}));
        let p = stsd_proto::Params::parse(
            b"Action=ChangePassword&Version=2010-05-08&OldPassword=Hunter2-old&NewPassword=Hunter2-new",
        );
        assert_eq!(request_parameters(&p, Api::Iam), Value::Null);
        let m = error_message("Value Hunter2-new at 'newPassword' failed", &p);
        assert!(!m.contains("Hunter2"), "{m}");
    }

    #[test]
    fn only_the_actions_own_parameters_are_recorded_and_secret_like_names_never() {
        // A token under names the exact-match redaction missed, and parameters the action does not define.
        let p = stsd_proto::Params::parse(
            b"Action=GetCallerIdentity&Version=2011-06-15&x-amz-security-token=SECRETTOKEN&SecurityToken=SECRETTOKEN&Foo=bar",
        );
        assert_eq!(request_parameters(&p, Api::Sts), Value::Null);
        let p = stsd_proto::Params::parse(
            b"Action=CreateUser&Version=2010-05-08&UserName=ann&Path=%2F&Password=hunter2&X-AMZ-SECURITY-TOKEN=SECRETTOKEN",
        );
        assert_eq!(
            request_parameters(&p, Api::Iam),
            json!({"userName": "ann", "path": "/"})
        );
        let p = stsd_proto::Params::parse(
            b"Action=EnableMFADevice&Version=2010-05-08&UserName=ann&SerialNumber=s&AuthenticationCode1=111111&AuthenticationCode2=222222",
        );
        let v = request_parameters(&p, Api::Iam).to_string();
        assert!(!v.contains("111111") && !v.contains("222222"), "{v}");
        // The same action name under the other API's version defines nothing.
        let p = stsd_proto::Params::parse(b"Action=CreateUser&Version=2011-06-15&UserName=ann");
        assert_eq!(request_parameters(&p, Api::Sts), Value::Null);
        for name in [
            "TokenCode",
            "x-amz-security-token",
            "SecurityToken",
            "X-Amz-Signature",
            "SecretAccessKey",
            "password",
            "AuthenticationCode1",
            "X-Amz-Credential",
        ] {
            assert!(is_secret_name(name), "{name}");
        }
        for name in ["UserName", "SerialNumber", "DurationSeconds", "Path"] {
            assert!(!is_secret_name(name), "{name}");
        }
        let p = stsd_proto::Params::parse(b"TokenCode=12345x&x-amz-security-token=tokvalue1");
        assert_eq!(
            error_message("Value '12345x' at 'tokenCode' ... tokvalue1", &p),
            "Value '***' at 'tokenCode' ... ***"
        );
    }

    #[test]
    fn records_are_bounded_and_control_bytes_are_not_amplified() {
        assert_eq!(clean("a\u{1}b\u{7f}c\n", 100), "a?b?c?");
        assert_eq!(clean("abcdef", 3), "abc...");
        // A value of control bytes: JSON would write each as `\u0001`.
        let nasty = "\u{1}".repeat(10_000);
        let mut query = String::from("Action=CreateUser&Version=2010-05-08");
        for name in ["UserName", "Path"] {
            query.push_str(&format!("&{name}={}", "%01".repeat(10_000)));
        }
        let p = stsd_proto::Params::parse(query.as_bytes());
        let v = request_parameters(&p, Api::Iam);
        assert_eq!(
            v["userName"].as_str().map(str::len),
            Some(MAX_VALUE_CHARS + 3)
        );
        assert!(!v.to_string().contains("\\u0001"), "{v}");
        let msg = error_message(&format!("Value '{nasty}' at 'userName'"), &p);
        assert!(msg.len() <= MAX_MESSAGE_CHARS + 3, "{}", msg.len());
        // However large a record is, its line is bounded and keeps who and when.
        let big = json!({
            "eventTime": "t", "requestID": "r",
            "requestParameters": {"a": "x".repeat(MAX_RECORD_BYTES)},
            "errorMessage": "m",
        });
        let l = line(big);
        assert!(l.len() <= MAX_RECORD_BYTES, "{}", l.len());
        let back: Value = serde_json::from_str(&l).unwrap();
        assert_eq!(back["truncated"], json!(true));
        assert_eq!(back["requestID"], json!("r"));
        assert_eq!(back["requestParameters"], Value::Null);
    }

    #[test]
    fn the_queue_is_bounded_in_bytes_and_drops_are_counted() {
        // No writer: everything stays queued.
        let (tx, _rx) = mpsc::channel::<String>(MAX_QUEUED_RECORDS);
        let dropped = Arc::new(AtomicU64::new(0));
        let log = AuditLog {
            tx,
            queued_bytes: Arc::default(),
            dropped: Arc::clone(&dropped),
            last_warning: Arc::default(),
        };
        let record = || json!({"requestParameters": {"a": "x".repeat(MAX_RECORD_BYTES - 100)}});
        let fit = MAX_QUEUED_BYTES / line(record()).len();
        assert!(
            fit < MAX_QUEUED_RECORDS,
            "the byte bound must be the tighter one here"
        );
        for _ in 0..fit + 10 {
            log.record(record());
        }
        assert!(log.queued_bytes() <= MAX_QUEUED_BYTES);
        assert_eq!(dropped.load(Ordering::Relaxed), 10);
    }

    #[tokio::test]
    async fn writer_flushes_everything_at_finish() {
        let path = std::env::temp_dir().join(format!("stsd-audit-{}.log", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let (log, writer) = start(Sink::File(path.clone()), Arc::default())
            .await
            .unwrap();
        for i in 0..1000 {
            log.record(json!({"n": i}));
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
