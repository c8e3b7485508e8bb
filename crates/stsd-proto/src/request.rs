//! Which API a request addresses.

use crate::error::ApiError;

/// STS API version string.
pub const STS_VERSION: &str = "2011-06-15";
/// IAM API version string.
pub const IAM_VERSION: &str = "2010-05-08";
/// STS XML namespace.
pub const STS_NS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
/// IAM XML namespace.
pub const IAM_NS: &str = "https://iam.amazonaws.com/doc/2010-05-08/";

/// The API family a request belongs to, decided by its `Version` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// AWS Security Token Service, `2011-06-15`, signing service `sts`.
    Sts,
    /// AWS Identity and Access Management, `2010-05-08`, signing service `iam`.
    Iam,
}

impl Api {
    /// The API addressed by a `Version` value (STS when absent or unknown, so that errors use STS's namespace).
    pub fn from_version(version: Option<&str>) -> Api {
        match version {
            Some(IAM_VERSION) => Api::Iam,
            _ => Api::Sts,
        }
    }

    /// SigV4 service name expected in the credential scope.
    pub fn signing_service(self) -> &'static str {
        match self {
            Api::Sts => "sts",
            Api::Iam => "iam",
        }
    }

    /// XML namespace of this API's responses.
    pub fn namespace(self) -> &'static str {
        match self {
            Api::Sts => STS_NS,
            Api::Iam => IAM_NS,
        }
    }

    /// The version string of this API.
    pub fn version(self) -> &'static str {
        match self {
            Api::Sts => STS_VERSION,
            Api::Iam => IAM_VERSION,
        }
    }
}

/// The `Action` and `Version` of a request, checked for presence.
pub fn action_and_version(params: &crate::Params) -> Result<(&str, &str), ApiError> {
    let action = match params.get("Action") {
        Some(a) if !a.is_empty() => a,
        _ => return Err(ApiError::missing_action()),
    };
    match params.get("Version") {
        Some(v) if !v.is_empty() => Ok((action, v)),
        _ => Err(ApiError::missing_parameter("Version")),
    }
}
