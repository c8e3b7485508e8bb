//! Store conformance: every check runs against SQLite and, when `STSD_TEST_DATABASE_URL` names a
//! PostgreSQL server, against PostgreSQL too (a fresh database per check).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::sync::Arc;
use stsd_core::crypto::SealingKey;
use stsd_core::secret::Secret;
use stsd_store::iam::{DeviceKind, ROOT_OWNER};
use stsd_store::{KeyStatus, OpenOptions, Owner, Store, StoreError, User};

fn key() -> (Vec<u8>, SealingKey) {
    let b = SealingKey::generate_bytes().to_vec();
    let k = SealingKey::from_bytes(&b).unwrap();
    (b, k)
}

fn unique(prefix: &str) -> String {
    let mut b = [0u8; 6];
    stsd_core::random_fill(&mut b);
    format!(
        "{prefix}_{}",
        b.iter().map(|x| format!("{x:02x}")).collect::<String>()
    )
}

/// A fresh database URL for each backend available.
async fn backends() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let dir = std::env::temp_dir().join(unique("stsd_conf"));
    std::fs::create_dir_all(&dir).unwrap();
    out.push((
        "sqlite".to_owned(),
        format!("sqlite://{}?mode=rwc", dir.join("t.db").display()),
    ));
    if let Ok(base) = std::env::var("STSD_TEST_DATABASE_URL") {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        let name = unique("stsd_conf");
        let mut c = sqlx::AnyConnection::connect(&base)
            .await
            .expect("connect to STSD_TEST_DATABASE_URL");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut c)
            .await
            .unwrap();
        let (prefix, _) = base.rsplit_once('/').unwrap();
        out.push(("postgres".to_owned(), format!("{prefix}/{name}")));
    }
    out
}

async fn open(url: &str, k: &[u8]) -> Store {
    Store::open_url(
        url,
        SealingKey::from_bytes(k).unwrap(),
        &OpenOptions::default(),
    )
    .await
    .unwrap()
}

fn user(name: &str) -> User {
    User {
        user_id: stsd_core::ids::new_user_id(123_456_789_012),
        name: name.to_owned(),
        path: "/".to_owned(),
        created_at: 1_700_000_000,
        sessions_not_before: 0,
    }
}

#[tokio::test]
async fn migrations_master_key_and_account() {
    for (backend, url) in backends().await {
        let (kb, _) = key();
        let s = open(&url, &kb).await;
        assert_eq!(
            s.migrate().await.unwrap(),
            0,
            "{backend}: migrations re-ran"
        );
        let acct = s.init_account(None).await.unwrap();
        assert_eq!(s.init_account(None).await.unwrap(), acct, "{backend}");
        assert_eq!(s.init_account(Some(acct)).await.unwrap(), acct, "{backend}");
        assert!(
            matches!(
                s.init_account(Some(acct + 1)).await,
                Err(StoreError::Mismatch(_))
            ),
            "{backend}"
        );
        s.close().await;
        let (other, _) = key();
        let err = Store::open_url(
            &url,
            SealingKey::from_bytes(&other).unwrap(),
            &OpenOptions::default(),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, StoreError::WrongMasterKey),
            "{backend}: {err}"
        );
        // Nothing was damaged: the right key still opens it.
        let s = open(&url, &kb).await;
        assert_eq!(s.init_account(None).await.unwrap(), acct, "{backend}");
    }
}

#[tokio::test]
async fn keys_users_and_limits() {
    for (backend, url) in backends().await {
        let (kb, _) = key();
        let s = Arc::new(open(&url, &kb).await);
        let secret = Secret::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY");
        s.insert_root_key("AKIAROOT000000000001", &secret, 1)
            .await
            .unwrap();
        let k = s.access_key("AKIAROOT000000000001").await.unwrap().unwrap();
        assert_eq!(k.owner, Owner::Root, "{backend}");
        assert!(k.secret.ct_eq(secret.expose()), "{backend}");
        assert!(
            s.access_key("AKIANOPE000000000001")
                .await
                .unwrap()
                .is_none()
        );

        let alice = user("Alice");
        s.create_user(&alice).await.unwrap();
        assert!(
            matches!(
                s.create_user(&user("alice")).await,
                Err(StoreError::AlreadyExists)
            ),
            "{backend}"
        );
        assert_eq!(
            s.user_by_name("ALICE").await.unwrap().unwrap().user_id,
            alice.user_id
        );

        // A taken key id (root's) is refused and leaves nothing written, so it does not count
        // against the user's two keys.
        for _ in 0..3 {
            assert!(
                matches!(
                    s.insert_user_key(&alice.user_id, "AKIAROOT000000000001", &Secret::new("x"), 2)
                        .await,
                    Err(StoreError::AlreadyExists)
                ),
                "{backend}"
            );
        }
        // 10 concurrent key creations for one user, every other one with a taken id (on SQLite they
        // share commits): the taken ids are refused, exactly 2 of the others succeed.
        let mut tasks = Vec::new();
        for i in 0..10 {
            let s = Arc::clone(&s);
            let uid = alice.user_id.clone();
            tasks.push(tokio::spawn(async move {
                let id = if i % 2 == 1 {
                    "AKIAROOT000000000001".to_owned()
                } else {
                    format!("AKIAUSER0000000000{i:02}")
                };
                let r = s
                    .insert_user_key(&uid, &id, &Secret::new(format!("secret{i}")), 2)
                    .await;
                (i, r)
            }));
        }
        let mut ok = 0;
        for t in tasks {
            match t.await.unwrap() {
                (i, Ok(())) if i % 2 == 0 => ok += 1,
                (_, Err(StoreError::LimitExceeded)) => {}
                (i, Err(StoreError::AlreadyExists)) if i % 2 == 1 => {}
                (i, r) => panic!("{backend}: {i}: {r:?}"),
            }
        }
        assert_eq!(ok, 2, "{backend}: key limit");
        let keys = s.list_keys(Some(&alice.user_id), None, 10).await.unwrap();
        assert_eq!(keys.len(), 2, "{backend}");
        assert!(
            matches!(
                s.delete_user(&alice.user_id).await,
                Err(StoreError::Conflict("keys"))
            ),
            "{backend}"
        );
        let id = keys[0].access_key_id.clone();
        assert!(
            s.set_key_status(&id, Some(&alice.user_id), KeyStatus::Inactive)
                .await
                .unwrap()
        );
        assert!(
            !s.set_key_status(&id, None, KeyStatus::Inactive)
                .await
                .unwrap(),
            "{backend}: root matched a user key"
        );
        assert_eq!(
            s.access_key(&id).await.unwrap().unwrap().status,
            KeyStatus::Inactive
        );
        for k in &keys {
            assert!(
                s.delete_key(&k.access_key_id, Some(&alice.user_id))
                    .await
                    .unwrap()
            );
        }
        s.delete_user(&alice.user_id).await.unwrap();
        assert!(matches!(
            s.delete_user(&alice.user_id).await,
            Err(StoreError::NotFound)
        ));

        // 20 concurrent creations of one name: exactly one wins.
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let s = Arc::clone(&s);
            tasks.push(tokio::spawn(
                async move { s.create_user(&user("race")).await },
            ));
        }
        let mut won = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(()) => won += 1,
                Err(StoreError::AlreadyExists) => {}
                Err(e) => panic!("{backend}: {e}"),
            }
        }
        assert_eq!(won, 1, "{backend}: concurrent CreateUser");

        // Paging by name with a path prefix.
        for n in ["u1", "u2", "u3", "u4", "u5"] {
            let mut u = user(n);
            u.path = "/p/".into();
            s.create_user(&u).await.unwrap();
        }
        let page1 = s.list_users("/p/", None, 3).await.unwrap();
        let page2 = s.list_users("/p/", Some(&page1[2].name), 3).await.unwrap();
        let names: Vec<String> = page1.iter().chain(&page2).map(|u| u.name.clone()).collect();
        assert_eq!(names, ["u1", "u2", "u3", "u4", "u5"], "{backend}");
        assert_eq!(
            s.list_users("/", None, 100).await.unwrap().len(),
            6,
            "{backend}"
        );

        // Last-use records keep the latest time.
        s.record_last_used(&[(
            "AKIAROOT000000000001".into(),
            50,
            "us-east-1".into(),
            "sts".into(),
        )])
        .await
        .unwrap();
        s.record_last_used(&[(
            "AKIAROOT000000000001".into(),
            40,
            "eu-west-1".into(),
            "iam".into(),
        )])
        .await
        .unwrap();
        let m = s.key_meta("AKIAROOT000000000001").await.unwrap().unwrap();
        assert_eq!(
            m.last_used,
            Some((50, "us-east-1".into(), "sts".into())),
            "{backend}"
        );
        // Many keys at once (several statements), unknown ones ignored; a key listed twice keeps its
        // latest use.
        let mut many: Vec<(String, i64, String, String)> = (0..1200)
            .map(|i| {
                (
                    format!("AKIAUNKNOWN{i:09}"),
                    60,
                    "us-east-1".into(),
                    "sts".into(),
                )
            })
            .collect();
        many.push((
            "AKIAROOT000000000001".into(),
            70,
            "ap-south-1".into(),
            "iam".into(),
        ));
        many.push((
            "AKIAROOT000000000001".into(),
            65,
            "eu-west-1".into(),
            "sts".into(),
        ));
        s.record_last_used(&many).await.unwrap();
        let m = s.key_meta("AKIAROOT000000000001").await.unwrap().unwrap();
        assert_eq!(
            m.last_used,
            Some((70, "ap-south-1".into(), "iam".into())),
            "{backend}"
        );
    }
}

#[tokio::test]
async fn mfa_replay_and_lockout() {
    for (backend, url) in backends().await {
        let (kb, _) = key();
        let s = Arc::new(open(&url, &kb).await);
        let bob = user("bob");
        s.create_user(&bob).await.unwrap();
        let seed = Secret::new("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP");
        s.create_mfa_device(
            "arn:aws:iam::123456789012:mfa/bob",
            DeviceKind::Virtual,
            "bob",
            "/",
            &seed,
            None,
            1,
        )
        .await
        .unwrap();
        assert!(matches!(
            s.create_mfa_device(
                "arn:aws:iam::123456789012:mfa/bob",
                DeviceKind::Virtual,
                "bob",
                "/",
                &seed,
                None,
                1
            )
            .await,
            Err(StoreError::AlreadyExists)
        ));
        let serial = "arn:aws:iam::123456789012:mfa/bob";
        s.enable_mfa_device(serial, &bob.user_id, 10, 100, 0)
            .await
            .unwrap();
        assert!(matches!(
            s.enable_mfa_device(serial, ROOT_OWNER, 10, 100, 0).await,
            Err(StoreError::AlreadyExists)
        ));
        let d = s.mfa_device(serial).await.unwrap().unwrap();
        assert!(d.seed.ct_eq(seed.expose()), "{backend}");
        assert_eq!(
            (d.owner.as_deref(), d.last_step),
            (Some(bob.user_id.as_str()), Some(100))
        );

        // Older or equal steps never; 50 concurrent acceptances of one new step: exactly one.
        let d = Arc::new(d);
        assert!(!s.mfa_accept_step(&d, 100, 20).await.unwrap(), "{backend}");
        assert!(!s.mfa_accept_step(&d, 99, 20).await.unwrap(), "{backend}");
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let (s, d) = (Arc::clone(&s), Arc::clone(&d));
            tasks.push(tokio::spawn(async move {
                s.mfa_accept_step(&d, 101, 20).await.unwrap()
            }));
        }
        let mut wins = 0;
        for t in tasks {
            wins += usize::from(t.await.unwrap());
        }
        assert_eq!(wins, 1, "{backend}: replay race");

        // 3 failures within the window lock the device; the lock refuses even a fresh step.
        assert!(
            !s.mfa_record_failure(serial, 1000, 3, 900, 60)
                .await
                .unwrap()
        );
        assert!(
            !s.mfa_record_failure(serial, 1001, 3, 900, 60)
                .await
                .unwrap()
        );
        assert!(
            s.mfa_record_failure(serial, 1002, 3, 900, 60)
                .await
                .unwrap(),
            "{backend}: not locked"
        );
        assert_eq!(
            s.mfa_device(serial).await.unwrap().unwrap().locked_until,
            Some(1062)
        );
        assert!(
            !s.mfa_accept_step(&d, 200, 1010).await.unwrap(),
            "{backend}: lock ignored"
        );
        assert!(
            s.mfa_accept_step(&d, 200, 1062).await.unwrap(),
            "{backend}: lock did not end"
        );
        // A copy of the device from before a resynchronisation (another drift) is refused; the
        // device as stored now is not.
        assert!(s.resync_mfa_device(serial, 201, 1).await.unwrap());
        assert!(
            !s.mfa_accept_step(&d, 202, 1062).await.unwrap(),
            "{backend}: stale drift accepted"
        );
        let d = Arc::new(s.mfa_device(serial).await.unwrap().unwrap());
        assert!(s.mfa_accept_step(&d, 202, 1062).await.unwrap(), "{backend}");
        // Failures far apart do not add up.
        assert!(
            !s.mfa_record_failure(serial, 2000, 3, 900, 60)
                .await
                .unwrap()
        );
        assert!(
            !s.mfa_record_failure(serial, 2000 + 901, 3, 900, 60)
                .await
                .unwrap()
        );
        assert!(
            !s.mfa_record_failure(serial, 2000 + 902, 3, 900, 60)
                .await
                .unwrap(),
            "{backend}"
        );

        s.deactivate_mfa_device(serial, &bob.user_id).await.unwrap();
        assert!(matches!(
            s.deactivate_mfa_device(serial, &bob.user_id).await,
            Err(StoreError::NotFound)
        ));
        assert!(
            !s.mfa_accept_step(&d, 300, 3000).await.unwrap(),
            "{backend}: unassigned device accepted"
        );
        // Deleted, created again under the same serial with another seed and enabled for the same
        // user: a copy of the old device is refused (another seed), the new one accepted.
        s.delete_virtual_mfa_device(serial).await.unwrap();
        assert!(s.mfa_device(serial).await.unwrap().is_none());
        let seed2 = Secret::new("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        s.create_mfa_device(serial, DeviceKind::Virtual, "bob", "/", &seed2, None, 1)
            .await
            .unwrap();
        s.enable_mfa_device(serial, &bob.user_id, 10, 100, 1)
            .await
            .unwrap();
        assert!(
            !s.mfa_accept_step(&d, 301, 3000).await.unwrap(),
            "{backend}: the old seed's copy accepted"
        );
        let d = s.mfa_device(serial).await.unwrap().unwrap();
        assert!(s.mfa_accept_step(&d, 301, 3000).await.unwrap(), "{backend}");
        s.deactivate_mfa_device(serial, &bob.user_id).await.unwrap();
        s.delete_virtual_mfa_device(serial).await.unwrap();
    }
}

/// The key and the device read in one statement are what the two separate reads give, for a user's
/// key and the root's, an enabled device, an unassigned one and a missing one; a missing key reads as
/// nothing at all.
#[tokio::test]
async fn key_and_device_read_together_match_the_separate_reads() {
    for (backend, url) in backends().await {
        let (kb, _) = key();
        let s = open(&url, &kb).await;
        let carol = user("carol");
        s.create_user(&carol).await.unwrap();
        s.insert_user_key(
            &carol.user_id,
            "AKIACAROL00000000001",
            &Secret::new("carol-secret"),
            5,
        )
        .await
        .unwrap();
        s.insert_root_key("AKIAROOT000000000009", &Secret::new("root-secret"), 6)
            .await
            .unwrap();
        let enabled = "arn:aws:iam::123456789012:mfa/carol";
        let spare = "arn:aws:iam::123456789012:mfa/spare";
        for (serial, seed) in [
            (enabled, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"),
            (spare, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"),
        ] {
            s.create_mfa_device(
                serial,
                DeviceKind::Virtual,
                "carol",
                "/",
                &Secret::new(seed),
                None,
                7,
            )
            .await
            .unwrap();
        }
        s.enable_mfa_device(enabled, &carol.user_id, 10, 100, -1)
            .await
            .unwrap();
        s.mfa_record_failure(enabled, 200, 5, 900, 60)
            .await
            .unwrap();
        let missing = "arn:aws:iam::123456789012:mfa/missing";
        for key_id in ["AKIACAROL00000000001", "AKIAROOT000000000009"] {
            let alone = s.access_key(key_id).await.unwrap().unwrap();
            for serial in [enabled, spare, missing] {
                let (k, d) = s
                    .access_key_and_mfa_device(key_id, serial)
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(format!("{k:?}"), format!("{alone:?}"), "{backend} {key_id}");
                assert!(k.secret.ct_eq(alone.secret.expose()), "{backend} {key_id}");
                let read = s.mfa_device(serial).await.unwrap();
                assert_eq!(d.is_some(), serial != missing, "{backend} {serial}");
                assert_eq!(d.is_some(), read.is_some(), "{backend} {serial}");
                if let (Some(d), Some(read)) = (d, read) {
                    assert_eq!(format!("{d:?}"), format!("{read:?}"), "{backend} {serial}");
                    assert!(d.seed.ct_eq(read.seed.expose()), "{backend} {serial}");
                    assert_eq!(d.sealed_seed, read.sealed_seed, "{backend} {serial}");
                }
            }
        }
        let d = s
            .access_key_and_mfa_device("AKIACAROL00000000001", enabled)
            .await
            .unwrap()
            .unwrap()
            .1
            .unwrap();
        assert_eq!(
            (
                d.owner.as_deref(),
                d.last_step,
                d.drift_steps,
                d.failed_count
            ),
            (Some(carol.user_id.as_str()), Some(100), -1, 1),
            "{backend}"
        );
        assert!(
            s.access_key_and_mfa_device("AKIANOPE000000000001", enabled)
                .await
                .unwrap()
                .is_none(),
            "{backend}"
        );
    }
}

/// Concurrent acceptances for many devices (on SQLite they share commits): each device accepts a step
/// once, an older step never, the newest step wins whatever the order, and everything acknowledged is
/// there after the store is closed and opened again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mfa_concurrent_acceptances_across_devices() {
    const DEVICES: usize = 30;
    for (backend, url) in backends().await {
        let (kb, _) = key();
        let s = Arc::new(open(&url, &kb).await);
        let seed = Secret::new("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP");
        let mut serials = Vec::new();
        for i in 0..DEVICES {
            let u = user(&format!("dev{i}"));
            s.create_user(&u).await.unwrap();
            let serial = format!("arn:aws:iam::123456789012:mfa/dev{i}");
            s.create_mfa_device(&serial, DeviceKind::Virtual, &u.name, "/", &seed, None, 1)
                .await
                .unwrap();
            s.enable_mfa_device(&serial, &u.user_id, 10, 100, 0)
                .await
                .unwrap();
            serials.push(serial);
        }
        // Per device: three presentations of step 101 and one of the used step 100, all at once.
        let mut tasks = Vec::new();
        for (i, serial) in serials.iter().enumerate() {
            for step in [101, 100, 101, 101] {
                let (s, serial) = (Arc::clone(&s), serial.clone());
                tasks.push(tokio::spawn(async move {
                    let d = s.mfa_device(&serial).await.unwrap().unwrap();
                    (i, step, s.mfa_accept_step(&d, step, 20).await.unwrap())
                }));
            }
        }
        let mut wins = [0usize; DEVICES];
        for t in tasks {
            let (i, step, accepted) = t.await.unwrap();
            assert!(!(accepted && step == 100), "{backend}: used step accepted");
            wins[i] += usize::from(accepted);
        }
        assert!(wins.iter().all(|&w| w == 1), "{backend}: {wins:?}");
        // Steps 102 and 103 at once: 103 always wins, 102 only if it came first.
        let mut tasks = Vec::new();
        for serial in &serials {
            for step in [103, 102] {
                let (s, serial) = (Arc::clone(&s), serial.clone());
                tasks.push(tokio::spawn(async move {
                    let d = s.mfa_device(&serial).await.unwrap().unwrap();
                    (step, s.mfa_accept_step(&d, step, 20).await.unwrap())
                }));
            }
        }
        for t in tasks {
            let (step, accepted) = t.await.unwrap();
            assert!(accepted || step == 102, "{backend}: newest step refused");
        }
        s.close().await;
        drop(s);
        let s = open(&url, &kb).await;
        for serial in &serials {
            let d = s.mfa_device(serial).await.unwrap().unwrap();
            assert_eq!(d.last_step, Some(103), "{backend}: {serial}");
        }
        s.close().await;
    }
}

#[tokio::test]
async fn key_ring_rotation_master_key_and_revocation() {
    for (backend, url) in backends().await {
        let (kb, _) = key();
        let s = open(&url, &kb).await;
        let ring = s.load_key_ring(1_000).await.unwrap();
        assert_eq!(ring.key_ids(), vec![1], "{backend}");
        assert_eq!(ring.signing_key_id(), Some(1));
        let k2 = s.create_token_key(2_000).await.unwrap();
        assert_eq!(k2, 2);
        // Before valid_from the old key still seals; after, the new one.
        assert_eq!(
            s.load_key_ring(1_500).await.unwrap().signing_key_id(),
            Some(1),
            "{backend}"
        );
        assert_eq!(
            s.load_key_ring(2_000).await.unwrap().signing_key_id(),
            Some(2),
            "{backend}"
        );
        assert!(
            s.retire_token_keys(2_000 + 100, 129_600)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            s.retire_token_keys(2_000 + 129_600, 129_600).await.unwrap(),
            vec![1],
            "{backend}"
        );
        assert_eq!(s.load_key_ring(200_000).await.unwrap().key_ids(), vec![2]);

        s.insert_root_key(
            "AKIAROOT000000000002",
            &Secret::new("s3cret-s3cret-s3cret"),
            1,
        )
        .await
        .unwrap();
        let mut u = user("carol");
        u.sessions_not_before = 0;
        s.create_user(&u).await.unwrap();
        assert_eq!(s.sessions_not_before(&u.user_id).await.unwrap(), Some(0));
        s.revoke_sessions(&u.user_id, 77).await.unwrap();
        assert_eq!(
            s.sessions_not_before(&u.user_id).await.unwrap(),
            Some(77),
            "{backend}"
        );
        s.revoke_sessions(ROOT_OWNER, 88).await.unwrap();
        assert_eq!(
            s.sessions_not_before(ROOT_OWNER).await.unwrap(),
            Some(88),
            "{backend}"
        );
        assert_eq!(s.sessions_not_before("AIDANOBODY").await.unwrap(), None);
        assert!(matches!(
            s.revoke_sessions("AIDANOBODY", 1).await,
            Err(StoreError::NotFound)
        ));

        // Master key rotation re-encrypts everything; the old key no longer opens the store.
        let (new_b, new_k) = key();
        let s = s.rotate_master_key(new_k).await.unwrap();
        assert!(
            s.access_key("AKIAROOT000000000002")
                .await
                .unwrap()
                .unwrap()
                .secret
                .ct_eq("s3cret-s3cret-s3cret")
        );
        s.close().await;
        assert!(matches!(
            Store::open_url(
                &url,
                SealingKey::from_bytes(&kb).unwrap(),
                &OpenOptions::default()
            )
            .await,
            Err(StoreError::WrongMasterKey)
        ));
        let s = open(&url, &new_b).await;
        assert_eq!(
            s.load_key_ring(200_000).await.unwrap().key_ids(),
            vec![2],
            "{backend}"
        );
    }
}

#[tokio::test]
async fn policies_groups_and_attachments() {
    use stsd_store::policy::{Applicable, EntityKind, Group, ManagedPolicy, Source};
    for (backend, url) in backends().await {
        let (kb, _) = key();
        let s = Arc::new(open(&url, &kb).await);
        let alice = user("alice");
        s.create_user(&alice).await.unwrap();
        let uid = alice.user_id.as_str();

        // Inline policies: replace by name, aggregate size limit, delete.
        s.put_inline_policy(EntityKind::User, uid, "p1", "{\"a\":1}", 1000, 2048)
            .await
            .unwrap();
        s.put_inline_policy(EntityKind::User, uid, "p1", "{\"a\":2}", 1500, 2048)
            .await
            .unwrap();
        assert!(
            matches!(
                s.put_inline_policy(EntityKind::User, uid, "p2", "{}", 600, 2048)
                    .await,
                Err(StoreError::LimitExceeded)
            ),
            "{backend}"
        );
        assert_eq!(
            s.inline_policy(EntityKind::User, uid, "p1")
                .await
                .unwrap()
                .as_deref(),
            Some("{\"a\":2}"),
            "{backend}"
        );
        assert!(matches!(
            s.put_inline_policy(EntityKind::User, "AIDANOPE", "p", "{}", 1, 2048)
                .await,
            Err(StoreError::NotFound)
        ));
        assert_eq!(
            s.list_inline_policies(EntityKind::User, uid, None, 10)
                .await
                .unwrap(),
            vec!["p1".to_owned()]
        );
        // A user with policies cannot be deleted.
        assert!(
            matches!(
                s.delete_user(uid).await,
                Err(StoreError::Conflict("policies"))
            ),
            "{backend}"
        );

        // Managed policies and versions.
        let arn = "arn:aws:iam::123456789012:policy/Ops";
        let p = ManagedPolicy {
            policy_id: "ANPATEST0000000000001".into(),
            name: "Ops".into(),
            path: "/".into(),
            arn: arn.into(),
            description: Some("d".into()),
            default_version: "v1".into(),
            attachment_count: 0,
            created_at: 10,
            updated_at: 10,
        };
        s.create_policy(&p, "doc1").await.unwrap();
        let mut dup = p.clone();
        dup.policy_id = "ANPATEST0000000000002".into();
        dup.name = "OPS".into();
        dup.arn = "arn:aws:iam::123456789012:policy/OPS".into();
        assert!(
            matches!(
                s.create_policy(&dup, "x").await,
                Err(StoreError::AlreadyExists)
            ),
            "{backend}: names are unique case-insensitively"
        );
        let pid = p.policy_id.as_str();
        for n in 2..=5 {
            let v = s
                .create_policy_version(pid, &format!("doc{n}"), n == 3, 20)
                .await
                .unwrap();
            assert_eq!(v, format!("v{n}"), "{backend}");
        }
        assert!(
            matches!(
                s.create_policy_version(pid, "doc6", false, 20).await,
                Err(StoreError::LimitExceeded)
            ),
            "{backend}: six versions"
        );
        let got = s.policy_by_arn(arn).await.unwrap().unwrap();
        assert_eq!(got.default_version, "v3", "{backend}");
        assert!(matches!(
            s.delete_policy_version(pid, "v3").await,
            Err(StoreError::Conflict("default"))
        ));
        s.delete_policy_version(pid, "v2").await.unwrap();
        assert!(matches!(
            s.delete_policy_version(pid, "v2").await,
            Err(StoreError::NotFound)
        ));
        // Version ids are never reused.
        assert_eq!(
            s.create_policy_version(pid, "doc7", false, 30)
                .await
                .unwrap(),
            "v6"
        );
        let versions: Vec<String> = s
            .policy_versions(pid)
            .await
            .unwrap()
            .into_iter()
            .map(|v| v.version_id)
            .collect();
        assert_eq!(versions, ["v6", "v5", "v4", "v3", "v1"], "{backend}");
        s.set_default_policy_version(pid, "v6", 40).await.unwrap();
        assert!(matches!(
            s.set_default_policy_version(pid, "v2", 40).await,
            Err(StoreError::NotFound)
        ));
        assert_eq!(
            s.policy_version(pid, "v6").await.unwrap().unwrap().document,
            "doc7"
        );
        assert!(
            s.policy_version(pid, "v6")
                .await
                .unwrap()
                .unwrap()
                .is_default
        );

        // Groups and membership.
        let g = Group {
            group_id: "AGPATEST0000000000001".into(),
            name: "Admins".into(),
            path: "/".into(),
            created_at: 5,
        };
        s.create_group(&g).await.unwrap();
        assert!(matches!(
            s.create_group(&Group {
                group_id: "AGPATEST0000000000002".into(),
                name: "admins".into(),
                ..g.clone()
            })
            .await,
            Err(StoreError::AlreadyExists)
        ));
        assert!(s.add_user_to_group(&g.group_id, uid, 50).await.unwrap());
        assert!(!s.add_user_to_group(&g.group_id, uid, 50).await.unwrap());
        assert_eq!(s.groups_for_user(uid).await.unwrap(), vec![g.clone()]);
        assert_eq!(
            s.group_members(&g.group_id, None, 10).await.unwrap().len(),
            1
        );
        assert!(matches!(
            s.delete_group(&g.group_id).await,
            Err(StoreError::Conflict("members"))
        ));

        // Attachments: idempotent, counted, limited, block deletes.
        assert!(
            s.attach_policy(EntityKind::Group, &g.group_id, arn, Some(pid), 10, 60)
                .await
                .unwrap()
        );
        assert!(
            !s.attach_policy(EntityKind::Group, &g.group_id, arn, Some(pid), 10, 60)
                .await
                .unwrap()
        );
        let builtin = "arn:aws:iam::aws:policy/Builtin";
        assert!(
            s.attach_policy(EntityKind::User, uid, builtin, None, 1, 60)
                .await
                .unwrap()
        );
        assert!(
            matches!(
                s.attach_policy(EntityKind::User, uid, arn, Some(pid), 1, 60)
                    .await,
                Err(StoreError::LimitExceeded)
            ),
            "{backend}: attachment quota"
        );
        assert_eq!(
            s.policy_by_arn(arn)
                .await
                .unwrap()
                .unwrap()
                .attachment_count,
            1
        );
        assert!(matches!(
            s.delete_policy(pid).await,
            Err(StoreError::Conflict("attached"))
        ));

        // What applies to alice: her inline policy, her built-in attachment, the group's managed policy.
        let applicable = s.user_policies(uid).await.unwrap();
        assert_eq!(
            applicable,
            vec![
                Applicable {
                    source: Source::UserInline { name: "p1".into() },
                    document: Some("{\"a\":2}".into()),
                },
                Applicable {
                    source: Source::Managed {
                        arn: builtin.into(),
                        via_group: None
                    },
                    document: None,
                },
                Applicable {
                    source: Source::Managed {
                        arn: arn.into(),
                        via_group: Some("Admins".into())
                    },
                    document: Some("doc7".into()),
                },
            ],
            "{backend}"
        );
        assert_eq!(
            s.policy_entities(arn).await.unwrap(),
            vec![(EntityKind::Group, g.group_id.clone())]
        );

        // Tear down in the order IAM requires.
        assert!(
            s.detach_policy(EntityKind::Group, &g.group_id, arn)
                .await
                .unwrap()
        );
        assert!(
            !s.detach_policy(EntityKind::Group, &g.group_id, arn)
                .await
                .unwrap()
        );
        assert!(matches!(
            s.delete_policy(pid).await,
            Err(StoreError::Conflict("versions"))
        ));
        for v in ["v1", "v3", "v4", "v5"] {
            s.delete_policy_version(pid, v).await.unwrap();
        }
        s.delete_policy(pid).await.unwrap();
        assert!(s.policy_by_arn(arn).await.unwrap().is_none());
        assert!(s.remove_user_from_group(&g.group_id, uid).await.unwrap());
        s.delete_group(&g.group_id).await.unwrap();
        assert!(matches!(
            s.delete_user(uid).await,
            Err(StoreError::Conflict("policies"))
        ));
        assert!(
            s.delete_inline_policy(EntityKind::User, uid, "p1")
                .await
                .unwrap()
        );
        assert!(matches!(
            s.delete_user(uid).await,
            Err(StoreError::Conflict("attached"))
        ));
        s.detach_policy(EntityKind::User, uid, builtin)
            .await
            .unwrap();
        s.delete_user(uid).await.unwrap();
    }
}

/// A user created with policies (the server's default user policies) comes with all of them or is not
/// created at all: a policy that is gone or over the quota leaves no user, no attachment and no count
/// behind, also when it shares a batch (SQLite's group commit) with a creation that succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_come_with_their_default_policies_or_not_at_all() {
    use stsd_store::policy::{EntityKind, ManagedPolicy};
    for (backend, url) in backends().await {
        let (kb, _) = key();
        let s = Arc::new(open(&url, &kb).await);
        let arn = "arn:aws:iam::123456789012:policy/Defaults";
        let p = ManagedPolicy {
            policy_id: "ANPATEST0000000000009".into(),
            name: "Defaults".into(),
            path: "/".into(),
            arn: arn.into(),
            description: None,
            default_version: "v1".into(),
            attachment_count: 0,
            created_at: 10,
            updated_at: 10,
        };
        s.create_policy(&p, "{}").await.unwrap();
        let builtin = "arn:aws:iam::aws:policy/StsdSelfManageCredentials";
        let both = vec![
            (builtin.to_owned(), None),
            (arn.to_owned(), Some(p.policy_id.clone())),
        ];
        let dora = user("dora");
        s.create_user_with_policies(&dora, &both, 10).await.unwrap();
        assert_eq!(
            s.attached_policies(EntityKind::User, &dora.user_id)
                .await
                .unwrap(),
            vec![arn.to_owned(), builtin.to_owned()],
            "{backend}"
        );
        let count = || async {
            s.policy_by_arn(arn)
                .await
                .unwrap()
                .unwrap()
                .attachment_count
        };
        assert_eq!(count().await, 1, "{backend}");

        let gone = vec![
            (builtin.to_owned(), None),
            (arn.to_owned(), Some("ANPAGONE000000000000".to_owned())),
        ];
        for (name, policies, max, expected) in [
            ("erin", &gone, 10, "NotFound"),
            ("fay", &both, 1, "LimitExceeded"),
        ] {
            let u = user(name);
            let refused = s.create_user_with_policies(&u, policies, max).await;
            let got = match refused {
                Err(StoreError::NotFound) => "NotFound",
                Err(StoreError::LimitExceeded) => "LimitExceeded",
                other => panic!("{backend} {name}: {other:?}"),
            };
            assert_eq!(got, expected, "{backend} {name}");
            assert!(
                s.user_by_name(name).await.unwrap().is_none(),
                "{backend} {name}"
            );
            assert!(
                s.attached_policies(EntityKind::User, &u.user_id)
                    .await
                    .unwrap()
                    .is_empty(),
                "{backend} {name}"
            );
        }
        assert_eq!(count().await, 1, "{backend}");

        // Side by side (one batch on SQLite, most of the time): each is answered for itself.
        let (gus, hal) = (user("gus"), user("hal"));
        let (ok, refused) = tokio::join!(
            s.create_user_with_policies(&gus, &both, 10),
            s.create_user_with_policies(&hal, &gone, 10),
        );
        ok.unwrap();
        assert!(matches!(refused, Err(StoreError::NotFound)), "{backend}");
        assert!(s.user_by_name("gus").await.unwrap().is_some(), "{backend}");
        assert!(s.user_by_name("hal").await.unwrap().is_none(), "{backend}");
        assert_eq!(count().await, 2, "{backend}");
    }
}

#[tokio::test]
async fn concurrent_attachments_respect_the_quota() {
    use stsd_store::policy::EntityKind;
    for (backend, url) in backends().await {
        let (kb, _) = key();
        let s = Arc::new(open(&url, &kb).await);
        let u = user("bob");
        s.create_user(&u).await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..20 {
            let s = s.clone();
            let uid = u.user_id.clone();
            tasks.push(tokio::spawn(async move {
                s.attach_policy(
                    EntityKind::User,
                    &uid,
                    &format!("arn:aws:iam::aws:policy/P{i}"),
                    None,
                    10,
                    1,
                )
                .await
            }));
        }
        let mut ok = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(true) => ok += 1,
                Err(StoreError::LimitExceeded) => {}
                other => panic!("{backend}: {other:?}"),
            }
        }
        assert_eq!(ok, 10, "{backend}");
        assert_eq!(
            s.attached_policies(EntityKind::User, &u.user_id)
                .await
                .unwrap()
                .len(),
            10,
            "{backend}"
        );
    }
}

/// Parallel root key creations never leave the root with more than two keys (the count and the insert are
/// one atomic step), and rotation replaces both keys at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn root_key_quota_holds_under_parallel_inserts() {
    for (backend, url) in backends().await {
        let (kb, _) = key();
        let s = Arc::new(open(&url, &kb).await);
        for round in 0..3 {
            let mut tasks = Vec::new();
            for i in 0..12 {
                let s = Arc::clone(&s);
                tasks.push(tokio::spawn(async move {
                    s.insert_root_key(
                        &format!("AKIAROOTRACE{round:02}{i:06}"),
                        &Secret::new("s3cret-s3cret-s3cret"),
                        1,
                    )
                    .await
                }));
            }
            let mut ok = 0;
            for t in tasks {
                match t.await.unwrap() {
                    Ok(()) => ok += 1,
                    Err(StoreError::LimitExceeded) => {}
                    Err(e) => panic!("{backend}: {e}"),
                }
            }
            let keys = s.root_keys().await.unwrap();
            assert_eq!(keys.len(), 2, "{backend}: round {round}");
            assert_eq!(
                ok,
                if round == 0 { 2 } else { 0 },
                "{backend}: round {round}"
            );
        }
        let old = s
            .rotate_root_key(
                "AKIAROOTROTATED00001",
                &Secret::new("s3cret-s3cret-s3cret"),
                2,
            )
            .await
            .unwrap();
        assert_eq!(old.len(), 2, "{backend}");
        let keys = s.root_keys().await.unwrap();
        assert_eq!(keys.len(), 1, "{backend}");
        assert_eq!(keys[0].access_key_id, "AKIAROOTROTATED00001", "{backend}");
        s.insert_root_key(
            "AKIAROOTAFTER0000001",
            &Secret::new("s3cret-s3cret-s3cret"),
            3,
        )
        .await
        .unwrap();
        assert!(matches!(
            s.insert_root_key(
                "AKIAROOTAFTER0000002",
                &Secret::new("s3cret-s3cret-s3cret"),
                3
            )
            .await,
            Err(StoreError::LimitExceeded)
        ));
    }
}

/// Users that exist when policies are introduced (migration 3) keep their self-service rights: the
/// migration attaches the built-in self-service policy to each of them.
#[tokio::test]
async fn migration_3_gives_existing_users_the_self_service_policy() {
    use sqlx::Connection;
    use stsd_store::migrations::{Dialect, MIGRATIONS, SELF_SERVICE_ARN};
    use stsd_store::policy::EntityKind;
    sqlx::any::install_default_drivers();
    let dir = std::env::temp_dir().join(unique("stsd_mig3"));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.join("t.db").display());
    {
        // A database as the release before policies left it: migrations 1 and 2, and a user.
        let mut c = sqlx::AnyConnection::connect(&url).await.unwrap();
        sqlx::raw_sql(
            "CREATE TABLE stsd_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, applied_at BIGINT NOT NULL)",
        )
        .execute(&mut c)
        .await
        .unwrap();
        for (version, description, sql) in MIGRATIONS.iter().filter(|m| m.0 <= 2) {
            sqlx::raw_sql(sqlx::AssertSqlSafe(Dialect::Sqlite.render(sql)))
                .execute(&mut c)
                .await
                .unwrap();
            sqlx::query("INSERT INTO stsd_migrations VALUES ($1, $2, 0)")
                .bind(*version)
                .bind(*description)
                .execute(&mut c)
                .await
                .unwrap();
        }
        sqlx::query("INSERT INTO users (user_id, name, name_key, path, created_at) VALUES ('AIDAOLD', 'old', 'old', '/', 1)")
            .execute(&mut c)
            .await
            .unwrap();
    }
    let (kb, _) = key();
    let s = open(&url, &kb).await;
    assert_eq!(
        s.attached_policies(EntityKind::User, "AIDAOLD")
            .await
            .unwrap(),
        vec![SELF_SERVICE_ARN.to_owned()]
    );
    // The counter matches the row, so DeleteUser asks for the detachment first.
    assert!(matches!(
        s.delete_user("AIDAOLD").await,
        Err(StoreError::Conflict("attached"))
    ));
    // Users created afterwards start with nothing, as in AWS.
    let new = user("new");
    s.create_user(&new).await.unwrap();
    assert!(
        s.attached_policies(EntityKind::User, &new.user_id)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn roles_policies_and_revocation() {
    use stsd_store::policy::{EntityKind, Source};
    use stsd_store::roles::Role;
    for (backend, url) in backends().await {
        let (kb, _) = key();
        let s = Arc::new(open(&url, &kb).await);
        let role = Role {
            role_id: stsd_core::ids::new_unique_id("AROA", 123_456_789_012),
            name: "Admin".into(),
            path: "/ops/".into(),
            trust_policy: "{\"Version\": \"2012-10-17\"}".into(),
            description: Some("d".into()),
            max_session_duration: 3600,
            created_at: 1_700_000_000,
            sessions_not_before: 0,
        };
        s.create_role(&role).await.unwrap();
        let mut dup = role.clone();
        dup.role_id = stsd_core::ids::new_unique_id("AROA", 123_456_789_012);
        dup.name = "admin".into();
        assert!(
            matches!(s.create_role(&dup).await, Err(StoreError::AlreadyExists)),
            "{backend}: names are unique case-insensitively"
        );
        let rid = role.role_id.as_str();
        assert_eq!(s.role_by_name("ADMIN").await.unwrap().unwrap(), role);
        assert_eq!(s.role_by_id(rid).await.unwrap().unwrap(), role);
        assert_eq!(s.list_roles("/ops/", None, 10).await.unwrap().len(), 1);
        assert!(s.list_roles("/dev/", None, 10).await.unwrap().is_empty());
        s.update_role(rid, None, Some(7200)).await.unwrap();
        s.update_trust_policy(rid, "{}").await.unwrap();
        let got = s.role_by_id(rid).await.unwrap().unwrap();
        assert_eq!(
            (
                got.max_session_duration,
                got.description.as_deref(),
                got.trust_policy.as_str()
            ),
            (7200, Some("d"), "{}"),
            "{backend}"
        );

        // Inline policies (10,240 aggregate) and attachments block deletion.
        s.put_inline_policy(EntityKind::Role, rid, "p", "{\"x\":1}", 9000, 10_240)
            .await
            .unwrap();
        assert!(matches!(
            s.put_inline_policy(EntityKind::Role, rid, "q", "{}", 2000, 10_240)
                .await,
            Err(StoreError::LimitExceeded)
        ));
        let arn = "arn:aws:iam::aws:policy/StsdSelfManageCredentials";
        assert!(
            s.attach_policy(EntityKind::Role, rid, arn, None, 10, 1)
                .await
                .unwrap()
        );
        let applicable = s.role_policies(rid).await.unwrap();
        assert_eq!(applicable.len(), 2, "{backend}");
        assert_eq!(
            applicable[0].source,
            Source::RoleInline { name: "p".into() }
        );
        assert!(matches!(
            s.delete_role(rid).await,
            Err(StoreError::Conflict("policies"))
        ));
        s.delete_inline_policy(EntityKind::Role, rid, "p")
            .await
            .unwrap();
        assert!(matches!(
            s.delete_role(rid).await,
            Err(StoreError::Conflict("attached"))
        ));
        assert_eq!(
            s.policy_entities(arn).await.unwrap(),
            vec![(EntityKind::Role, rid.to_owned())]
        );
        s.detach_policy(EntityKind::Role, rid, arn).await.unwrap();

        // Per-role revocation.
        assert_eq!(s.sessions_not_before(rid).await.unwrap(), Some(0));
        s.revoke_sessions(rid, 1_800_000_000).await.unwrap();
        assert_eq!(
            s.sessions_not_before(rid).await.unwrap(),
            Some(1_800_000_000)
        );
        s.delete_role(rid).await.unwrap();
        assert_eq!(s.sessions_not_before(rid).await.unwrap(), None, "{backend}");
        assert!(matches!(
            s.delete_role(rid).await,
            Err(StoreError::NotFound)
        ));
    }
}

#[tokio::test]
async fn login_profiles_and_password_policy() {
    use stsd_store::passwords::{MAX_HISTORY, PasswordPolicy, ProfileChange};
    for (backend, url) in backends().await {
        let (kb, _) = key();
        let s = open(&url, &kb).await;
        let bob = user("bob");
        s.create_user(&bob).await.unwrap();
        let id = bob.user_id.as_str();
        assert!(s.login_profile(id).await.unwrap().is_none(), "{backend}");
        // Only existing users (or the root) get a profile.
        assert!(
            matches!(
                s.create_login_profile("AIDANOSUCHUSER000001", "h0", false, 5)
                    .await,
                Err(StoreError::NotFound)
            ),
            "{backend}"
        );
        s.create_login_profile(id, "h1", true, 10).await.unwrap();
        assert!(
            matches!(
                s.create_login_profile(id, "h9", false, 11).await,
                Err(StoreError::AlreadyExists)
            ),
            "{backend}"
        );
        let p = s.login_profile(id).await.unwrap().unwrap();
        assert_eq!(
            (
                p.password_hash.as_str(),
                p.password_reset_required,
                p.created_at,
                p.password_changed_at
            ),
            ("h1", true, 10, 10),
            "{backend}"
        );
        assert!(p.history.is_empty(), "{backend}");
        // A user with a login profile cannot be deleted.
        assert!(
            matches!(
                s.delete_user(id).await,
                Err(StoreError::Conflict("login_profile"))
            ),
            "{backend}"
        );
        let change = |new_hash, expected_hash, reset_required, keep_history, now| ProfileChange {
            new_hash,
            expected_hash,
            reset_required,
            keep_history,
            now,
        };
        // Flag only: the password and its date stay.
        s.update_login_profile(id, change(None, None, Some(false), 0, 20))
            .await
            .unwrap();
        let p = s.login_profile(id).await.unwrap().unwrap();
        assert_eq!(
            (
                p.password_hash.as_str(),
                p.password_reset_required,
                p.password_changed_at
            ),
            ("h1", false, 10),
            "{backend}"
        );
        // New passwords push the old ones into the history, newest first, kept to the limit.
        for (i, h) in ["h2", "h3", "h4"].iter().enumerate() {
            s.update_login_profile(id, change(Some(h), None, None, 2, 30 + i as i64))
                .await
                .unwrap();
        }
        let p = s.login_profile(id).await.unwrap().unwrap();
        assert_eq!(p.password_hash, "h4", "{backend}");
        assert_eq!(
            p.history,
            vec!["h3".to_owned(), "h2".to_owned()],
            "{backend}"
        );
        assert_eq!((p.created_at, p.password_changed_at), (10, 32), "{backend}");
        // A change conditioned on a hash that is no longer current is refused and changes nothing.
        assert!(
            matches!(
                s.update_login_profile(id, change(Some("h5"), Some("h3"), Some(true), 2, 40))
                    .await,
                Err(StoreError::Conflict("changed"))
            ),
            "{backend}"
        );
        let same = s.login_profile(id).await.unwrap().unwrap();
        assert_eq!(same, p, "{backend}");
        s.update_login_profile(
            id,
            change(Some("h5"), Some("h4"), Some(true), MAX_HISTORY, 41),
        )
        .await
        .unwrap();
        assert_eq!(
            s.login_profile(id).await.unwrap().unwrap().history.len(),
            3,
            "{backend}"
        );
        assert!(
            matches!(
                s.update_login_profile(
                    "AIDANOSUCHUSER000001",
                    change(None, None, Some(true), 0, 1)
                )
                .await,
                Err(StoreError::NotFound)
            ),
            "{backend}"
        );
        // The root's profile.
        s.create_login_profile(ROOT_OWNER, "r1", false, 50)
            .await
            .unwrap();
        assert_eq!(
            s.login_profile(ROOT_OWNER)
                .await
                .unwrap()
                .unwrap()
                .password_hash,
            "r1",
            "{backend}"
        );
        // Wrong passwords: counted within the window, the third locks, a success forgets the count.
        assert!(!s.login_record_failure(id, 100, 3, 60, 900).await.unwrap());
        s.login_reset_failures(id).await.unwrap();
        assert!(!s.login_record_failure(id, 101, 3, 60, 900).await.unwrap());
        assert!(!s.login_record_failure(id, 102, 3, 60, 900).await.unwrap());
        // Outside the window, the count starts again.
        assert!(!s.login_record_failure(id, 200, 3, 60, 900).await.unwrap());
        assert!(!s.login_record_failure(id, 201, 3, 60, 900).await.unwrap());
        assert_eq!(
            s.login_profile(id).await.unwrap().unwrap().locked_until,
            None,
            "{backend}"
        );
        assert!(
            s.login_record_failure(id, 202, 3, 60, 900).await.unwrap(),
            "{backend}"
        );
        assert_eq!(
            s.login_profile(id).await.unwrap().unwrap().locked_until,
            Some(1102),
            "{backend}"
        );
        assert!(s.delete_login_profile(id).await.unwrap(), "{backend}");
        assert!(!s.delete_login_profile(id).await.unwrap(), "{backend}");
        s.delete_user(id).await.unwrap();

        // The account password policy: absent, set, replaced whole, deleted.
        assert!(s.password_policy().await.unwrap().is_none(), "{backend}");
        let mut policy = PasswordPolicy {
            minimum_password_length: 12,
            require_symbols: true,
            require_numbers: false,
            require_uppercase: true,
            require_lowercase: false,
            allow_users_to_change_password: true,
            max_password_age: 90,
            password_reuse_prevention: 5,
            hard_expiry: false,
        };
        s.put_password_policy(&policy).await.unwrap();
        assert_eq!(
            s.password_policy().await.unwrap(),
            Some(policy),
            "{backend}"
        );
        policy.require_symbols = false;
        policy.hard_expiry = true;
        policy.max_password_age = 0;
        s.put_password_policy(&policy).await.unwrap();
        assert_eq!(
            s.password_policy().await.unwrap(),
            Some(policy),
            "{backend}"
        );
        assert!(s.delete_password_policy().await.unwrap(), "{backend}");
        assert!(!s.delete_password_policy().await.unwrap(), "{backend}");
        assert!(s.password_policy().await.unwrap().is_none(), "{backend}");
    }
}

#[tokio::test]
async fn bulk_import_is_all_or_nothing() {
    use stsd_store::ImportedUser;
    for (backend, url) in backends().await {
        let (kb, _) = key();
        let s = open(&url, &kb).await;
        // More rows than one multi-row INSERT holds, so the chunking is exercised.
        let n = stsd_store::IMPORT_ROWS_PER_STATEMENT + 7;
        let batch: Vec<ImportedUser> = (0..n)
            .map(|i| ImportedUser {
                user: user(&format!("bulk-{i}")),
                access_key_id: format!("AKIABULK{i:012}"),
                secret: Secret::new(format!("bulk-secret-{i}")),
                key_created_at: 1_700_000_100,
            })
            .collect();
        s.import_users_with_keys(&batch).await.unwrap();
        let last = &batch[n - 1];
        let k = s.access_key(&last.access_key_id).await.unwrap().unwrap();
        assert!(k.secret.ct_eq(last.secret.expose()), "{backend}: secret");
        assert_eq!(k.status, KeyStatus::Active, "{backend}");
        match &k.owner {
            Owner::User(u) => assert_eq!(u.name, last.user.name, "{backend}"),
            Owner::Root => panic!("{backend}: imported key owned by root"),
        }
        // An imported user holds one key: one more is allowed, a third is refused.
        let uid = &batch[0].user.user_id;
        s.insert_user_key(uid, "AKIABULKSECOND000001", &Secret::new("x"), 2)
            .await
            .unwrap();
        assert!(
            matches!(
                s.insert_user_key(uid, "AKIABULKTHIRD0000001", &Secret::new("y"), 2)
                    .await,
                Err(StoreError::LimitExceeded)
            ),
            "{backend}: key count of an imported user"
        );

        // A batch whose last user's name is taken (case-insensitively) stores none of its users.
        let mut clash: Vec<ImportedUser> = (0..3)
            .map(|i| ImportedUser {
                user: user(&format!("fresh-{i}")),
                access_key_id: format!("AKIAFRESH{i:011}"),
                secret: Secret::new("z"),
                key_created_at: 1,
            })
            .collect();
        clash.push(ImportedUser {
            user: user("BULK-0"),
            access_key_id: "AKIAFRESHCLASH000001".to_owned(),
            secret: Secret::new("z"),
            key_created_at: 1,
        });
        assert!(
            matches!(
                s.import_users_with_keys(&clash).await,
                Err(StoreError::AlreadyExists)
            ),
            "{backend}"
        );
        assert!(
            s.user_by_name("fresh-0").await.unwrap().is_none(),
            "{backend}: half-written"
        );
        assert!(
            s.access_key("AKIAFRESH00000000000")
                .await
                .unwrap()
                .is_none(),
            "{backend}"
        );
        // So does a batch whose key id is taken.
        clash.pop();
        clash[2].access_key_id = last.access_key_id.clone();
        assert!(
            matches!(
                s.import_users_with_keys(&clash).await,
                Err(StoreError::AlreadyExists)
            ),
            "{backend}"
        );
        assert!(
            s.user_by_name("fresh-0").await.unwrap().is_none(),
            "{backend}: half-written"
        );
    }
}

/// A refused EnableMFADevice (the device already assigned, or none by that serial) leaves the user's
/// device count as it was: refusals running in the same group-commit batches as successes do not use
/// up the user's eight devices, and the ninth is still the one refused for the limit.
#[tokio::test]
async fn refused_device_enables_leave_the_device_count() {
    for (backend, url) in backends().await {
        let (kb, _) = key();
        let s = Arc::new(open(&url, &kb).await);
        let seed = Secret::new("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP");
        let (eve, other) = (user("eve"), user("other"));
        s.create_user(&eve).await.unwrap();
        s.create_user(&other).await.unwrap();
        let taken = "arn:aws:iam::123456789012:mfa/taken";
        s.create_mfa_device(taken, DeviceKind::Virtual, "taken", "/", &seed, None, 1)
            .await
            .unwrap();
        s.enable_mfa_device(taken, &other.user_id, 10, 100, 0)
            .await
            .unwrap();
        let serials: Vec<String> = (0..=stsd_store::iam::MAX_DEVICES_PER_USER)
            .map(|i| format!("arn:aws:iam::123456789012:mfa/eve{i}"))
            .collect();
        for serial in &serials {
            s.create_mfa_device(serial, DeviceKind::Virtual, "eve", "/", &seed, None, 1)
                .await
                .unwrap();
        }
        // Eight enables, each sent together with two refused ones. A leaked count would refuse one of
        // the eight for the limit. (In the last round a refused one that runs after the eighth enable
        // meets the limit first, as the limit is checked before the device.)
        let last = serials.len() - 1;
        for (round, serial) in serials[..last].iter().enumerate() {
            let (a, b, c) = tokio::join!(
                s.enable_mfa_device(taken, &eve.user_id, 10, 100, 0),
                s.enable_mfa_device(serial, &eve.user_id, 10, 100, 0),
                s.enable_mfa_device(
                    "arn:aws:iam::123456789012:mfa/none",
                    &eve.user_id,
                    10,
                    100,
                    0
                ),
            );
            let limit = |r: &Result<(), StoreError>| {
                round + 1 == last && matches!(r, Err(StoreError::LimitExceeded))
            };
            assert!(b.is_ok(), "{backend}: {serial}: {b:?}");
            assert!(
                matches!(a, Err(StoreError::AlreadyExists)) || limit(&a),
                "{backend}: {a:?}"
            );
            assert!(
                matches!(c, Err(StoreError::NotFound)) || limit(&c),
                "{backend}: {c:?}"
            );
        }
        assert!(
            matches!(
                s.enable_mfa_device(&serials[last], &eve.user_id, 10, 100, 0)
                    .await,
                Err(StoreError::LimitExceeded)
            ),
            "{backend}"
        );
        // The device refused for the limit is still unassigned, and the taken one still the other's.
        let d = s.mfa_device(&serials[last]).await.unwrap().unwrap();
        assert_eq!(d.owner, None, "{backend}");
        let d = s.mfa_device(taken).await.unwrap().unwrap();
        assert_eq!(
            d.owner.as_deref(),
            Some(other.user_id.as_str()),
            "{backend}"
        );
    }
}
