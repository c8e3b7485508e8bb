//! The real `aws-sdk-iam` and `aws-sdk-sts` against the server: users, keys, self-service rules, and virtual
//! MFA end to end (codes computed with RFC 6238 from the seed the server returned).

use crate::harness::{Server, unix_now};
use crate::sdk::iam;
use crate::sdk::{client, creds_of, error_parts};

fn iam_error<E: aws_sdk_iam::error::ProvideErrorMetadata + std::fmt::Debug>(
    err: &aws_sdk_iam::error::SdkError<
        E,
        aws_smithy_runtime_api::client::orchestrator::HttpResponse,
    >,
) -> (u16, String, String) {
    match err {
        aws_sdk_iam::error::SdkError::ServiceError(se) => (
            se.raw().status().as_u16(),
            se.err().code().unwrap_or_default().to_owned(),
            se.err().message().unwrap_or_default().to_owned(),
        ),
        other => panic!("expected a service error, got {other:?}"),
    }
}

const SELF_SERVICE: &str = "arn:aws:iam::aws:policy/StsdSelfManageCredentials";

#[tokio::test]
async fn users_keys_and_self_service_with_aws_sdk_iam() {
    let server = Server::start();
    let ep = server.endpoint();
    let root = iam(&ep, &server.root);
    let user = root
        .create_user()
        .user_name("alice")
        .path("/eng/")
        .send()
        .await
        .unwrap()
        .user
        .unwrap();
    // New users have no permissions (as in AWS): grant the built-in self-service policy.
    root.attach_user_policy()
        .user_name("alice")
        .policy_arn(SELF_SERVICE)
        .send()
        .await
        .unwrap();
    let arn = format!("arn:aws:iam::{}:user/eng/alice", server.account);
    assert_eq!(user.arn(), arn);
    assert!(user.user_id().starts_with("AIDA") && user.user_id().len() == 21);
    let dup = root
        .create_user()
        .user_name("ALICE")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        iam_error(&dup),
        (
            409,
            "EntityAlreadyExists".into(),
            "User with name ALICE already exists.".into()
        )
    );
    let alice = crate::sdk::access_key(&root, "alice").await;

    // The user's long-term key and its session credentials have the user's identity.
    let sts = client(&ep, &alice);
    let me = sts.get_caller_identity().send().await.unwrap();
    assert_eq!(
        (me.arn(), me.user_id()),
        (Some(arn.as_str()), Some(user.user_id()))
    );
    let before = unix_now();
    let out = sts.get_session_token().send().await.unwrap();
    let c = out.credentials().unwrap();
    let exp = c.expiration().secs();
    assert!(
        (before + 43_200..=unix_now() + 43_201).contains(&exp),
        "user default duration"
    );
    let session = client(&ep, &creds_of(c));
    let me2 = session.get_caller_identity().send().await.unwrap();
    assert_eq!(
        (me2.arn(), me2.user_id()),
        (Some(arn.as_str()), Some(user.user_id()))
    );

    // Self-service only, in AWS's words; sessions without MFA cannot use IAM.
    let as_alice = iam(&ep, &alice);
    assert_eq!(
        as_alice
            .get_user()
            .send()
            .await
            .unwrap()
            .user
            .unwrap()
            .arn(),
        arn
    );
    let denied = as_alice.list_users().send().await.unwrap_err();
    assert_eq!(
        iam_error(&denied),
        (
            403,
            "AccessDenied".into(),
            format!(
                "User: {arn} is not authorized to perform: iam:ListUsers on resource: arn:aws:iam::{}:user/ because no identity-based policy allows the iam:ListUsers action",
                server.account
            )
        )
    );
    let no_mfa = iam(&ep, &creds_of(c)).get_user().send().await.unwrap_err();
    assert_eq!(
        iam_error(&no_mfa),
        (
            403,
            "InvalidClientTokenId".into(),
            "The security token included in the request is invalid".into()
        )
    );

    // Keys: list, deactivate (refused at once on this node), delete; then the user can go.
    let listed = root
        .list_access_keys()
        .user_name("alice")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.access_key_metadata().len(), 1);
    root.update_access_key()
        .user_name("alice")
        .access_key_id(&alice.id)
        .status(aws_sdk_iam::types::StatusType::Inactive)
        .send()
        .await
        .unwrap();
    let refused = sts.get_caller_identity().send().await.unwrap_err();
    assert_eq!(error_parts(&refused).1, "InvalidClientTokenId");
    let conflict = root
        .delete_user()
        .user_name("alice")
        .send()
        .await
        .unwrap_err();
    assert_eq!(iam_error(&conflict).0, 409);
    root.delete_access_key()
        .user_name("alice")
        .access_key_id(&alice.id)
        .send()
        .await
        .unwrap();
    // Still attached: IAM refuses to delete a user with policies.
    let conflict = root
        .delete_user()
        .user_name("alice")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        iam_error(&conflict),
        (
            409,
            "DeleteConflict".to_owned(),
            "Cannot delete entity, must detach all policies first.".to_owned()
        )
    );
    root.detach_user_policy()
        .user_name("alice")
        .policy_arn(SELF_SERVICE)
        .send()
        .await
        .unwrap();
    root.delete_user().user_name("alice").send().await.unwrap();
    let gone = root.get_user().user_name("alice").send().await.unwrap_err();
    assert_eq!(
        iam_error(&gone),
        (
            404,
            "NoSuchEntity".into(),
            "The user with name alice cannot be found.".into()
        )
    );
}

#[tokio::test]
async fn virtual_mfa_end_to_end_with_the_sdks() {
    let server = Server::start();
    let ep = server.endpoint();
    let root = iam(&ep, &server.root);
    root.create_user().user_name("bob").send().await.unwrap();
    root.attach_user_policy()
        .user_name("bob")
        .policy_arn(SELF_SERVICE)
        .send()
        .await
        .unwrap();
    let bob = crate::sdk::access_key(&root, "bob").await;
    let as_bob = iam(&ep, &bob);
    let dev = as_bob
        .create_virtual_mfa_device()
        .virtual_mfa_device_name("bob")
        .send()
        .await
        .unwrap()
        .virtual_mfa_device
        .unwrap();
    let serial = dev.serial_number().to_owned();
    assert_eq!(serial, format!("arn:aws:iam::{}:mfa/bob", server.account));
    let seed_b32 = dev.base32_string_seed().unwrap().as_ref().to_vec();
    assert_eq!(seed_b32.len(), 64);
    assert!(
        dev.qr_code_png()
            .unwrap()
            .as_ref()
            .starts_with(b"\x89PNG\r\n\x1a\n")
    );
    let seed = data_encoding::BASE32_NOPAD.decode(&seed_b32).unwrap();
    let step = stsd_core::totp::step_at(unix_now());
    let code = |s: i64| stsd_core::totp::code(&seed, s);

    let wrong = as_bob
        .enable_mfa_device()
        .user_name("bob")
        .serial_number(&serial)
        .authentication_code1("000000")
        .authentication_code2("000001")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        iam_error(&wrong),
        (
            403,
            "InvalidAuthenticationCode".into(),
            "Authentication code for device is not valid.".into()
        )
    );
    as_bob
        .enable_mfa_device()
        .user_name("bob")
        .serial_number(&serial)
        .authentication_code1(code(step - 1))
        .authentication_code2(code(step))
        .send()
        .await
        .unwrap();

    let sts = client(&ep, &bob);
    let out = sts
        .get_session_token()
        .serial_number(&serial)
        .token_code(code(step + 1))
        .send()
        .await
        .unwrap();
    let mfa_session = creds_of(out.credentials().unwrap());
    // The same code again, and an older one: refused with AWS's text (trailing space).
    for c in [code(step + 1), code(step)] {
        let replay = sts
            .get_session_token()
            .serial_number(&serial)
            .token_code(c)
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            error_parts(&replay),
            (
                403,
                "AccessDenied".into(),
                "MultiFactorAuthentication failed with invalid MFA one time pass code. ".into()
            )
        );
    }
    // Sessions obtained with MFA may use IAM.
    let devices = iam(&ep, &mfa_session)
        .list_mfa_devices()
        .send()
        .await
        .unwrap();
    assert_eq!(devices.mfa_devices().len(), 1);
    assert_eq!(devices.mfa_devices()[0].serial_number(), serial);
    // Another principal's device is not the caller's.
    let root_sts = client(&ep, &server.root);
    let other = root_sts
        .get_session_token()
        .serial_number(&serial)
        .token_code(code(step + 2))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        error_parts(&other).2,
        "MultiFactorAuthentication failed, unable to validate MFA code.  Please verify your MFA serial number is valid and associated with this user."
    );
}

/// AssumeRole with MFA and a key not cached yet reads the key and the device together too, and the
/// role session carries the MFA (a trust policy that requires it grants).
#[tokio::test]
async fn assume_role_with_mfa_and_a_cold_key_reads_key_and_device_together() {
    let server = Server::start();
    let ep = server.endpoint();
    let root = iam(&ep, &server.root);
    root.create_user().user_name("dan").send().await.unwrap();
    let (serial, seed, step) = crate::sdk::enrolled_device(&root, "dan").await;
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{}:user/dan"}},"Action":"sts:AssumeRole","Condition":{{"Bool":{{"aws:MultiFactorAuthPresent":"true"}}}}}}]}}"#,
        server.account
    );
    root.create_role()
        .role_name("ops")
        .assume_role_policy_document(trust)
        .send()
        .await
        .unwrap();
    let dan = crate::sdk::access_key(&root, "dan").await;
    let reads =
        |op: &str| server.metric(&format!("stsd_store_duration_seconds_count{{op=\"{op}\"}}"));
    let before = (reads("access_key_mfa_device"), reads("mfa_device"));
    let out = client(&ep, &dan)
        .assume_role()
        .role_arn(format!("arn:aws:iam::{}:role/ops", server.account))
        .role_session_name("with-mfa")
        .serial_number(&serial)
        .token_code(stsd_core::totp::code(&seed, step + 1))
        .send()
        .await
        .unwrap();
    assert!(out.credentials().is_some());
    assert_eq!(
        (reads("access_key_mfa_device"), reads("mfa_device")),
        (before.0 + 1, before.1),
        "the key and the device were not read together"
    );
}

/// A sign-in with MFA whose access key is not cached yet (its first use) reads the key and the device
/// in one statement, and answers as the two reads do: the code is accepted once, another user's device
/// and an unknown serial are refused with AWS's text.
#[tokio::test]
async fn mfa_sign_in_with_a_cold_key_reads_key_and_device_together() {
    let server = Server::start();
    let ep = server.endpoint();
    let root = iam(&ep, &server.root);
    for user in ["bob", "eve"] {
        root.create_user().user_name(user).send().await.unwrap();
    }
    let (serial, seed, step) = crate::sdk::enrolled_device(&root, "bob").await;
    let code = |s: i64| stsd_core::totp::code(&seed, s);
    // Created by root: stsd has not seen a request signed with them yet.
    let bob = crate::sdk::access_key(&root, "bob").await;
    let eve = crate::sdk::access_key(&root, "eve").await;
    let eve2 = crate::sdk::access_key(&root, "eve").await;
    let reads =
        |op: &str| server.metric(&format!("stsd_store_duration_seconds_count{{op=\"{op}\"}}"));
    let before = (reads("access_key_mfa_device"), reads("mfa_device"));

    let out = client(&ep, &bob)
        .get_session_token()
        .serial_number(&serial)
        .token_code(code(step + 1))
        .send()
        .await
        .unwrap();
    assert!(out.credentials().is_some());
    assert_eq!(
        (reads("access_key_mfa_device"), reads("mfa_device")),
        (before.0 + 1, before.1),
        "the key and the device were not read together"
    );
    // The key is cached now: a replay reads the device alone, and is refused.
    let replay = client(&ep, &bob)
        .get_session_token()
        .serial_number(&serial)
        .token_code(code(step + 1))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        error_parts(&replay).2,
        "MultiFactorAuthentication failed with invalid MFA one time pass code. "
    );
    assert_eq!(
        (reads("access_key_mfa_device"), reads("mfa_device")),
        (before.0 + 1, before.1 + 1)
    );
    let unable = "MultiFactorAuthentication failed, unable to validate MFA code.  Please verify your MFA serial number is valid and associated with this user.";
    let missing = format!("arn:aws:iam::{}:mfa/nobody", server.account);
    for (key, serial) in [(&eve, &serial), (&eve2, &missing)] {
        let err = client(&ep, key)
            .get_session_token()
            .serial_number(serial)
            .token_code(code(step + 2))
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            error_parts(&err),
            (403, "AccessDenied".into(), unable.into())
        );
    }
    assert_eq!(
        (reads("access_key_mfa_device"), reads("mfa_device")),
        (before.0 + 3, before.1 + 1)
    );
}

/// `--default-user-policy`: a new user comes with the configured policies; when one of them is gone
/// (deleted after start-up), CreateUser is refused and no user is left without it.
#[tokio::test]
async fn default_user_policies_come_with_the_user_or_nothing_is_created() {
    let dir = crate::harness::TempDir::new("defaults");
    let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:GetCallerIdentity","Resource":"*"}]}"#;
    let arn = {
        let mut first = Server::start_in(&dir.data_dir(), &crate::harness::Opts::default());
        let root = iam(&first.endpoint(), &first.root);
        let policy = root
            .create_policy()
            .policy_name("Defaults")
            .policy_document(doc)
            .send()
            .await
            .unwrap()
            .policy
            .unwrap();
        first.stop();
        policy.arn.unwrap()
    };
    let server = Server::start_in(
        &dir.data_dir(),
        &crate::harness::Opts::args(&[
            "--default-user-policy",
            &arn,
            "--default-user-policy",
            SELF_SERVICE,
        ]),
    );
    let root = iam(&server.endpoint(), &server.root);
    root.create_user().user_name("ann").send().await.unwrap();
    let attached = root
        .list_attached_user_policies()
        .user_name("ann")
        .send()
        .await
        .unwrap();
    let mut arns: Vec<String> = attached
        .attached_policies()
        .iter()
        .filter_map(|p| p.policy_arn().map(str::to_owned))
        .collect();
    arns.sort();
    let mut expected = vec![arn.clone(), SELF_SERVICE.to_owned()];
    expected.sort();
    assert_eq!(arns, expected);

    // The customer managed default goes away (detached from ann first, as IAM requires).
    root.detach_user_policy()
        .user_name("ann")
        .policy_arn(&arn)
        .send()
        .await
        .unwrap();
    root.delete_policy().policy_arn(&arn).send().await.unwrap();
    let refused = root
        .create_user()
        .user_name("bob")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        iam_error(&refused),
        (
            404,
            "NoSuchEntity".into(),
            format!("Policy {arn} does not exist or is not attachable.")
        )
    );
    let missing = root.get_user().user_name("bob").send().await.unwrap_err();
    assert_eq!(iam_error(&missing).1, "NoSuchEntity");
}
