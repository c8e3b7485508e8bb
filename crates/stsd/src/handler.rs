//! One awsQuery request: parameters → authentication → typed action → execution → XML.

use crate::auth;
use crate::state::AppState;
use crate::sts;
use stsd_proto::iam::IamAction;
use stsd_proto::request::{self as proto_request, Api, IAM_VERSION, STS_VERSION};
use stsd_proto::sts::StsAction;
use stsd_proto::xml::error_body;
use stsd_proto::{ApiError, Params};
use stsd_sigv4 as sigv4;

/// A request as the HTTP layer hands it over.
pub struct Incoming<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// Path as received.
    pub path: &'a str,
    /// Raw query string (without `?`).
    pub query: &'a str,
    /// Headers.
    pub headers: &'a http::HeaderMap,
    /// The whole body.
    pub body: &'a [u8],
}

/// What to send back.
pub struct Outcome {
    /// HTTP status.
    pub status: u16,
    /// XML body.
    pub body: String,
    /// AWS error code when the request failed (for logs and metrics).
    pub error_code: Option<String>,
    /// The action name, when known.
    pub action: Option<String>,
}

/// A random UUID v4 in its lowercase hyphenated form.
pub fn new_request_id() -> String {
    let mut b = [0u8; 16];
    stsd_core::random_fill(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn is_form(headers: &http::HeaderMap) -> bool {
    match headers.get(http::header::CONTENT_TYPE) {
        None => true,
        Some(v) => v
            .to_str()
            .map(|s| {
                s.split(';').next().is_some_and(|m| {
                    m.trim()
                        .eq_ignore_ascii_case("application/x-www-form-urlencoded")
                })
            })
            .unwrap_or(false),
    }
}

/// Handles one query-protocol request.
pub async fn handle(state: &AppState, req: &Incoming<'_>, request_id: &str) -> Outcome {
    let mut params = Params::parse(req.query.as_bytes());
    let mut bad_media = false;
    if req.method == "POST" && !req.body.is_empty() {
        if is_form(req.headers) {
            params.extend_from(req.body);
        } else {
            bad_media = true;
        }
    }
    let api = Api::from_version(params.get("Version"));
    let action_name = params.get("Action").map(str::to_owned);
    let result = run(state, req, &params, api, bad_media, request_id).await;
    match result {
        Ok(body) => Outcome {
            status: 200,
            body,
            error_code: None,
            action: action_name,
        },
        Err(e) => {
            if e.status >= 500 {
                tracing::warn!(code = %e.code, status = e.status, "request failed");
            } else {
                tracing::debug!(code = %e.code, status = e.status, message = %e.message, "request refused");
            }
            Outcome {
                status: e.status,
                body: error_body(&e, api.namespace(), request_id),
                error_code: Some(e.code.to_string()),
                action: action_name,
            }
        }
    }
}

async fn run(
    state: &AppState,
    req: &Incoming<'_>,
    params: &Params,
    api: Api,
    bad_media: bool,
    request_id: &str,
) -> Result<String, ApiError> {
    if req.method != "GET" && req.method != "POST" {
        return Err(ApiError::new(
            405,
            "MethodNotAllowed",
            format!(
                "The HTTP method {} is not allowed: use POST or GET",
                req.method
            ),
        ));
    }
    let sig_req = sigv4::Request {
        method: req.method,
        path: req.path,
        query: req.query,
        headers: req.headers,
        body: req.body,
    };
    let caller = auth::authenticate(state, &sig_req, api).await?;
    if bad_media {
        return Err(ApiError::invalid_query(
            "The request body must be application/x-www-form-urlencoded",
        ));
    }
    let (action, version) = proto_request::action_and_version(params)?;
    match version {
        STS_VERSION => {
            let action = StsAction::parse(action, params)?;
            sts::execute(state, &caller, action, request_id).await
        }
        IAM_VERSION => {
            // Sessions without MFA may not use IAM at all (checked before the action is even parsed).
            let actor = crate::iam::actor(&caller)?;
            let action = IamAction::parse(action, params)?;
            let out = crate::iam::Iam::new(state, actor).execute(&action).await?;
            Ok(out.to_xml(action.name(), request_id))
        }
        other => Err(ApiError::invalid_action(action, other)),
    }
}
