//! Roles with the real `aws-sdk-iam` and `aws-sdk-sts`: CreateRole, AssumeRole (trust by user ARN), the
//! role session's identity and permissions, role chaining's one-hour cap, and a restart that keeps the role
//! and its sessions.

use crate::harness::{Opts, Server, TempDir};
use crate::sdk::iam;
use crate::sdk::{client, creds_of, error_parts};
use crate::sign::Creds;

#[tokio::test]
async fn assume_role_with_aws_sdk_rust_survives_a_restart() {
    let dir = TempDir::new("roles");
    let data_dir = dir.data_dir();
    let mut server = Server::start_in(&data_dir, &Opts::default());
    let ep = server.endpoint();
    let acct = server.account.clone();
    let root = iam(&ep, &server.root);
    root.create_user().user_name("alice").send().await.unwrap();
    let alice = crate::sdk::access_key(&root, "alice").await;
    let trust_of = |principals: &str| {
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":[{principals}]}},"Action":"sts:AssumeRole"}}]}}"#
        )
    };
    let alice_arn = format!("\"arn:aws:iam::{acct}:user/alice\"");
    let ops_arn = format!("\"arn:aws:iam::{acct}:role/ops\"");
    // A trust policy may not name a role that does not exist yet (IAM's "Invalid principal").
    let err = root
        .create_role()
        .role_name("ops")
        .assume_role_policy_document(trust_of(&format!("{alice_arn},{ops_arn}")))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err.as_service_error()
            .and_then(|e| aws_sdk_iam::error::ProvideErrorMetadata::message(e)),
        Some(
            format!("Invalid principal in policy: \"AWS\":\"arn:aws:iam::{acct}:role/ops\"")
                .as_str()
        )
    );
    let trust = trust_of(&alice_arn);
    let role = root
        .create_role()
        .role_name("ops")
        .assume_role_policy_document(&trust)
        .max_session_duration(7200)
        .send()
        .await
        .unwrap()
        .role
        .unwrap();
    assert!(role.role_id().starts_with("AROA"), "{}", role.role_id());
    // Once it exists, the role may trust itself (for the chaining check below).
    root.update_assume_role_policy()
        .role_name("ops")
        .policy_document(trust_of(&format!("{alice_arn},{ops_arn}")))
        .send()
        .await
        .unwrap();
    root.put_role_policy()
        .role_name("ops")
        .policy_name("list")
        .policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:ListRoles","Resource":"*"}]}"#,
        )
        .send()
        .await
        .unwrap();

    let out = client(&ep, &alice)
        .assume_role()
        .role_arn(role.arn())
        .role_session_name("it")
        .duration_seconds(7200)
        .send()
        .await
        .unwrap();
    let user = out.assumed_role_user().unwrap();
    assert_eq!(user.assumed_role_id(), format!("{}:it", role.role_id()));
    assert_eq!(
        user.arn(),
        format!("arn:aws:sts::{acct}:assumed-role/ops/it")
    );
    let session = creds_of(out.credentials().unwrap());
    let who = client(&ep, &session)
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    assert_eq!(who.arn(), Some(user.arn()));
    iam(&ep, &session).list_roles().send().await.unwrap();
    assert!(iam(&ep, &session).list_users().send().await.is_err());

    // Role chaining is capped at one hour.
    let err = client(&ep, &session)
        .assume_role()
        .role_arn(role.arn())
        .role_session_name("chained")
        .duration_seconds(7200)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        error_parts(&err),
        (
            400,
            "ValidationError".to_owned(),
            "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining."
                .to_owned()
        )
    );

    // A restart keeps the role and the session (the token is sealed with the stored key ring).
    server.stop();
    let server = Server::start_in(&data_dir, &Opts::default());
    let ep = server.endpoint();
    let who = client(&ep, &session)
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    assert_eq!(who.arn(), Some(user.arn()));
    iam(&ep, &session).list_roles().send().await.unwrap();
}

/// AssumeRole caches the role and its compiled trust policy; a change through this node takes effect at
/// once: a narrower trust policy, a lower MaxSessionDuration, a deleted role.
#[tokio::test]
async fn role_changes_take_effect_at_once_for_assume_role() {
    let dir = TempDir::new("roles-cache");
    let server = Server::start_in(&dir.data_dir(), &Opts::default());
    let ep = server.endpoint();
    let acct = server.account.clone();
    let root = iam(&ep, &server.root);
    let mut users = Vec::new();
    for name in ["bob", "carol"] {
        root.create_user().user_name(name).send().await.unwrap();
        users.push(crate::sdk::access_key(&root, name).await);
    }
    let (bob, carol) = (&users[0], &users[1]);
    let trust_of = |names: &[&str]| {
        let principals: Vec<String> = names
            .iter()
            .map(|n| format!("\"arn:aws:iam::{acct}:user/{n}\""))
            .collect();
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":[{}]}},"Action":"sts:AssumeRole"}}]}}"#,
            principals.join(",")
        )
    };
    let arn = root
        .create_role()
        .role_name("deploy")
        .assume_role_policy_document(trust_of(&["bob", "carol"]))
        .max_session_duration(7200)
        .send()
        .await
        .unwrap()
        .role
        .unwrap()
        .arn()
        .to_owned();
    let assume = |c: &Creds, secs: i32| {
        client(&ep, c)
            .assume_role()
            .role_arn(&arn)
            .role_session_name("ci-deploy")
            .duration_seconds(secs)
            .send()
    };
    // Both assume it (the role is now cached), for two hours.
    assume(bob, 7200).await.unwrap();
    assume(carol, 7200).await.unwrap();

    // Carol leaves the trust policy: refused on the next call.
    root.update_assume_role_policy()
        .role_name("deploy")
        .policy_document(trust_of(&["bob"]))
        .send()
        .await
        .unwrap();
    let (status, code, message) = error_parts(&assume(carol, 3600).await.unwrap_err());
    assert_eq!((status, code.as_str()), (403, "AccessDenied"), "{message}");
    assume(bob, 7200).await.unwrap();

    // MaxSessionDuration lowered to one hour: two hours are refused at once.
    root.update_role()
        .role_name("deploy")
        .max_session_duration(3600)
        .send()
        .await
        .unwrap();
    let (status, code, message) = error_parts(&assume(bob, 7200).await.unwrap_err());
    assert_eq!(
        (status, code.as_str()),
        (400, "ValidationError"),
        "{message}"
    );
    assert_eq!(
        message,
        "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
    );
    assume(bob, 3600).await.unwrap();

    // Deleted: refused at once.
    root.delete_role().role_name("deploy").send().await.unwrap();
    let (status, code, _) = error_parts(&assume(bob, 3600).await.unwrap_err());
    assert_eq!((status, code.as_str()), (403, "AccessDenied"));
}
