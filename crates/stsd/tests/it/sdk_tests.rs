//! The real `aws-sdk-sts` against the server.

use std::collections::HashSet;
use std::sync::Arc;

use crate::harness::{Opts, Root, Server, account_from_key_id, unix_now};
use crate::sdk::{client, creds_of, error_parts};
use crate::sign::Creds;

/// The reference's message for an MFA device that cannot be validated (two spaces after "code.").
const MFA_UNABLE: &str = "MultiFactorAuthentication failed, unable to validate MFA code.  Please verify your MFA serial number is valid and associated with this user.";

fn is_base32_id(id: &str, prefix: &str) -> bool {
    id.len() == 20
        && id.starts_with(prefix)
        && id[4..]
            .bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
}

/// `ceil(size * 100 / 4096)`.
fn utilization(size: usize) -> i32 {
    i32::try_from((size * 100).div_ceil(4096)).unwrap()
}

/// Calls GetSessionToken and checks the shape of the answer; `expected_duration` is checked against the clock
/// read before and after the call. Returns the session credentials.
async fn session_token_checked(
    sts: &aws_sdk_sts::Client,
    duration: Option<i32>,
    min_size: Option<i32>,
    expected_duration: i64,
) -> (Creds, usize) {
    let before = unix_now();
    let out = sts
        .get_session_token()
        .set_duration_seconds(duration)
        .set_minimum_session_token_size(min_size)
        .send()
        .await
        .unwrap();
    let after = unix_now() + 1;
    let c = out.credentials().expect("Credentials");
    assert!(
        is_base32_id(c.access_key_id(), "ASIA"),
        "AccessKeyId {:?}",
        c.access_key_id()
    );
    assert_eq!(c.secret_access_key().len(), 40);
    assert!(
        c.secret_access_key()
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/'),
        "secret alphabet"
    );
    let exp = c.expiration().secs();
    assert!(
        (before + expected_duration..=after + expected_duration).contains(&exp),
        "Expiration {exp} not within [{}, {}]",
        before + expected_duration,
        after + expected_duration
    );
    assert_eq!(c.expiration().subsec_nanos(), 0, "whole seconds");
    let size = c.session_token().len();
    assert!(size > 0 && size <= 4096, "token size {size}");
    assert_eq!(out.session_token_size(), Some(i32::try_from(size).unwrap()));
    assert_eq!(out.session_token_utilization(), Some(utilization(size)));
    (creds_of(c), size)
}

#[tokio::test]
async fn get_session_token_root_default_duration_is_one_hour() {
    let srv = Server::start();
    let sts = client(&srv.endpoint(), &srv.root);
    let (creds, _) = session_token_checked(&sts, None, None, 3600).await;
    // The account is encoded in the session key id.
    assert_eq!(
        account_from_key_id(&creds.id).to_string(),
        srv.account,
        "{}",
        creds.id
    );
}

#[tokio::test]
async fn get_session_token_root_durations_and_clamp() {
    let srv = Server::start();
    let sts = client(&srv.endpoint(), &srv.root);
    session_token_checked(&sts, Some(900), None, 900).await;
    session_token_checked(&sts, Some(1800), None, 1800).await;
    session_token_checked(&sts, Some(3600), None, 3600).await;
    // Root sessions are silently clamped to one hour.
    session_token_checked(&sts, Some(7200), None, 3600).await;
    session_token_checked(&sts, Some(129_600), None, 3600).await;
}

#[tokio::test]
async fn minimum_session_token_size_pads_and_credentials_still_work() {
    let srv = Server::start();
    let sts = client(&srv.endpoint(), &srv.root);
    let (_, natural) = session_token_checked(&sts, None, Some(0), 3600).await;
    assert!(natural < 2000, "natural token size {natural}");
    let (creds, size) = session_token_checked(&sts, None, Some(2000), 3600).await;
    assert!(size >= 2000, "token of {size} bytes");
    let who = client(&srv.endpoint(), &creds)
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    assert_eq!(who.account(), Some(srv.account.as_str()));
    assert_eq!(
        who.arn(),
        Some(format!("arn:aws:iam::{}:root", srv.account).as_str())
    );
    // The maximum: exactly the 4096-byte ceiling, 100 %.
    let (creds, size) = session_token_checked(&sts, None, Some(4096), 3600).await;
    assert_eq!(size, 4096);
    client(&srv.endpoint(), &creds)
        .get_caller_identity()
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn get_caller_identity_root_key_and_root_session() {
    let srv = Server::start();
    let acct = srv.account.clone();
    let sts = client(&srv.endpoint(), &srv.root);
    let who = sts.get_caller_identity().send().await.unwrap();
    assert_eq!(
        who.arn(),
        Some(format!("arn:aws:iam::{acct}:root").as_str())
    );
    assert_eq!(who.user_id(), Some(acct.as_str()));
    assert_eq!(who.account(), Some(acct.as_str()));

    let out = sts.get_session_token().send().await.unwrap();
    let session = creds_of(out.credentials().unwrap());
    let who = client(&srv.endpoint(), &session)
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    assert_eq!(
        who.arn(),
        Some(format!("arn:aws:iam::{acct}:root").as_str())
    );
    assert_eq!(who.user_id(), Some(acct.as_str()));
    assert_eq!(who.account(), Some(acct.as_str()));
}

#[tokio::test]
async fn get_session_token_with_session_credentials_is_denied() {
    let srv = Server::start();
    let out = client(&srv.endpoint(), &srv.root)
        .get_session_token()
        .send()
        .await
        .unwrap();
    let session = creds_of(out.credentials().unwrap());
    let err = client(&srv.endpoint(), &session)
        .get_session_token()
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        error_parts(&err),
        (
            403,
            "AccessDenied".to_owned(),
            "Cannot call GetSessionToken with session credentials".to_owned()
        )
    );
}

#[tokio::test]
async fn mfa_with_an_unknown_device_is_denied() {
    let srv = Server::start();
    let sts = client(&srv.endpoint(), &srv.root);
    for serial in [
        format!("arn:aws:iam::{}:mfa/root-device", srv.account),
        "GAHT12345678".to_owned(),
    ] {
        let err = sts
            .get_session_token()
            .serial_number(serial)
            .token_code("123456")
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            error_parts(&err),
            (403, "AccessDenied".to_owned(), MFA_UNABLE.to_owned())
        );
    }
}

/// Root keys generated by the server encode the account, like AWS's: GetAccessKeyInfo answers for them and
/// for session keys. The generated credentials are written once, privately, as an INI profile.
#[tokio::test]
async fn generated_root_credentials_and_get_access_key_info() {
    // The decoder itself, on the reference's real capture.
    assert_eq!(account_from_key_id("ASIAUH3H6EGKJI4NP6V5"), 291_738_886_548);

    let srv = Server::start_with(Opts {
        root: Root::Unset,
        ..Opts::default()
    });
    let acct = srv.account.clone();
    let file = srv.data_dir.join("root-credentials");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with("[stsd-root]\n"), "{text:?}");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "root-credentials mode {mode:o}");
        let dir_mode = std::fs::metadata(&srv.data_dir)
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dir_mode, 0o700, "data dir mode {dir_mode:o}");
    }
    let root = srv.root.clone();
    assert!(is_base32_id(&root.id, "AKIA"), "{}", root.id);
    assert_eq!(root.secret.len(), 40);
    assert_eq!(account_from_key_id(&root.id).to_string(), acct);
    // Shown once on stdout too.
    let shown = srv.stdout_before.join("\n");
    assert!(
        shown.contains(&root.id) && shown.contains(&root.secret),
        "{shown}"
    );

    let sts = client(&srv.endpoint(), &root);
    let who = sts.get_caller_identity().send().await.unwrap();
    assert_eq!(
        who.arn(),
        Some(format!("arn:aws:iam::{acct}:root").as_str())
    );

    let info = sts
        .get_access_key_info()
        .access_key_id(&root.id)
        .send()
        .await
        .unwrap();
    assert_eq!(info.account(), Some(acct.as_str()));

    let out = sts.get_session_token().send().await.unwrap();
    let session = creds_of(out.credentials().unwrap());
    assert_eq!(account_from_key_id(&session.id).to_string(), acct);
    let info = sts
        .get_access_key_info()
        .access_key_id(&session.id)
        .send()
        .await
        .unwrap();
    assert_eq!(info.account(), Some(acct.as_str()));
    // Any well-formed key id: the reference's capture.
    let info = sts
        .get_access_key_info()
        .access_key_id("ASIAUH3H6EGKJI4NP6V5")
        .send()
        .await
        .unwrap();
    assert_eq!(info.account(), Some("291738886548"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_get_session_token_calls() {
    let srv = Server::start();
    let sts = Arc::new(client(&srv.endpoint(), &srv.root));
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let sts = Arc::clone(&sts);
        tasks.push(tokio::spawn(
            async move { sts.get_session_token().send().await },
        ));
    }
    let mut ids = HashSet::new();
    let mut tokens = HashSet::new();
    let mut failures = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(out) => {
                let c = out.credentials().unwrap();
                ids.insert(c.access_key_id().to_owned());
                tokens.insert(c.session_token().to_owned());
            }
            Err(e) => failures.push(format!("{e:?}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures: {:?}",
        failures.len(),
        failures.first()
    );
    assert_eq!(ids.len(), 200);
    assert_eq!(tokens.len(), 200);
}
