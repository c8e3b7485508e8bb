//! Console passwords with the real `aws-sdk-iam`: login profiles, ChangePassword by the user itself, the
//! account password policy and its enforcement, who may do what, and an audit log without passwords.

use crate::harness::{Opts, Server, TempDir};
use crate::sdk::error_parts;
use crate::sdk::iam;
use crate::sign::Creds;

async fn user_with_key(root: &aws_sdk_iam::Client, name: &str) -> Creds {
    root.create_user().user_name(name).send().await.unwrap();
    crate::sdk::access_key(root, name).await
}

const GOOD: &str = "Correct-Horse-7";
const NEXT: &str = "Battery-Staple-8";

#[tokio::test]
async fn login_profiles_change_password_and_the_account_policy() {
    let audit_dir = TempDir::new("pw-audit");
    let audit = audit_dir.data_dir().with_file_name("audit.log");
    let audit_arg = audit.display().to_string();
    let mut server = Server::start_with(Opts::args(&["--audit-log", &audit_arg]));
    let ep = server.endpoint();
    let acct = server.account.clone();
    let root = iam(&ep, &server.root);
    let alice = user_with_key(&root, "alice").await;
    let bob = user_with_key(&root, "bob").await;
    let as_alice = iam(&ep, &alice);
    let as_bob = iam(&ep, &bob);

    // No profile yet; no custom password policy.
    let e = root
        .get_login_profile()
        .user_name("alice")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        error_parts(&e),
        (
            404,
            "NoSuchEntity".into(),
            "Login Profile for User alice cannot be found.".into()
        )
    );
    let e = root.get_account_password_policy().send().await.unwrap_err();
    assert_eq!(
        error_parts(&e),
        (
            404,
            "NoSuchEntity".into(),
            format!("The Password Policy with domain name {acct} cannot be found.")
        )
    );

    // IAM's default policy applies while none is set: 8 characters, three of four classes.
    let e = root
        .create_login_profile()
        .user_name("alice")
        .password("abcdefgh1")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        error_parts(&e),
        (
            400,
            "PasswordPolicyViolation".into(),
            "Password should meet 1 more of the following requirements: Password should have at least one uppercase letter, Password should have at least one symbol".into()
        )
    );
    // Nothing was half-written.
    assert!(
        root.get_login_profile()
            .user_name("alice")
            .send()
            .await
            .is_err()
    );

    let p = root
        .create_login_profile()
        .user_name("alice")
        .password(GOOD)
        .password_reset_required(true)
        .send()
        .await
        .unwrap()
        .login_profile
        .unwrap();
    assert_eq!(p.user_name(), "alice");
    assert!(p.password_reset_required());
    let e = root
        .create_login_profile()
        .user_name("alice")
        .password(GOOD)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        error_parts(&e),
        (
            409,
            "EntityAlreadyExists".into(),
            "Login Profile for user alice already exists.".into()
        )
    );
    let e = root
        .create_login_profile()
        .user_name("nobody")
        .password(GOOD)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_parts(&e).1, "NoSuchEntity");

    // A user without permissions is refused with AWS's message, before existence is revealed.
    let e = as_bob
        .get_login_profile()
        .user_name("alice")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        error_parts(&e),
        (
            403,
            "AccessDenied".into(),
            format!(
                "User: arn:aws:iam::{acct}:user/bob is not authorized to perform: iam:GetLoginProfile on resource: user alice because no identity-based policy allows the iam:GetLoginProfile action"
            )
        )
    );
    let e = as_alice
        .change_password()
        .old_password(GOOD)
        .new_password(NEXT)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        error_parts(&e),
        (
            403,
            "AccessDenied".into(),
            format!(
                "User: arn:aws:iam::{acct}:user/alice is not authorized to perform: iam:ChangePassword on resource: user alice because no identity-based policy allows the iam:ChangePassword action"
            )
        )
    );

    // With AWS's IAMUserChangePassword, alice changes her own password (which clears the reset flag).
    root.attach_user_policy()
        .user_name("alice")
        .policy_arn("arn:aws:iam::aws:policy/IAMUserChangePassword")
        .send()
        .await
        .unwrap();
    let e = as_alice
        .change_password()
        .old_password("Wrong-Password-1")
        .new_password(NEXT)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_parts(&e).0, 403);
    as_alice
        .change_password()
        .old_password(GOOD)
        .new_password(NEXT)
        .send()
        .await
        .unwrap();
    let p = root
        .get_login_profile()
        .user_name("alice")
        .send()
        .await
        .unwrap()
        .login_profile
        .unwrap();
    assert!(!p.password_reset_required());
    // The old password no longer works, the new one does.
    let e = as_alice
        .change_password()
        .old_password(GOOD)
        .new_password("Third-Password-9")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_parts(&e).0, 403);

    // Bob has no login profile; the root cannot use ChangePassword.
    root.update_account_password_policy()
        .minimum_password_length(12)
        .require_symbols(true)
        .require_numbers(true)
        .allow_users_to_change_password(true)
        .password_reuse_prevention(2)
        .max_password_age(90)
        .send()
        .await
        .unwrap();
    let e = as_bob
        .change_password()
        .old_password(GOOD)
        .new_password(NEXT)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        error_parts(&e),
        (
            404,
            "NoSuchEntity".into(),
            "Login Profile for User bob cannot be found.".into()
        )
    );
    let e = root
        .change_password()
        .old_password(GOOD)
        .new_password(NEXT)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_parts(&e).1, "InvalidUserType");

    // The account policy: read back exactly; AllowUsersToChangePassword lets bob read it too.
    let p = as_bob
        .get_account_password_policy()
        .send()
        .await
        .unwrap()
        .password_policy
        .unwrap();
    assert_eq!(p.minimum_password_length(), Some(12));
    assert!(p.require_symbols() && p.require_numbers());
    assert!(!p.require_uppercase_characters() && !p.require_lowercase_characters());
    assert!(p.allow_users_to_change_password() && p.expire_passwords());
    assert_eq!(
        (p.max_password_age(), p.password_reuse_prevention()),
        (Some(90), Some(2))
    );
    assert_eq!(p.hard_expiry(), Some(false));
    let e = as_bob
        .update_account_password_policy()
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_parts(&e).0, 403);

    // Enforcement: length and classes, then reuse of the current or the previous password.
    let e = root
        .update_login_profile()
        .user_name("alice")
        .password("short1!")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        error_parts(&e),
        (
            400,
            "PasswordPolicyViolation".into(),
            "Password should have a minimum length of 12".into()
        )
    );
    let e = root
        .update_login_profile()
        .user_name("alice")
        .password("longenoughbutplain")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        error_parts(&e).2,
        "Password should have at least one number, Password should have at least one symbol"
    );
    root.create_login_profile()
        .user_name("bob")
        .password("first-password-1")
        .send()
        .await
        .unwrap();
    // Bob has no policy, but the account policy lets every user change its own password.
    as_bob
        .change_password()
        .old_password("first-password-1")
        .new_password("second-password-2")
        .send()
        .await
        .unwrap();
    for reused in ["second-password-2", "first-password-1"] {
        let e = as_bob
            .change_password()
            .old_password("second-password-2")
            .new_password(reused)
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            error_parts(&e),
            (
                400,
                "PasswordPolicyViolation".into(),
                "Password should not be one of your 2 previous passwords".into()
            )
        );
    }
    // A policy without AllowUsersToChangePassword takes bob's right away; deleting it restores defaults.
    root.update_account_password_policy()
        .minimum_password_length(6)
        .send()
        .await
        .unwrap();
    let e = as_bob
        .change_password()
        .old_password("second-password-2")
        .new_password("third-password-3")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_parts(&e).1, "AccessDenied");
    root.delete_account_password_policy().send().await.unwrap();
    let e = root
        .delete_account_password_policy()
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_parts(&e).1, "NoSuchEntity");

    // A user with a login profile cannot be deleted; the flag can be set without a password.
    root.update_login_profile()
        .user_name("bob")
        .password_reset_required(true)
        .send()
        .await
        .unwrap();
    assert!(
        root.get_login_profile()
            .user_name("bob")
            .send()
            .await
            .unwrap()
            .login_profile
            .unwrap()
            .password_reset_required()
    );
    root.delete_access_key()
        .user_name("bob")
        .access_key_id(&bob.id)
        .send()
        .await
        .unwrap();
    let e = root
        .delete_user()
        .user_name("bob")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        error_parts(&e),
        (
            409,
            "DeleteConflict".into(),
            "Cannot delete entity, must delete login profile first.".into()
        )
    );
    root.delete_login_profile()
        .user_name("bob")
        .send()
        .await
        .unwrap();
    let e = root
        .delete_login_profile()
        .user_name("bob")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_parts(&e).1, "NoSuchEntity");
    root.delete_user().user_name("bob").send().await.unwrap();

    // No password ever reaches the audit log (nor the server's own log).
    server.stop();
    let text = std::fs::read_to_string(&audit).unwrap();
    assert!(text.contains("ChangePassword") && text.contains("CreateLoginProfile"));
    let logs = server.stderr();
    for secret in [
        GOOD,
        NEXT,
        "first-password-1",
        "second-password-2",
        "short1!",
        "abcdefgh1",
        "Wrong-Password-1",
    ] {
        assert!(!text.contains(secret), "{secret} in the audit log");
        assert!(!logs.contains(secret), "{secret} in the server log");
    }
}
