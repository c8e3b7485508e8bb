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
    "AssumeRole",
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
            other => Err(ApiError::invalid_action(other, STS_VERSION)),
        }
    }

    /// The operation name.
    pub fn name(&self) -> &'static str {
        match self {
            StsAction::GetSessionToken(_) => "GetSessionToken",
            StsAction::GetCallerIdentity => "GetCallerIdentity",
            StsAction::GetAccessKeyInfo { .. } => "GetAccessKeyInfo",
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
            w.leaf(
                "SessionTokenUtilization",
                &session_token_utilization(size).to_string(),
            );
            w.leaf("SessionTokenSize", &size.to_string());
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
    fn utilization_rounds_up() {
        assert_eq!(session_token_utilization(0), 0);
        assert_eq!(session_token_utilization(1), 1);
        assert_eq!(session_token_utilization(4096), 100);
        assert_eq!(session_token_utilization(2048), 50);
        assert_eq!(session_token_utilization(2049), 51);
    }
}
