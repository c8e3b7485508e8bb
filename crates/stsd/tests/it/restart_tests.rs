//! Durability across restarts, graceful shutdown, and start-ups that must be refused.

use std::collections::BTreeMap;
use std::path::Path;

use crate::harness::{Opts, ROOT_ID, ROOT_SECRET, Root, Server, TempDir};
use crate::sdk::{client, creds_of};
use crate::sign::{self, Creds};
use crate::xml::assert_root_identity;

async fn new_session(srv: &Server) -> Creds {
    let out = client(&srv.endpoint(), &srv.root)
        .get_session_token()
        .send()
        .await
        .unwrap();
    creds_of(out.credentials().unwrap())
}

/// GetCallerIdentity (raw, header-signed) must answer with the root identity of `srv`'s account.
fn assert_works(srv: &Server, creds: &Creds) {
    let r = sign::post(
        srv.addr,
        creds,
        "Action=GetCallerIdentity&Version=2011-06-15",
    );
    assert_root_identity(&r, &srv.account);
}

#[track_caller]
fn assert_graceful(srv: &mut Server) {
    let status = srv.stop();
    assert!(
        status.success(),
        "SIGTERM must end stsd gracefully, got {status}; stderr:\n{}",
        srv.stderr()
    );
}

/// Every file of the data directory but the master key, by name.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name() != "master.key")
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[tokio::test]
async fn restart_keeps_account_sessions_and_root_key() {
    let dir = TempDir::new("restart");
    let data = dir.data_dir();
    let opts = Opts::default();

    let mut a = Server::start_in(&data, &opts);
    let account = a.account.clone();
    let session = new_session(&a).await;
    assert_works(&a, &session);
    assert_graceful(&mut a);

    let mut b = Server::start_in(&data, &opts);
    assert_eq!(b.account, account, "the account id must survive a restart");
    assert_works(&b, &session);
    assert_works(&b, &b.root.clone());
    // New sessions from the restarted server work too, and so do old ones after another restart.
    let session2 = new_session(&b).await;
    assert_graceful(&mut b);

    let mut c = Server::start_in(
        &data,
        &Opts {
            root: Root::Unset,
            ..Opts::default()
        },
    );
    assert_eq!(c.account, account);
    assert_works(&c, &session);
    assert_works(&c, &session2);
    assert_works(&c, &Creds::new(ROOT_ID, ROOT_SECRET));
    // The root key came from the environment: no credentials file is written.
    assert!(!data.join("root-credentials").exists());
    assert_graceful(&mut c);
}

#[tokio::test]
async fn restart_with_generated_root_key_keeps_it() {
    let dir = TempDir::new("genroot");
    let data = dir.data_dir();
    let opts = Opts {
        root: Root::Unset,
        ..Opts::default()
    };
    let mut a = Server::start_in(&data, &opts);
    let root = a.root.clone();
    let file = std::fs::read(data.join("root-credentials")).unwrap();
    assert_works(&a, &root);
    assert_graceful(&mut a);

    let mut b = Server::start_in(&data, &opts);
    assert_eq!(b.root, root);
    assert_eq!(std::fs::read(data.join("root-credentials")).unwrap(), file);
    assert!(
        !b.stdout_before.join("\n").contains(&root.secret),
        "the secret is shown only once: {:?}",
        b.stdout_before
    );
    assert_works(&b, &root);
    assert_graceful(&mut b);
}

#[tokio::test]
async fn other_root_credentials_in_the_environment_are_refused() {
    let dir = TempDir::new("otherroot");
    let data = dir.data_dir();
    let mut a = Server::start_in(&data, &Opts::default());
    let account = a.account.clone();
    assert_works(&a, &a.root);
    assert_graceful(&mut a);

    for (id, secret) in [
        ("AKIASTSDTESTROOTKEY2", ROOT_SECRET),
        (ROOT_ID, "another-secret-0123456789abcdefghijklmno"),
    ] {
        let failed = Server::start_failing(
            &data,
            &Opts {
                root: Root::Env(id.to_owned(), secret.to_owned()),
                ..Opts::default()
            },
        );
        assert!(!failed.status.success(), "{:?}", failed.status);
        assert!(
            failed.stderr.contains("STSD_ROOT_ACCESS_KEY_ID"),
            "stderr must name STSD_ROOT_ACCESS_KEY_ID:\n{}",
            failed.stderr
        );
        assert!(
            !failed.stderr.contains(secret),
            "stderr must not show the secret:\n{}",
            failed.stderr
        );
    }
    // The right credentials still start it.
    let b = Server::start_in(&data, &Opts::default());
    assert_eq!(b.account, account);
    assert_works(&b, &b.root);
}

#[tokio::test]
async fn other_account_id_is_refused() {
    let dir = TempDir::new("otheracct");
    let data = dir.data_dir();
    let mut a = Server::start_in(&data, &Opts::args(&["--account-id", "123456789012"]));
    assert_eq!(a.account, "123456789012");
    assert_works(&a, &a.root);
    assert_graceful(&mut a);

    let failed = Server::start_failing(&data, &Opts::args(&["--account-id", "210987654321"]));
    assert!(!failed.status.success(), "{:?}", failed.status);
    assert!(
        failed.stderr.contains("123456789012") && failed.stderr.contains("210987654321"),
        "stderr must name both account ids:\n{}",
        failed.stderr
    );
    let failed = Server::start_failing(
        &data,
        &Opts {
            env: vec![("STSD_ACCOUNT_ID".to_owned(), "000000000001".to_owned())],
            ..Opts::default()
        },
    );
    assert!(!failed.status.success());
    assert!(
        failed.stderr.contains("123456789012") && failed.stderr.contains("000000000001"),
        "{}",
        failed.stderr
    );

    let mut b = Server::start_in(&data, &Opts::args(&["--account-id", "123456789012"]));
    assert_eq!(b.account, "123456789012");
    assert_works(&b, &b.root);
    assert_graceful(&mut b);
    let c = Server::start_in(&data, &Opts::default());
    assert_eq!(c.account, "123456789012");
    assert_works(&c, &c.root);
}

#[tokio::test]
async fn wrong_master_key_is_refused_and_changes_nothing() {
    let dir = TempDir::new("masterkey");
    let data = dir.data_dir();
    let mut a = Server::start_in(&data, &Opts::default());
    let account = a.account.clone();
    let session = new_session(&a).await;
    assert_graceful(&mut a);

    let key_path = data.join("master.key");
    let right_key = std::fs::read(&key_path).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "master.key mode {mode:o}");
    }
    let before = snapshot(&data);
    assert!(before.contains_key("stsd.db"), "{:?}", before.keys());

    let mut other = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut other))
        .unwrap();
    let other_key = format!("{}\n", base64(&other));
    assert_ne!(other_key.as_bytes(), right_key.as_slice());
    std::fs::write(&key_path, &other_key).unwrap();

    let failed = Server::start_failing(&data, &Opts::default());
    assert!(!failed.status.success(), "{:?}", failed.status);
    assert!(
        failed.stderr.to_lowercase().contains("master key"),
        "stderr must mention the master key:\n{}",
        failed.stderr
    );
    // Every file is byte for byte as it was. SQLite may leave the files of an opened-but-unclosed
    // connection behind (`-shm`, and a `-wal` without any frame: no transaction was written), nothing else.
    let after = snapshot(&data);
    for (name, bytes) in &before {
        assert!(after.get(name) == Some(bytes), "{name} changed or vanished");
    }
    for (name, bytes) in &after {
        if before.contains_key(name) {
            continue;
        }
        match name.as_str() {
            "stsd.db-shm" => {}
            "stsd.db-wal" => assert!(bytes.is_empty(), "the WAL holds {} bytes", bytes.len()),
            other => panic!("new file {other} in the data directory"),
        }
    }

    std::fs::write(&key_path, &right_key).unwrap();
    let b = Server::start_in(&data, &Opts::default());
    assert_eq!(b.account, account);
    assert_works(&b, &session);
    assert_works(&b, &b.root);
}

/// The listening line announces readiness, so SIGTERM right after it must already be a graceful shutdown.
/// (Found failing: the server installs its SIGTERM handler only when the shutdown future is first polled,
/// after printing the line, so an early SIGTERM kills it with the default action: "signal: 15".)
#[test]
fn sigterm_right_after_the_listening_line_is_graceful() {
    let dir = TempDir::new("earlyterm");
    let data = dir.data_dir();
    let mut failures = Vec::new();
    for i in 0..30 {
        let ended = Server::start_then_sigterm_at_once(&data, &Opts::default());
        if !ended.status.success() {
            failures.push(format!("start {i}: {}", ended.status));
        }
    }
    assert!(
        failures.is_empty(),
        "SIGTERM right after the listening line was not graceful in {} of 30 starts: {failures:?}",
        failures.len()
    );
}

#[test]
fn base64_helper_matches_known_vectors() {
    assert_eq!(base64(b""), "");
    assert_eq!(base64(b"f"), "Zg==");
    assert_eq!(base64(b"fo"), "Zm8=");
    assert_eq!(base64(b"foo"), "Zm9v");
    assert_eq!(base64(b"foobar"), "Zm9vYmFy");
}
