//! The STS API (`2011-06-15`): typed actions parsed from [`Params`] and their response bodies.

use crate::error::ApiError;
use crate::params::Params;
use crate::request::{STS_NS, STS_VERSION};
use crate::validate::{Style, Violations, is_word, parse_int};
use crate::xml::{XmlWriter, success_body};

/// The largest session token STS issues (and the basis of `SessionTokenUtilization`).
pub const MAX_SESSION_TOKEN_SIZE: usize = 4096;

/// Operations of the STS model that stsd does not implement (they answer `InvalidAction` like unknown ones,
/// but are listed so that callers can tell them apart in logs).
pub const UNIMPLEMENTED: &[&str] = &[
    "AssumeRoleWithSAML",
    "AssumeRoleWithWebIdentity",
    "AssumeRoot",
    "DecodeAuthorizationMessage",
    "GetDelegatedAccessToken",
    "GetFederationToken",
    "GetWebIdentityToken",
];

/// A parsed and validated STS request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StsAction {
    /// `GetSessionToken`.
    GetSessionToken(GetSessionTokenInput),
    /// `GetCallerIdentity`.
    GetCallerIdentity,
    /// `GetAccessKeyInfo`.
    GetAccessKeyInfo {
        /// The key id whose account is asked for.
        access_key_id: String,
    },
    /// `AssumeRole`.
    AssumeRole(Box<AssumeRoleInput>),
    /// `GetScopedCredentials`.
    GetScopedCredentials(GetScopedCredentialsInput),
}

/// `AssumeRole` input after model validation.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct AssumeRoleInput {
    /// `RoleArn`.
    pub role_arn: String,
    /// `RoleSessionName`.
    pub role_session_name: String,
    /// `PolicyArns` (managed session policies).
    pub policy_arns: Vec<String>,
    /// `Policy` (inline session policy).
    pub policy: Option<String>,
    /// `DurationSeconds`, 900..=43200.
    pub duration_seconds: Option<i64>,
    /// `Tags`.
    pub tags: Vec<(String, String)>,
    /// `TransitiveTagKeys`.
    pub transitive_tag_keys: Vec<String>,
    /// `ExternalId`.
    pub external_id: Option<String>,
    /// `SerialNumber`.
    pub serial_number: Option<String>,
    /// `TokenCode` (a one-time secret: never printed).
    pub token_code: Option<String>,
    /// `SourceIdentity`.
    pub source_identity: Option<String>,
    /// `MinimumSessionTokenSize`.
    pub minimum_session_token_size: Option<i64>,
}

impl std::fmt::Debug for AssumeRoleInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AssumeRoleInput")
            .field("role_arn", &self.role_arn)
            .field("role_session_name", &self.role_session_name)
            .field("duration_seconds", &self.duration_seconds)
            .field("serial_number", &self.serial_number)
            .field(
                "token_code",
                &self.token_code.as_ref().map(|_| "<redacted>"),
            )
            .finish_non_exhaustive()
    }
}

/// `GetScopedCredentials` input after model validation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GetScopedCredentialsInput {
    /// `Policy` (scope-down policy).
    pub policy: Option<String>,
    /// `DurationSeconds`, 1..=129600.
    pub duration_seconds: Option<i64>,
    /// `MinimumSessionTokenSize`.
    pub minimum_session_token_size: Option<i64>,
    /// `ScopedSessionDescription`.
    pub description: Option<String>,
}

/// `GetSessionToken` input after model validation.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct GetSessionTokenInput {
    /// `DurationSeconds`, 900..=129600 when present.
    pub duration_seconds: Option<i64>,
    /// `SerialNumber` of an MFA device.
    pub serial_number: Option<String>,
    /// `TokenCode`, six digits.
    pub token_code: Option<String>,
    /// `MinimumSessionTokenSize`, 0..=4096.
    pub minimum_session_token_size: Option<i64>,
}

impl std::fmt::Debug for GetSessionTokenInput {
    // The TOTP code is a one-time secret: never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GetSessionTokenInput")
            .field("duration_seconds", &self.duration_seconds)
            .field("serial_number", &self.serial_number)
            .field(
                "token_code",
                &self.token_code.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "minimum_session_token_size",
                &self.minimum_session_token_size,
            )
            .finish()
    }
}

fn is_serial_char(c: char) -> bool {
    is_word(c) || "+=/:,.@-".contains(c)
}

impl StsAction {
    /// Parses and validates an STS action (`Version` has been checked to be `2011-06-15`).
    ///
    /// # Errors
    /// `InvalidAction` for an unknown operation, `MalformedInput` for a non-integer number, `ValidationError`
    /// (all violated constraints at once) for values outside the model's constraints.
    pub fn parse(action: &str, params: &Params) -> Result<StsAction, ApiError> {
        match action {
            "GetSessionToken" => Ok(StsAction::GetSessionToken(parse_gst(params)?)),
            "GetCallerIdentity" => Ok(StsAction::GetCallerIdentity),
            "GetAccessKeyInfo" => {
                let mut v = Violations::new(Style::EchoValue);
                let id = params.get("AccessKeyId");
                match id {
                    None => v.not_null("accessKeyId"),
                    Some(id) => {
                        v.length("accessKeyId", id, Some(16), Some(128));
                        v.pattern("accessKeyId", id, "[\\w]*", false, is_word);
                    }
                }
                v.finish()?;
                Ok(StsAction::GetAccessKeyInfo {
                    access_key_id: id.unwrap_or_default().to_owned(),
                })
            }
            "AssumeRole" => Ok(StsAction::AssumeRole(Box::new(parse_assume_role(params)?))),
            "GetScopedCredentials" => Ok(StsAction::GetScopedCredentials(parse_scoped(params)?)),
            other => Err(ApiError::invalid_action(other, STS_VERSION)),
        }
    }

    /// The operation name.
    pub fn name(&self) -> &'static str {
        match self {
            StsAction::GetSessionToken(_) => "GetSessionToken",
            StsAction::GetCallerIdentity => "GetCallerIdentity",
            StsAction::GetAccessKeyInfo { .. } => "GetAccessKeyInfo",
            StsAction::AssumeRole(_) => "AssumeRole",
            StsAction::GetScopedCredentials(_) => "GetScopedCredentials",
        }
    }
}

fn parse_gst(params: &Params) -> Result<GetSessionTokenInput, ApiError> {
    // Type parsing comes before constraint validation (Coral order).
    let duration_seconds = params
        .get("DurationSeconds")
        .map(|raw| parse_int("durationSeconds", raw))
        .transpose()?;
    let minimum_session_token_size = params
        .get("MinimumSessionTokenSize")
        .map(|raw| parse_int("minimumSessionTokenSize", raw))
        .transpose()?;
    let serial_number = params.get("SerialNumber").map(str::to_owned);
    let token_code = params.get("TokenCode").map(str::to_owned);

    let mut v = Violations::new(Style::EchoValue);
    if let Some(d) = duration_seconds {
        v.int_range("durationSeconds", d, Some(900), Some(129_600));
    }
    if let Some(s) = &serial_number {
        v.length("serialNumber", s, Some(9), Some(256));
        v.pattern("serialNumber", s, "[\\w+=/:,.@-]*", false, is_serial_char);
    }
    if let Some(t) = &token_code {
        v.length("tokenCode", t, Some(6), Some(6));
        v.pattern("tokenCode", t, "[\\d]*", false, |c| c.is_ascii_digit());
    }
    if let Some(m) = minimum_session_token_size {
        v.int_range(
            "minimumSessionTokenSize",
            m,
            Some(0),
            Some(MAX_SESSION_TOKEN_SIZE as i64),
        );
    }
    v.finish()?;
    Ok(GetSessionTokenInput {
        duration_seconds,
        serial_number,
        token_code,
        minimum_session_token_size,
    })
}

fn is_session_name_char(c: char) -> bool {
    is_word(c) || "+=,.@-".contains(c)
}

fn is_session_policy_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{ff}')
}

fn is_tag_char(c: char) -> bool {
    c.is_alphabetic() || c.is_numeric() || c.is_whitespace() || "_.:/=+-@".contains(c)
}

const SESSION_POLICY_PATTERN: &str = "[\\u0009\\u000A\\u000D\\u0020-\\u00FF]+";
const TAG_PATTERN: &str = "[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]+";
const TAG_VALUE_PATTERN: &str = "[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*";

fn opt_int(params: &Params, name: &str, member: &str) -> Result<Option<i64>, ApiError> {
    params
        .get(name)
        .map(|raw| parse_int(member, raw))
        .transpose()
}

fn session_policy(v: &mut Violations, params: &Params) -> Option<String> {
    let p = params.get("Policy")?;
    v.length("policy", p, Some(1), Some(2048));
    v.pattern(
        "policy",
        p,
        SESSION_POLICY_PATTERN,
        true,
        is_session_policy_char,
    );
    Some(p.to_owned())
}

fn min_token_size(v: &mut Violations, m: Option<i64>) {
    if let Some(m) = m {
        v.int_range(
            "minimumSessionTokenSize",
            m,
            Some(0),
            Some(MAX_SESSION_TOKEN_SIZE as i64),
        );
    }
}

fn parse_assume_role(params: &Params) -> Result<AssumeRoleInput, ApiError> {
    let duration_seconds = opt_int(params, "DurationSeconds", "durationSeconds")?;
    let minimum_session_token_size =
        opt_int(params, "MinimumSessionTokenSize", "minimumSessionTokenSize")?;
    let mut v = Violations::new(Style::EchoValue);
    let role_arn = match params.get("RoleArn") {
        Some(a) => {
            v.length("roleArn", a, Some(20), Some(2048));
            a.to_owned()
        }
        None => {
            v.not_null("roleArn");
            String::new()
        }
    };
    let role_session_name = match params.get("RoleSessionName") {
        Some(n) => {
            v.length("roleSessionName", n, Some(2), Some(64));
            v.pattern(
                "roleSessionName",
                n,
                "[\\w+=,.@-]*",
                false,
                is_session_name_char,
            );
            n.to_owned()
        }
        None => {
            v.not_null("roleSessionName");
            String::new()
        }
    };
    let mut policy_arns = Vec::new();
    if let Some(items) = params.list_structs("PolicyArns") {
        for (_, item) in items {
            let arn = item.get("arn").unwrap_or_default();
            v.length("policyArns.member.arn", arn, Some(20), Some(2048));
            policy_arns.push(arn.to_owned());
        }
    }
    let policy = session_policy(&mut v, params);
    if let Some(d) = duration_seconds {
        v.int_range("durationSeconds", d, Some(900), Some(43_200));
    }
    let mut tags = Vec::new();
    if let Some(items) = params.list_structs("Tags") {
        if items.len() > 50 {
            v.push("tags", "", "have length less than or equal to 50");
        }
        for (_, item) in items {
            let key = item.get("Key").unwrap_or_default();
            let value = item.get("Value").unwrap_or_default();
            v.length("tags.member.key", key, Some(1), Some(128));
            v.pattern("tags.member.key", key, TAG_PATTERN, true, is_tag_char);
            v.length("tags.member.value", value, Some(0), Some(256));
            v.pattern(
                "tags.member.value",
                value,
                TAG_VALUE_PATTERN,
                false,
                is_tag_char,
            );
            tags.push((key.to_owned(), value.to_owned()));
        }
    }
    let transitive_tag_keys: Vec<String> = params
        .list("TransitiveTagKeys")
        .unwrap_or_default()
        .into_iter()
        .map(str::to_owned)
        .collect();
    if transitive_tag_keys.len() > 50 {
        v.push(
            "transitiveTagKeys",
            "",
            "have length less than or equal to 50",
        );
    }
    let external_id = params.get("ExternalId").map(|e| {
        v.length("externalId", e, Some(2), Some(1224));
        v.pattern("externalId", e, "[\\w+=,.@:\\/-]*", false, |c| {
            is_word(c) || "+=,.@:/-".contains(c)
        });
        e.to_owned()
    });
    let serial_number = params.get("SerialNumber").map(|s| {
        v.length("serialNumber", s, Some(9), Some(256));
        v.pattern("serialNumber", s, "[\\w+=/:,.@-]*", false, is_serial_char);
        s.to_owned()
    });
    let token_code = params.get("TokenCode").map(|t| {
        v.length("tokenCode", t, Some(6), Some(6));
        v.pattern("tokenCode", t, "[\\d]*", false, |c| c.is_ascii_digit());
        t.to_owned()
    });
    let source_identity = params.get("SourceIdentity").map(|s| {
        v.length("sourceIdentity", s, Some(2), Some(256));
        v.pattern(
            "sourceIdentity",
            s,
            "[\\w+=,.@-]*",
            false,
            is_session_name_char,
        );
        s.to_owned()
    });
    min_token_size(&mut v, minimum_session_token_size);
    v.finish()?;
    Ok(AssumeRoleInput {
        role_arn,
        role_session_name,
        policy_arns,
        policy,
        duration_seconds,
        tags,
        transitive_tag_keys,
        external_id,
        serial_number,
        token_code,
        source_identity,
        minimum_session_token_size,
    })
}

fn parse_scoped(params: &Params) -> Result<GetScopedCredentialsInput, ApiError> {
    let duration_seconds = opt_int(params, "DurationSeconds", "durationSeconds")?;
    let minimum_session_token_size =
        opt_int(params, "MinimumSessionTokenSize", "minimumSessionTokenSize")?;
    let mut v = Violations::new(Style::EchoValue);
    let policy = session_policy(&mut v, params);
    if let Some(d) = duration_seconds {
        v.int_range("durationSeconds", d, Some(1), Some(129_600));
    }
    min_token_size(&mut v, minimum_session_token_size);
    let description = params.get("ScopedSessionDescription").map(|d| {
        v.length("scopedSessionDescription", d, Some(2), Some(256));
        v.pattern(
            "scopedSessionDescription",
            d,
            "[\\u0009\\u000A\\u000D\\u0020-\\u007E\\u00A1-\\u00FF]*",
            false,
            |c| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{7e}' | '\u{a1}'..='\u{ff}'),
        );
        d.to_owned()
    });
    v.finish()?;
    if policy.is_none() && duration_seconds.is_none() {
        // The model: "you must specify at least one of them" (the wording is not documented) [I].
        return Err(ApiError::validation(
            "A request must provide at least one of Policy or DurationSeconds.",
        ));
    }
    Ok(GetScopedCredentialsInput {
        policy,
        duration_seconds,
        minimum_session_token_size,
        description,
    })
}

/// Temporary credentials as written in a response.
pub struct Credentials<'a> {
    /// `ASIA...`
    pub access_key_id: &'a str,
    /// 40-character secret.
    pub secret_access_key: &'a str,
    /// The sealed session token.
    pub session_token: &'a str,
    /// `YYYY-MM-DDTHH:MM:SSZ`.
    pub expiration: &'a str,
}

/// `SessionTokenUtilization`: the percentage of [`MAX_SESSION_TOKEN_SIZE`] a token of `size` bytes uses,
/// rounded up (so that any non-empty token reports at least 1), capped at 100.
pub fn session_token_utilization(size: usize) -> usize {
    (size * 100).div_ceil(MAX_SESSION_TOKEN_SIZE).min(100)
}

/// The `GetSessionTokenResponse` body.
pub fn get_session_token_body(creds: &Credentials<'_>, request_id: &str) -> String {
    let size = creds.session_token.len();
    success_body(
        "GetSessionToken",
        STS_NS,
        request_id,
        Some(&|w: &mut XmlWriter| {
            w.element("Credentials", |w| {
                w.leaf("AccessKeyId", creds.access_key_id);
                w.leaf("SecretAccessKey", creds.secret_access_key);
                w.leaf("SessionToken", creds.session_token);
                w.leaf("Expiration", creds.expiration);
            });
            w.leaf_uint("SessionTokenUtilization", session_token_utilization(size));
            w.leaf_uint("SessionTokenSize", size);
        }),
    )
}

fn write_credentials(w: &mut XmlWriter, creds: &Credentials<'_>) {
    w.element("Credentials", |w| {
        w.leaf("AccessKeyId", creds.access_key_id);
        w.leaf("SecretAccessKey", creds.secret_access_key);
        w.leaf("SessionToken", creds.session_token);
        w.leaf("Expiration", creds.expiration);
    });
}

/// The `AssumeRoleResponse` body (`AssumedRoleUser` before `Credentials`, as real STS writes it).
pub fn assume_role_body(
    creds: &Credentials<'_>,
    assumed_role_id: &str,
    arn: &str,
    source_identity: Option<&str>,
    request_id: &str,
) -> String {
    let size = creds.session_token.len();
    let utilization = session_token_utilization(size).to_string();
    success_body(
        "AssumeRole",
        STS_NS,
        request_id,
        Some(&|w: &mut XmlWriter| {
            w.element("AssumedRoleUser", |w| {
                w.leaf("AssumedRoleId", assumed_role_id);
                w.leaf("Arn", arn);
            });
            write_credentials(w, creds);
            w.leaf("PackedPolicySize", &utilization);
            if let Some(s) = source_identity {
                w.leaf("SourceIdentity", s);
            }
            w.leaf("SessionTokenUtilization", &utilization);
            w.leaf_uint("SessionTokenSize", size);
        }),
    )
}

/// The `GetScopedCredentialsResponse` body (members in model order).
pub fn get_scoped_credentials_body(
    creds: &Credentials<'_>,
    scoped_session_id: &str,
    arn: &str,
    scoped_policies: usize,
    source_identity: Option<&str>,
    request_id: &str,
) -> String {
    let size = creds.session_token.len();
    success_body(
        "GetScopedCredentials",
        STS_NS,
        request_id,
        Some(&|w: &mut XmlWriter| {
            write_credentials(w, creds);
            w.element("SessionInfo", |w| {
                w.leaf("ScopedSessionId", scoped_session_id);
                w.leaf("Arn", arn);
            });
            w.leaf_uint("SessionTokenUtilization", session_token_utilization(size));
            w.leaf_uint("SessionTokenSize", size);
            w.leaf_uint("ScopedPoliciesCount", scoped_policies);
            if let Some(s) = source_identity {
                w.leaf("SourceIdentity", s);
            }
        }),
    )
}

/// The `GetCallerIdentityResponse` body (element order Arn, UserId, Account, as real STS writes it).
pub fn get_caller_identity_body(
    arn: &str,
    user_id: &str,
    account: &str,
    request_id: &str,
) -> String {
    success_body(
        "GetCallerIdentity",
        STS_NS,
        request_id,
        Some(&|w: &mut XmlWriter| {
            w.leaf("Arn", arn);
            w.leaf("UserId", user_id);
            w.leaf("Account", account);
        }),
    )
}

/// The `GetAccessKeyInfoResponse` body.
pub fn get_access_key_info_body(account: &str, request_id: &str) -> String {
    success_body(
        "GetAccessKeyInfo",
        STS_NS,
        request_id,
        Some(&|w: &mut XmlWriter| w.leaf("Account", account)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gst(q: &str) -> Result<GetSessionTokenInput, ApiError> {
        match StsAction::parse("GetSessionToken", &Params::parse(q.as_bytes()))? {
            StsAction::GetSessionToken(i) => Ok(i),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn gst_defaults() {
        assert_eq!(gst("").unwrap(), GetSessionTokenInput::default());
    }

    #[test]
    fn gst_duration_bounds() {
        assert_eq!(
            gst("DurationSeconds=900").unwrap().duration_seconds,
            Some(900)
        );
        assert_eq!(
            gst("DurationSeconds=129600").unwrap().duration_seconds,
            Some(129600)
        );
        assert_eq!(
            gst("DurationSeconds=899").unwrap_err().message,
            "1 validation error detected: Value '899' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900"
        );
        assert_eq!(
            gst("DurationSeconds=345600").unwrap_err().message,
            "1 validation error detected: Value '345600' at 'durationSeconds' failed to satisfy constraint: Member must have value less than or equal to 129600"
        );
        let e = gst("DurationSeconds=abc").unwrap_err();
        assert_eq!((e.status, e.code.as_ref()), (400, "MalformedInput"));
    }

    #[test]
    fn gst_token_code_and_serial() {
        assert_eq!(
            gst("TokenCode=11111111111111").unwrap_err().message,
            "1 validation error detected: Value '11111111111111' at 'tokenCode' failed to satisfy constraint: Member must have length less than or equal to 6"
        );
        assert_eq!(
            gst("TokenCode=12345").unwrap_err().message,
            "1 validation error detected: Value '12345' at 'tokenCode' failed to satisfy constraint: Member must have length greater than or equal to 6"
        );
        assert_eq!(
            gst("TokenCode=abcdef").unwrap_err().message,
            "1 validation error detected: Value 'abcdef' at 'tokenCode' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\d]*"
        );
        assert_eq!(
            gst("SerialNumber=abc").unwrap_err().message,
            "1 validation error detected: Value 'abc' at 'serialNumber' failed to satisfy constraint: Member must have length greater than or equal to 9"
        );
        assert_eq!(
            gst("SerialNumber=a+b+c+d+e+f").unwrap_err().message,
            "1 validation error detected: Value 'a b c d e f' at 'serialNumber' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=/:,.@-]*"
        );
        let long = "a".repeat(257);
        assert!(
            gst(&format!("SerialNumber={long}"))
                .unwrap_err()
                .message
                .ends_with("Member must have length less than or equal to 256")
        );
        let ok = gst("SerialNumber=arn%3Aaws%3Aiam%3A%3A123456789012%3Amfa%2Fdev&TokenCode=012345")
            .unwrap();
        assert_eq!(
            ok.serial_number.as_deref(),
            Some("arn:aws:iam::123456789012:mfa/dev")
        );
        assert!(!format!("{ok:?}").contains("012345"));
    }

    #[test]
    fn gst_collects_all_violations() {
        let e = gst("DurationSeconds=1&TokenCode=1&MinimumSessionTokenSize=5000").unwrap_err();
        assert!(
            e.message.starts_with("3 validation errors detected: "),
            "{}",
            e.message
        );
        assert!(e.message.contains("Value '5000' at 'minimumSessionTokenSize' failed to satisfy constraint: Member must have value less than or equal to 4096"));
    }

    #[test]
    fn unknown_action() {
        let e = StsAction::parse("Foo", &Params::default()).unwrap_err();
        assert_eq!(e.code, "InvalidAction");
        assert_eq!(
            e.message,
            "Could not find operation Foo for version 2011-06-15"
        );
    }

    #[test]
    fn bodies_have_aws_layout() {
        let body = get_caller_identity_body(
            "arn:aws:iam::291738886548:user/svcacct1",
            "AIDAUH3H6EGKDO36JYJH3",
            "291738886548",
            "d8741953-c285-4ffd-a709-43bfdcd2f201",
        );
        assert_eq!(
            body,
            "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n  <GetCallerIdentityResult>\n    <Arn>arn:aws:iam::291738886548:user/svcacct1</Arn>\n    <UserId>AIDAUH3H6EGKDO36JYJH3</UserId>\n    <Account>291738886548</Account>\n  </GetCallerIdentityResult>\n  <ResponseMetadata>\n    <RequestId>d8741953-c285-4ffd-a709-43bfdcd2f201</RequestId>\n  </ResponseMetadata>\n</GetCallerIdentityResponse>\n"
        );
        let gst = get_session_token_body(
            &Credentials {
                access_key_id: "ASIAUH3H6EGKJI4NP6V5",
                secret_access_key: "s",
                session_token: "t".repeat(410).as_str(),
                expiration: "2026-11-23T11:17:47Z",
            },
            "r",
        );
        assert!(gst.contains("    <Credentials>\n      <AccessKeyId>ASIAUH3H6EGKJI4NP6V5</AccessKeyId>\n      <SecretAccessKey>s</SecretAccessKey>\n"));
        assert!(gst.contains("      <Expiration>2026-11-23T11:17:47Z</Expiration>\n    </Credentials>\n    <SessionTokenUtilization>11</SessionTokenUtilization>\n    <SessionTokenSize>410</SessionTokenSize>\n"), "{gst}");
    }

    #[test]
    fn assume_role_parsing_and_validation() {
        let a = match StsAction::parse(
            "AssumeRole",
            &Params::parse(
                b"RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fadmin&RoleSessionName=alice\
&PolicyArns.member.1.arn=arn%3Aaws%3Aiam%3A%3A123456789012%3Apolicy%2FRead&Tags.member.1.Key=team\
&Tags.member.1.Value=ops&TransitiveTagKeys.member.1=team&ExternalId=xyz-1&SerialNumber=GAHT12345678\
&TokenCode=123456&DurationSeconds=900",
            ),
        )
        .unwrap()
        {
            StsAction::AssumeRole(a) => a,
            other => panic!("{other:?}"),
        };
        assert_eq!(a.role_session_name, "alice");
        assert_eq!(a.policy_arns, ["arn:aws:iam::123456789012:policy/Read"]);
        assert_eq!(a.tags, [("team".to_owned(), "ops".to_owned())]);
        assert_eq!(a.transitive_tag_keys, ["team"]);
        assert_eq!(a.duration_seconds, Some(900));
        assert!(!format!("{a:?}").contains("123456\""));
        let e = StsAction::parse(
            "AssumeRole",
            &Params::parse(b"RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fadmin&RoleSessionName=Session1%3A2"),
        )
        .unwrap_err();
        assert_eq!(
            e.message,
            "1 validation error detected: Value 'Session1:2' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*"
        );
        let e = StsAction::parse("AssumeRole", &Params::parse(b"")).unwrap_err();
        assert!(
            e.message.starts_with("2 validation errors detected"),
            "{}",
            e.message
        );
    }

    #[test]
    fn scoped_credentials_need_policy_or_duration() {
        let e = StsAction::parse("GetScopedCredentials", &Params::parse(b"")).unwrap_err();
        assert_eq!(e.code, "ValidationError");
        assert!(
            StsAction::parse("GetScopedCredentials", &Params::parse(b"DurationSeconds=1")).is_ok()
        );
        let e = StsAction::parse(
            "GetScopedCredentials",
            &Params::parse(b"DurationSeconds=129601"),
        )
        .unwrap_err();
        assert!(
            e.message.contains("less than or equal to 129600"),
            "{}",
            e.message
        );
    }

    #[test]
    fn utilization_rounds_up() {
        assert_eq!(session_token_utilization(0), 0);
        assert_eq!(session_token_utilization(1), 1);
        assert_eq!(session_token_utilization(4096), 100);
        assert_eq!(session_token_utilization(2048), 50);
        assert_eq!(session_token_utilization(2049), 51);
    }
}
