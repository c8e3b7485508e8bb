//! Built-in managed policies (`arn:aws:iam::aws:policy/...`): read-only, listed by
//! `ListPolicies --scope AWS`, attachable like customer managed policies.

use std::sync::OnceLock;
use stsd_policy::{Policy, PolicyKind};

/// A built-in managed policy.
#[derive(Debug)]
pub struct Builtin {
    /// Name.
    pub name: &'static str,
    /// `arn:aws:iam::aws:policy/NAME`.
    pub arn: &'static str,
    /// `ANPA...` id (fixed).
    pub policy_id: &'static str,
    /// Description.
    pub description: &'static str,
    /// The document (version `v1`, the only one).
    pub document: &'static str,
}

/// AWS's documented "Allows MFA-authenticated IAM users to manage their own credentials on the Security
/// credentials page" policy, verbatim (IAM User Guide, `reference_policies_examples_aws_my-sec-creds-self-manage`).
pub const SELF_MANAGE_WITH_MFA: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Sid": "AllowViewAccountInfo",
      "Effect": "Allow",
      "Action": ["iam:GetAccountPasswordPolicy", "iam:ListVirtualMFADevices"],
      "Resource": "*"
    },
    {
      "Sid": "AllowManageOwnPasswords",
      "Effect": "Allow",
      "Action": ["iam:ChangePassword", "iam:GetUser"],
      "Resource": "arn:aws:iam::*:user/${aws:username}"
    },
    {
      "Sid": "AllowManageOwnAccessKeys",
      "Effect": "Allow",
      "Action": ["iam:CreateAccessKey", "iam:DeleteAccessKey", "iam:GetAccessKeyLastUsed", "iam:ListAccessKeys", "iam:UpdateAccessKey"],
      "Resource": "arn:aws:iam::*:user/${aws:username}"
    },
    {
      "Sid": "AllowManageOwnSigningCertificates",
      "Effect": "Allow",
      "Action": ["iam:DeleteSigningCertificate", "iam:ListSigningCertificates", "iam:UpdateSigningCertificate", "iam:UploadSigningCertificate"],
      "Resource": "arn:aws:iam::*:user/${aws:username}"
    },
    {
      "Sid": "AllowManageOwnSSHPublicKeys",
      "Effect": "Allow",
      "Action": ["iam:DeleteSSHPublicKey", "iam:GetSSHPublicKey", "iam:ListSSHPublicKeys", "iam:UpdateSSHPublicKey", "iam:UploadSSHPublicKey"],
      "Resource": "arn:aws:iam::*:user/${aws:username}"
    },
    {
      "Sid": "AllowManageOwnGitCredentials",
      "Effect": "Allow",
      "Action": ["iam:CreateServiceSpecificCredential", "iam:DeleteServiceSpecificCredential", "iam:ListServiceSpecificCredentials", "iam:ResetServiceSpecificCredential", "iam:UpdateServiceSpecificCredential"],
      "Resource": "arn:aws:iam::*:user/${aws:username}"
    },
    {
      "Sid": "AllowManageOwnVirtualMFADevice",
      "Effect": "Allow",
      "Action": ["iam:CreateVirtualMFADevice"],
      "Resource": "arn:aws:iam::*:mfa/*"
    },
    {
      "Sid": "AllowManageOwnUserMFA",
      "Effect": "Allow",
      "Action": ["iam:DeactivateMFADevice", "iam:EnableMFADevice", "iam:ListMFADevices", "iam:ResyncMFADevice"],
      "Resource": "arn:aws:iam::*:user/${aws:username}"
    },
    {
      "Sid": "DenyAllExceptListedIfNoMFA",
      "Effect": "Deny",
      "NotAction": ["iam:CreateVirtualMFADevice", "iam:EnableMFADevice", "iam:GetUser", "iam:ListMFADevices", "iam:ListVirtualMFADevices", "iam:ResyncMFADevice", "sts:GetSessionToken"],
      "Resource": "*",
      "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}
    }
  ]
}"#;

/// What every IAM user could do before policies existed: manage its own access keys and MFA devices
/// (users with a path included: AWS's example above only matches users at path `/`), and since console
/// passwords exist, change its own password and read the account password policy (as AWS's
/// `IAMUserChangePassword`),
/// with long-term keys or an MFA session (stsd's stricter rule for users with an enabled device still
/// applies). Attached to every user that existed when policies were introduced.
pub const SELF_MANAGE: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Sid": "AllowManageOwnCredentials",
      "Effect": "Allow",
      "Action": [
        "iam:GetUser", "iam:CreateAccessKey", "iam:DeleteAccessKey", "iam:GetAccessKeyLastUsed",
        "iam:ListAccessKeys", "iam:UpdateAccessKey", "iam:DeactivateMFADevice", "iam:EnableMFADevice",
        "iam:ListMFADevices", "iam:GetMFADevice", "iam:ResyncMFADevice", "iam:ChangePassword",
        "iam:GetLoginProfile"
      ],
      "Resource": ["arn:aws:iam::*:user/${aws:username}", "arn:aws:iam::*:user/*/${aws:username}"]
    },
    {
      "Sid": "AllowViewPasswordPolicy",
      "Effect": "Allow",
      "Action": "iam:GetAccountPasswordPolicy",
      "Resource": "*"
    },
    {
      "Sid": "AllowManageOwnVirtualMFADevice",
      "Effect": "Allow",
      "Action": ["iam:CreateVirtualMFADevice", "iam:DeleteVirtualMFADevice"],
      "Resource": "arn:aws:iam::*:mfa/*"
    }
  ]
}"#;

/// AWS's managed policy `IAMUserChangePassword` ("Provides the ability for an IAM user to change their own
/// password"), verbatim.
pub const USER_CHANGE_PASSWORD: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Action": ["iam:ChangePassword"],
      "Resource": ["arn:aws:iam::*:user/${aws:username}"]
    },
    {
      "Effect": "Allow",
      "Action": ["iam:GetAccountPasswordPolicy"],
      "Resource": "*"
    }
  ]
}"#;

/// The built-in policies.
pub const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "StsdSelfManageCredentials",
        arn: stsd_store::migrations::SELF_SERVICE_ARN,
        policy_id: "ANPASTSDSELFMANAGE0001",
        description: "Manage your own access keys and MFA devices (the self-service rights IAM users had before stsd had policies).",
        document: SELF_MANAGE,
    },
    Builtin {
        name: "StsdSelfManageCredentialsWithMFA",
        arn: "arn:aws:iam::aws:policy/StsdSelfManageCredentialsWithMFA",
        policy_id: "ANPASTSDSELFMANAGE0002",
        description: "AWS's example: MFA-authenticated users manage their own credentials; without MFA only enrolling a device is allowed.",
        document: SELF_MANAGE_WITH_MFA,
    },
    Builtin {
        name: "IAMUserChangePassword",
        arn: "arn:aws:iam::aws:policy/IAMUserChangePassword",
        policy_id: "ANPASTSDCHANGEPASSWD01",
        description: "Provides the ability for an IAM user to change their own password.",
        document: USER_CHANGE_PASSWORD,
    },
];

/// The creation date shown for built-in policies.
pub const CREATED_AT: i64 = 1_764_547_200; // 2025-12-01T00:00:00Z

/// The built-in policy with this ARN.
pub fn by_arn(arn: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.arn == arn)
}

/// The compiled document of a built-in policy.
pub fn compiled(arn: &str) -> Option<&'static Policy> {
    static COMPILED: OnceLock<Vec<Option<Policy>>> = OnceLock::new();
    let all = COMPILED.get_or_init(|| {
        BUILTINS
            .iter()
            .map(|b| match Policy::parse(b.document, PolicyKind::Identity) {
                Ok(p) => Some(p),
                Err(e) => {
                    tracing::error!(policy = b.arn, error = %e, "built-in policy does not compile");
                    None
                }
            })
            .collect()
    });
    let i = BUILTINS.iter().position(|b| b.arn == arn)?;
    all.get(i)?.as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_compiles() {
        for b in BUILTINS {
            assert!(compiled(b.arn).is_some(), "{}", b.arn);
            assert!(b.arn.ends_with(b.name));
        }
    }
}
