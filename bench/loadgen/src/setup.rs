//! Benchmark fixtures created through the server's own IAM API, signed as the account root: an IAM user
//! with an access key, its session credentials, and users with enabled virtual MFA devices.

use crate::client::Conn;
use crate::creds::{CredsFile, MfaUser};
use crate::request::{Creds, form_body, sign};
use crate::{IAM_VERSION, STS_VERSION, now_unix, xml_text};
use anyhow::{Context, bail};
use std::net::SocketAddr;
use stsd_core::totp;

/// Where to send the calls.
#[derive(Debug, Clone)]
pub struct Target {
    /// Server address.
    pub addr: SocketAddr,
    /// `Host` header value (`127.0.0.1:PORT`).
    pub host: String,
}

/// Calls one IAM or STS action and returns the answer body; a non-2xx answer is an error.
///
/// # Errors
/// Transport failures and non-2xx answers (with the server's error text).
pub async fn call(
    conn: &mut Conn,
    target: &Target,
    creds: &Creds,
    service: &str,
    params: &[(&str, &str)],
) -> anyhow::Result<String> {
    let version = if service == "iam" {
        IAM_VERSION
    } else {
        STS_VERSION
    };
    let Some((first, rest)) = params.split_first() else {
        bail!("no Action given");
    };
    let action = first.1;
    let mut pairs = vec![*first, ("Version", version)];
    pairs.extend_from_slice(rest);
    let signed = sign(&target.host, creds, service, form_body(&pairs), now_unix())?;
    let (status, body) = conn.send(signed.wire()).await?;
    let text = String::from_utf8_lossy(&body).into_owned();
    if !(200..300).contains(&status) {
        bail!("{action} answered {status}: {}", text.trim());
    }
    Ok(text)
}

fn field(xml: &str, name: &str) -> anyhow::Result<String> {
    xml_text(xml, name).with_context(|| format!("no <{name}> in the answer: {xml}"))
}

/// Creates an IAM user and an access key for it.
///
/// # Errors
/// Any failed call.
pub async fn user_with_key(
    conn: &mut Conn,
    target: &Target,
    root: &Creds,
    name: &str,
) -> anyhow::Result<Creds> {
    call(
        conn,
        target,
        root,
        "iam",
        &[("Action", "CreateUser"), ("UserName", name)],
    )
    .await?;
    let xml = call(
        conn,
        target,
        root,
        "iam",
        &[("Action", "CreateAccessKey"), ("UserName", name)],
    )
    .await?;
    Ok(Creds {
        access_key_id: field(&xml, "AccessKeyId")?,
        secret_access_key: field(&xml, "SecretAccessKey")?,
        session_token: None,
    })
}

/// Session credentials for `user` (GetSessionToken without MFA).
///
/// # Errors
/// A failed call.
pub async fn session(conn: &mut Conn, target: &Target, user: &Creds) -> anyhow::Result<Creds> {
    let xml = call(conn, target, user, "sts", &[("Action", "GetSessionToken")]).await?;
    Ok(Creds {
        access_key_id: field(&xml, "AccessKeyId")?,
        secret_access_key: field(&xml, "SecretAccessKey")?,
        session_token: Some(field(&xml, "SessionToken")?),
    })
}

/// The raw TOTP secret of a base32 seed as IAM returns it.
///
/// # Errors
/// A seed that is not base32.
pub fn seed_bytes(seed: &str) -> anyhow::Result<Vec<u8>> {
    data_encoding::BASE32_NOPAD
        .decode(seed.trim_end_matches('=').as_bytes())
        .context("MFA seed is not base32")
}

/// The serial number and the base32 seed in a CreateVirtualMFADevice answer (the seed is a blob on
/// the wire: the base64 of the base32 text).
///
/// # Errors
/// A missing field, or a seed that is not base64 of text.
pub fn virtual_device(xml: &str) -> anyhow::Result<(String, String)> {
    use base64::Engine as _;
    let serial = field(xml, "SerialNumber")?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(field(xml, "Base32StringSeed")?.trim())
        .context("Base32StringSeed is not base64")?;
    let seed = String::from_utf8(raw).context("Base32StringSeed is not text")?;
    Ok((serial, seed))
}

/// EnableMFADevice's two codes for a device enabled at `step`: the previous step's and the current one's.
pub fn enrolment_codes(secret: &[u8], step: i64) -> (String, String) {
    (totp::code(secret, step - 1), totp::code(secret, step))
}

/// Creates user `name` with a key and a virtual MFA device, and enables the device with the codes of
/// the previous and the current step. The server takes the step of the second code as the device's
/// clock (drift 0) and as its last used step, so the device's next code is the one of step now+1.
///
/// # Errors
/// Any failed call.
pub async fn mfa_user(
    conn: &mut Conn,
    target: &Target,
    root: &Creds,
    name: &str,
) -> anyhow::Result<MfaUser> {
    let creds = user_with_key(conn, target, root, name).await?;
    let xml = call(
        conn,
        target,
        root,
        "iam",
        &[
            ("Action", "CreateVirtualMFADevice"),
            ("VirtualMFADeviceName", name),
        ],
    )
    .await?;
    let (serial, seed) = virtual_device(&xml)?;
    let step = totp::step_at(now_unix());
    let (c1, c2) = enrolment_codes(&seed_bytes(&seed)?, step);
    call(
        conn,
        target,
        root,
        "iam",
        &[
            ("Action", "EnableMFADevice"),
            ("UserName", name),
            ("SerialNumber", &serial),
            ("AuthenticationCode1", &c1),
            ("AuthenticationCode2", &c2),
        ],
    )
    .await?;
    Ok(MfaUser {
        creds,
        serial,
        seed,
        last_step: step,
    })
}

/// The benchmark user's name.
pub const BENCH_USER: &str = "bench-user";

/// The benchmark user's policy: the authorizer workload's permission (f) and the IAM read's (j), the
/// latter through a policy variable.
pub const BENCH_API_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"execute-api:Invoke","Resource":"arn:aws:execute-api:*:*:orders/prod/GET/orders/*"},{"Effect":"Allow","Action":"iam:GetUser","Resource":"arn:aws:iam::*:user/${aws:username}"}]}"#;

/// Creates the fixtures: `bench-user` with a key and session credentials, and `mfa_devices` users
/// `bench-mfa-N` with enabled devices (over `parallel` connections).
///
/// # Errors
/// Any failed call.
pub async fn fixtures(
    target: &Target,
    root: &Creds,
    mfa_devices: usize,
    parallel: usize,
) -> anyhow::Result<CredsFile> {
    let mut conn = Conn::connect(target.addr).await?;
    let user = user_with_key(&mut conn, target, root, BENCH_USER).await?;
    // The authorizer workload's permission (execute-api:Invoke on the benchmark API) and the IAM read's.
    call(
        &mut conn,
        target,
        root,
        "iam",
        &[
            ("Action", "PutUserPolicy"),
            ("UserName", BENCH_USER),
            ("PolicyName", "bench-api"),
            ("PolicyDocument", BENCH_API_POLICY),
        ],
    )
    .await?;
    let session = session(&mut conn, target, &user).await?;
    let role = bench_role(&mut conn, target, root, &user).await;
    let parallel = parallel.clamp(1, 32);
    let mut tasks = Vec::new();
    for worker in 0..parallel {
        let (target, root) = (target.clone(), root.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::connect(target.addr).await?;
            let mut out = Vec::new();
            for i in (worker..mfa_devices).step_by(parallel) {
                let name = format!("bench-mfa-{i}");
                out.push(mfa_user(&mut conn, &target, &root, &name).await?);
            }
            anyhow::Ok(out)
        }));
    }
    let mut mfa = Vec::with_capacity(mfa_devices);
    for t in tasks {
        mfa.extend(t.await??);
    }
    Ok(CredsFile {
        user: Some(user),
        session: Some(session),
        mfa,
        role,
        root: Some(root.clone()),
    })
}

/// Creates `bench-role`, trusting `bench-user` by ARN; `None` (with a warning) when the target has no
/// roles, so the other workloads still run.
async fn bench_role(
    conn: &mut Conn,
    target: &Target,
    root: &Creds,
    user: &Creds,
) -> Option<String> {
    let made = async {
        let xml = call(conn, target, user, "sts", &[("Action", "GetCallerIdentity")]).await?;
        let user_arn = field(&xml, "Arn")?;
        let trust = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{user_arn}"}},"Action":"sts:AssumeRole"}}]}}"#
        );
        let xml = call(
            conn,
            target,
            root,
            "iam",
            &[
                ("Action", "CreateRole"),
                ("RoleName", "bench-role"),
                ("AssumeRolePolicyDocument", &trust),
            ],
        )
        .await?;
        field(&xml, "Arn")
    }
    .await;
    match made {
        Ok(arn) => Some(arn),
        Err(e) => {
            eprintln!("stsd-loadgen: no role for the assume-role workload: {e:#}");
            None
        }
    }
}
