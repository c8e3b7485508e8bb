//! Console passwords: `CreateLoginProfile`, `GetLoginProfile`, `UpdateLoginProfile`,
//! `DeleteLoginProfile`, `ChangePassword`, and the account password policy
//! (`Get/Update/DeleteAccountPasswordPolicy`). Shapes and constraints from the model (`iam/2010-05-08`).
//! Passwords are never echoed: validation messages omit values, and `IamAction`'s `Debug` prints only
//! the operation name.

use super::{DOCUMENT_PATTERN, IamAction, IamOutput, is_document_char};
use crate::error::ApiError;
use crate::validate::parse_int;
use crate::xml::{Element, XmlWriter};

/// A login profile as IAM shows it (the model's `LoginProfile`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginProfileView {
    /// The user's name.
    pub user_name: String,
    /// When the first password was set, `YYYY-MM-DDTHH:MM:SSZ`.
    pub create_date: String,
    /// The user must set a new password at its next sign-in.
    pub password_reset_required: bool,
}

/// The account password policy (the model's `PasswordPolicy`; also `UpdateAccountPasswordPolicy`'s
/// input with every omitted member at its default, as IAM has no partial updates).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordPolicyView {
    /// 6..=128, default 6.
    pub minimum_password_length: i64,
    /// Default false.
    pub require_symbols: bool,
    /// Default false.
    pub require_numbers: bool,
    /// Default false.
    pub require_uppercase_characters: bool,
    /// Default false.
    pub require_lowercase_characters: bool,
    /// Default false.
    pub allow_users_to_change_password: bool,
    /// Days, 1..=1095; 0 (absent) = never.
    pub max_password_age: i64,
    /// 1..=24; 0 (absent) = off.
    pub password_reuse_prevention: i64,
    /// Default false.
    pub hard_expiry: bool,
}

impl Default for PasswordPolicyView {
    fn default() -> Self {
        PasswordPolicyView {
            minimum_password_length: 6,
            require_symbols: false,
            require_numbers: false,
            require_uppercase_characters: false,
            require_lowercase_characters: false,
            allow_users_to_change_password: false,
            max_password_age: 0,
            password_reuse_prevention: 0,
            hard_expiry: false,
        }
    }
}

const PASSWORD_LEN: (usize, usize) = (1, 128);

fn password(f: &mut super::Fields<'_>, param: &str, member: &str) -> Option<String> {
    f.opt(
        param,
        member,
        PASSWORD_LEN,
        DOCUMENT_PATTERN,
        is_document_char,
    )
}

fn req_password(f: &mut super::Fields<'_>, param: &str, member: &str) -> String {
    f.req(
        param,
        member,
        PASSWORD_LEN,
        DOCUMENT_PATTERN,
        is_document_char,
    )
}

fn int_in(
    f: &mut super::Fields<'_>,
    param: &str,
    member: &str,
    range: (i64, i64),
) -> Result<Option<i64>, ApiError> {
    let Some(raw) = f.params.get(param) else {
        return Ok(None);
    };
    let n = parse_int(member, raw)?;
    f.v.int_range(member, n, Some(range.0), Some(range.1));
    Ok(Some(n))
}

/// Parses the password actions; `None` for any other action.
pub(super) fn parse(
    action: &str,
    f: &mut super::Fields<'_>,
) -> Result<Option<IamAction>, ApiError> {
    Ok(Some(match action {
        "CreateLoginProfile" => {
            let user_name = f.user_name(false, 64);
            let password = req_password(f, "Password", "password");
            let password_reset_required = f
                .boolean("PasswordResetRequired", "passwordResetRequired")?
                .unwrap_or(false);
            IamAction::CreateLoginProfile {
                user_name,
                password,
                password_reset_required,
            }
        }
        "GetLoginProfile" => IamAction::GetLoginProfile {
            user_name: f.user_name(false, 64),
        },
        "UpdateLoginProfile" => {
            let user_name = f.user_name(true, 64).unwrap_or_default();
            let password = password(f, "Password", "password");
            let password_reset_required =
                f.boolean("PasswordResetRequired", "passwordResetRequired")?;
            IamAction::UpdateLoginProfile {
                user_name,
                password,
                password_reset_required,
            }
        }
        "DeleteLoginProfile" => IamAction::DeleteLoginProfile {
            user_name: f.user_name(false, 64),
        },
        "ChangePassword" => IamAction::ChangePassword {
            old_password: req_password(f, "OldPassword", "oldPassword"),
            new_password: req_password(f, "NewPassword", "newPassword"),
        },
        "GetAccountPasswordPolicy" => IamAction::GetAccountPasswordPolicy,
        "DeleteAccountPasswordPolicy" => IamAction::DeleteAccountPasswordPolicy,
        "UpdateAccountPasswordPolicy" => {
            let d = PasswordPolicyView::default();
            let minimum_password_length = int_in(
                f,
                "MinimumPasswordLength",
                "minimumPasswordLength",
                (6, 128),
            )?;
            let mut flag = |param: &str, member: &str| -> Result<bool, ApiError> {
                Ok(f.boolean(param, member)?.unwrap_or(false))
            };
            let require_symbols = flag("RequireSymbols", "requireSymbols")?;
            let require_numbers = flag("RequireNumbers", "requireNumbers")?;
            let require_uppercase_characters =
                flag("RequireUppercaseCharacters", "requireUppercaseCharacters")?;
            let require_lowercase_characters =
                flag("RequireLowercaseCharacters", "requireLowercaseCharacters")?;
            let allow_users_to_change_password =
                flag("AllowUsersToChangePassword", "allowUsersToChangePassword")?;
            let max_password_age = int_in(f, "MaxPasswordAge", "maxPasswordAge", (1, 1095))?;
            let password_reuse_prevention = int_in(
                f,
                "PasswordReusePrevention",
                "passwordReusePrevention",
                (1, 24),
            )?;
            let hard_expiry = f.boolean("HardExpiry", "hardExpiry")?.unwrap_or(false);
            IamAction::UpdateAccountPasswordPolicy {
                policy: PasswordPolicyView {
                    minimum_password_length: minimum_password_length
                        .unwrap_or(d.minimum_password_length),
                    require_symbols,
                    require_numbers,
                    require_uppercase_characters,
                    require_lowercase_characters,
                    allow_users_to_change_password,
                    max_password_age: max_password_age.unwrap_or(0),
                    password_reuse_prevention: password_reuse_prevention.unwrap_or(0),
                    hard_expiry,
                },
            }
        }
        _ => return Ok(None),
    }))
}

/// The wire names of the password actions.
pub(super) fn name(a: &IamAction) -> Option<&'static str> {
    Some(match a {
        IamAction::CreateLoginProfile { .. } => "CreateLoginProfile",
        IamAction::GetLoginProfile { .. } => "GetLoginProfile",
        IamAction::UpdateLoginProfile { .. } => "UpdateLoginProfile",
        IamAction::DeleteLoginProfile { .. } => "DeleteLoginProfile",
        IamAction::ChangePassword { .. } => "ChangePassword",
        IamAction::GetAccountPasswordPolicy => "GetAccountPasswordPolicy",
        IamAction::UpdateAccountPasswordPolicy { .. } => "UpdateAccountPasswordPolicy",
        IamAction::DeleteAccountPasswordPolicy => "DeleteAccountPasswordPolicy",
        _ => return None,
    })
}

fn bool_text(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

/// Appends the parameters of the password actions; other actions append nothing.
pub(super) fn to_params(a: &IamAction, put: &mut dyn FnMut(&str, &str)) {
    match a {
        IamAction::CreateLoginProfile {
            user_name,
            password,
            password_reset_required,
        } => {
            if let Some(u) = user_name {
                put("UserName", u);
            }
            put("Password", password);
            put("PasswordResetRequired", bool_text(*password_reset_required));
        }
        IamAction::GetLoginProfile { user_name } | IamAction::DeleteLoginProfile { user_name } => {
            if let Some(u) = user_name {
                put("UserName", u);
            }
        }
        IamAction::UpdateLoginProfile {
            user_name,
            password,
            password_reset_required,
        } => {
            put("UserName", user_name);
            if let Some(p) = password {
                put("Password", p);
            }
            if let Some(r) = password_reset_required {
                put("PasswordResetRequired", bool_text(*r));
            }
        }
        IamAction::ChangePassword {
            old_password,
            new_password,
        } => {
            put("OldPassword", old_password);
            put("NewPassword", new_password);
        }
        IamAction::UpdateAccountPasswordPolicy { policy: p } => {
            put(
                "MinimumPasswordLength",
                &p.minimum_password_length.to_string(),
            );
            put("RequireSymbols", bool_text(p.require_symbols));
            put("RequireNumbers", bool_text(p.require_numbers));
            put(
                "RequireUppercaseCharacters",
                bool_text(p.require_uppercase_characters),
            );
            put(
                "RequireLowercaseCharacters",
                bool_text(p.require_lowercase_characters),
            );
            put(
                "AllowUsersToChangePassword",
                bool_text(p.allow_users_to_change_password),
            );
            if p.max_password_age > 0 {
                put("MaxPasswordAge", &p.max_password_age.to_string());
            }
            if p.password_reuse_prevention > 0 {
                put(
                    "PasswordReusePrevention",
                    &p.password_reuse_prevention.to_string(),
                );
            }
            put("HardExpiry", bool_text(p.hard_expiry));
        }
        _ => {}
    }
}

/// Writes the result members of the password outputs; `false` for any other output.
pub(super) fn write(out: &IamOutput, w: &mut XmlWriter) -> bool {
    match out {
        IamOutput::LoginProfile { profile, .. } => w.element("LoginProfile", |w| {
            w.leaf("UserName", &profile.user_name);
            w.leaf("CreateDate", &profile.create_date);
            w.leaf(
                "PasswordResetRequired",
                bool_text(profile.password_reset_required),
            );
        }),
        IamOutput::PasswordPolicy { policy: p } => w.element("PasswordPolicy", |w| {
            w.leaf(
                "MinimumPasswordLength",
                &p.minimum_password_length.to_string(),
            );
            w.leaf("RequireSymbols", bool_text(p.require_symbols));
            w.leaf("RequireNumbers", bool_text(p.require_numbers));
            w.leaf(
                "RequireUppercaseCharacters",
                bool_text(p.require_uppercase_characters),
            );
            w.leaf(
                "RequireLowercaseCharacters",
                bool_text(p.require_lowercase_characters),
            );
            w.leaf(
                "AllowUsersToChangePassword",
                bool_text(p.allow_users_to_change_password),
            );
            w.leaf("ExpirePasswords", bool_text(p.max_password_age > 0));
            if p.max_password_age > 0 {
                w.leaf("MaxPasswordAge", &p.max_password_age.to_string());
            }
            if p.password_reuse_prevention > 0 {
                w.leaf(
                    "PasswordReusePrevention",
                    &p.password_reuse_prevention.to_string(),
                );
            }
            w.leaf("HardExpiry", bool_text(p.hard_expiry));
        }),
        _ => return false,
    }
    true
}

/// Reads the result of a password action; `None` for any other action.
pub(super) fn from_xml(
    action: &IamAction,
    name: &'static str,
    result: Option<&Element>,
) -> Result<Option<IamOutput>, String> {
    let need = || result.ok_or_else(|| format!("{name}Response has no {name}Result"));
    Ok(Some(match action {
        IamAction::CreateLoginProfile { .. } | IamAction::GetLoginProfile { .. } => {
            let p = need()?.child("LoginProfile").ok_or("no LoginProfile")?;
            IamOutput::LoginProfile {
                action: name,
                profile: LoginProfileView {
                    user_name: p.child_text("UserName").unwrap_or_default().to_owned(),
                    create_date: p.child_text("CreateDate").unwrap_or_default().to_owned(),
                    password_reset_required: p.child_text("PasswordResetRequired") == Some("true"),
                },
            }
        }
        IamAction::GetAccountPasswordPolicy => {
            let p = need()?.child("PasswordPolicy").ok_or("no PasswordPolicy")?;
            let flag = |n: &str| p.child_text(n) == Some("true");
            let num = |n: &str| {
                p.child_text(n)
                    .and_then(|t| t.parse::<i64>().ok())
                    .unwrap_or(0)
            };
            IamOutput::PasswordPolicy {
                policy: PasswordPolicyView {
                    minimum_password_length: num("MinimumPasswordLength"),
                    require_symbols: flag("RequireSymbols"),
                    require_numbers: flag("RequireNumbers"),
                    require_uppercase_characters: flag("RequireUppercaseCharacters"),
                    require_lowercase_characters: flag("RequireLowercaseCharacters"),
                    allow_users_to_change_password: flag("AllowUsersToChangePassword"),
                    max_password_age: num("MaxPasswordAge"),
                    password_reuse_prevention: num("PasswordReusePrevention"),
                    hard_expiry: flag("HardExpiry"),
                },
            }
        }
        IamAction::UpdateLoginProfile { .. }
        | IamAction::DeleteLoginProfile { .. }
        | IamAction::ChangePassword { .. }
        | IamAction::UpdateAccountPasswordPolicy { .. }
        | IamAction::DeleteAccountPasswordPolicy => IamOutput::Empty { action: name },
        _ => return Ok(None),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Params;

    fn parse(action: &str, q: &str) -> Result<IamAction, ApiError> {
        IamAction::parse(action, &Params::parse(q.as_bytes()))
    }

    #[test]
    fn passwords_are_validated_and_never_echoed() {
        let a = parse(
            "CreateLoginProfile",
            "UserName=bob&Password=S3cret%21pass&PasswordResetRequired=true",
        )
        .unwrap();
        assert_eq!(
            a,
            IamAction::CreateLoginProfile {
                user_name: Some("bob".into()),
                password: "S3cret!pass".into(),
                password_reset_required: true,
            }
        );
        assert_eq!(format!("{a:?}"), "IamAction(CreateLoginProfile)");
        let e = parse("CreateLoginProfile", "UserName=bob").unwrap_err();
        assert_eq!(
            e.message,
            "1 validation error detected: Value null at 'password' failed to satisfy constraint: Member must not be null"
        );
        let long = "p".repeat(129);
        let e = parse(
            "ChangePassword",
            &format!("OldPassword=old%E2%82%ACsecret&NewPassword={long}"),
        )
        .unwrap_err();
        assert!(
            e.message.starts_with("2 validation errors detected: "),
            "{}",
            e.message
        );
        assert!(e.message.contains("Value at 'oldPassword' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\u0009\\u000A\\u000D\\u0020-\\u00FF]+"), "{}", e.message);
        assert!(e.message.contains("Value at 'newPassword' failed to satisfy constraint: Member must have length less than or equal to 128"), "{}", e.message);
        assert!(!e.message.contains("secret") && !e.message.contains(&long));
        let e = parse("UpdateLoginProfile", "Password=x").unwrap_err();
        assert!(e.message.contains("'userName'"), "{}", e.message);
        // Round trip through the parameters (the admin CLI's remote mode).
        let back = IamAction::parse(
            "CreateLoginProfile",
            &Params::from_pairs(a.to_params().into_iter().skip(2).collect()),
        );
        assert_eq!(back.unwrap(), a);
    }

    #[test]
    fn account_policy_defaults_and_ranges() {
        let a = parse(
            "UpdateAccountPasswordPolicy",
            "MinimumPasswordLength=12&RequireSymbols=true&MaxPasswordAge=90",
        )
        .unwrap();
        let IamAction::UpdateAccountPasswordPolicy { policy } = &a else {
            panic!("{a:?}");
        };
        assert_eq!(
            *policy,
            PasswordPolicyView {
                minimum_password_length: 12,
                require_symbols: true,
                max_password_age: 90,
                ..PasswordPolicyView::default()
            }
        );
        assert_eq!(
            parse("UpdateAccountPasswordPolicy", "").unwrap(),
            IamAction::UpdateAccountPasswordPolicy {
                policy: PasswordPolicyView::default()
            }
        );
        let e = parse(
            "UpdateAccountPasswordPolicy",
            "MinimumPasswordLength=5&MaxPasswordAge=1096&PasswordReusePrevention=0",
        )
        .unwrap_err();
        assert!(
            e.message.starts_with("3 validation errors detected: "),
            "{}",
            e.message
        );
        assert!(e.message.contains("Value at 'minimumPasswordLength' failed to satisfy constraint: Member must have value greater than or equal to 6"), "{}", e.message);
        assert!(e.message.contains("Value at 'maxPasswordAge' failed to satisfy constraint: Member must have value less than or equal to 1095"), "{}", e.message);
        assert!(e.message.contains("Value at 'passwordReusePrevention' failed to satisfy constraint: Member must have value greater than or equal to 1"), "{}", e.message);
        let back = IamAction::parse(
            "UpdateAccountPasswordPolicy",
            &Params::from_pairs(a.to_params().into_iter().skip(2).collect()),
        );
        assert_eq!(back.unwrap(), a);
    }

    #[test]
    fn outputs_round_trip() {
        let out = IamOutput::LoginProfile {
            action: "GetLoginProfile",
            profile: LoginProfileView {
                user_name: "bob".into(),
                create_date: "2026-12-01T00:00:00Z".into(),
                password_reset_required: true,
            },
        };
        let xml = out.to_xml("GetLoginProfile", "rid");
        assert!(xml.contains("<LoginProfile>\n      <UserName>bob</UserName>\n      <CreateDate>2026-12-01T00:00:00Z</CreateDate>\n      <PasswordResetRequired>true</PasswordResetRequired>\n    </LoginProfile>"), "{xml}");
        let back = IamOutput::from_xml(&IamAction::GetLoginProfile { user_name: None }, &xml);
        assert_eq!(back.unwrap(), out);
        let out = IamOutput::PasswordPolicy {
            policy: PasswordPolicyView {
                minimum_password_length: 14,
                require_numbers: true,
                password_reuse_prevention: 3,
                ..PasswordPolicyView::default()
            },
        };
        let xml = out.to_xml("GetAccountPasswordPolicy", "rid");
        assert!(
            xml.contains("<ExpirePasswords>false</ExpirePasswords>"),
            "{xml}"
        );
        assert!(!xml.contains("MaxPasswordAge"), "{xml}");
        let back = IamOutput::from_xml(&IamAction::GetAccountPasswordPolicy, &xml);
        assert_eq!(back.unwrap(), out);
    }
}
