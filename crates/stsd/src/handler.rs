//! One awsQuery request: parameters → authentication → typed action → execution → XML, plus its audit
//! record.

use crate::auth::{self, Caller};
use crate::state::AppState;
use crate::sts::{self, Executed};
use serde_json::{Value, json};
use stsd_proto::iam::{IamAction, IamOutput};
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
    /// The client's address.
    pub peer: std::net::IpAddr,
    /// Whether the connection is TLS.
    pub tls: bool,
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
    /// The body is JSON (`Accept: application/json` on the STS API), not XML.
    pub json: bool,
}

/// A random UUID v4 in its lowercase hyphenated form.
pub fn new_request_id() -> String {
    stsd_core::ids::uuid_v4()
}

/// True for the calls that write no log event at info level or above on their way (GetCallerIdentity,
/// GetAccessKeyInfo, GetSessionToken and AssumeRole without MFA parameters; IAM's reads of users and
/// their keys and devices) other than ones that name the request id themselves or concern the node
/// rather than the request (a stored policy that does not compile, the store unreachable).
fn is_quiet(params: &Params) -> bool {
    match params.get("Version") {
        Some(STS_VERSION) => match params.get("Action") {
            Some("GetCallerIdentity" | "GetAccessKeyInfo") => true,
            Some("GetSessionToken" | "AssumeRole") => {
                params.get("SerialNumber").is_none() && params.get("TokenCode").is_none()
            }
            _ => false,
        },
        Some(IAM_VERSION) => matches!(
            params.get("Action"),
            Some(
                "GetUser"
                    | "ListUsers"
                    | "ListAccessKeys"
                    | "GetAccessKeyLastUsed"
                    | "ListMFADevices"
            )
        ),
        _ => false,
    }
}

/// The MFA device an STS call that checks a code names: read with the caller's key when that is not
/// cached (see `AppState::access_key_reading_device`).
fn mfa_serial(params: &Params, api: Api) -> Option<&str> {
    if api != Api::Sts
        || params.get("TokenCode").is_none()
        || !matches!(params.get("Action"), Some("GetSessionToken" | "AssumeRole"))
    {
        return None;
    }
    params.get("SerialNumber")
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

/// What the request's processing learned, for the audit log.
#[derive(Default)]
struct Trace {
    caller: Option<Caller>,
    region: Option<String>,
    response: Option<Value>,
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
    let mut trace = Trace::default();
    // Events inside the request carry its id through this span. Creating a span formats its fields
    // (about 4 % of a GetSessionToken's CPU), so requests that log nothing at info level or above
    // skip it unless debug logging is on; the events they may still write name the request id
    // themselves.
    let span = if is_quiet(&params) && !tracing::enabled!(tracing::Level::DEBUG) {
        tracing::Span::none()
    } else {
        tracing::info_span!("request", request_id = %request_id)
    };
    let result = {
        use tracing::Instrument;
        run(state, req, &params, api, bad_media, request_id, &mut trace)
            .instrument(span)
            .await
    };
    if let Some(audit) = &state.audit {
        audit.record(audit_record(
            state,
            req,
            &params,
            api,
            request_id,
            &trace,
            result.as_ref().err(),
        ));
    }
    let mut outcome = match result {
        Ok(body) => Outcome {
            status: 200,
            body,
            error_code: None,
            action: action_name,
            json: false,
        },
        Err(e) => {
            if e.status >= 500 {
                tracing::warn!(request_id, code = %e.code, status = e.status, "request failed");
            } else {
                tracing::debug!(request_id, code = %e.code, status = e.status, "request refused");
            }
            Outcome {
                status: e.status,
                body: error_body(&e, api.namespace(), request_id),
                error_code: Some(e.code.to_string()),
                action: action_name,
                json: false,
            }
        }
    };
    // AWS's JSON rendering of the same document, for verifiers such as aws-iam-authenticator.
    if api == Api::Sts
        && req
            .headers
            .get(http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(stsd_proto::json::wants_json)
        && let Some(json) = stsd_proto::json::from_xml(&outcome.body)
    {
        outcome.body = json;
        outcome.json = true;
    }
    outcome
}

async fn run(
    state: &AppState,
    req: &Incoming<'_>,
    params: &Params,
    api: Api,
    bad_media: bool,
    request_id: &str,
    trace: &mut Trace,
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
    if state.ip_limit.enabled() && !state.ip_limit.allow(&req.peer.to_string()) {
        state.metrics.throttled();
        return Err(ApiError::throttling());
    }
    // Before authentication: a repeated name makes a signed request ambiguous.
    if let Some(name) = params.first_duplicate() {
        return Err(ApiError::duplicate_parameter(name));
    }
    let sig_req = sigv4::Request {
        method: req.method,
        path: req.path,
        query: req.query,
        headers: req.headers,
        body: req.body,
    };
    let authenticated = auth::authenticate(state, &sig_req, api, mfa_serial(params, api)).await?;
    let caller = authenticated.caller;
    if state.audit.is_some() {
        trace.region = Some(authenticated.region);
        trace.caller = Some(caller.clone());
    }
    if !state.key_limit.allow(caller.rate_limit_key()) {
        state.metrics.throttled();
        return Err(ApiError::throttling());
    }
    if bad_media {
        return Err(ApiError::invalid_query(
            "The request body must be application/x-www-form-urlencoded",
        ));
    }
    let (action, version) = proto_request::action_and_version(params)?;
    match version {
        STS_VERSION => {
            let action = StsAction::parse(action, params)?;
            let transport = crate::authz::context::Transport {
                peer: req.peer,
                tls: req.tls,
                headers: req.headers,
            };
            let Executed { body, response } = sts::execute(
                state,
                &caller,
                &transport,
                action,
                request_id,
                authenticated.device,
            )
            .await?;
            trace.response = response;
            Ok(body)
        }
        IAM_VERSION => {
            // Sessions without MFA may not use IAM at all (checked before the action is even parsed).
            let transport = crate::authz::context::Transport {
                peer: req.peer,
                tls: req.tls,
                headers: req.headers,
            };
            let actor = crate::iam::actor(state, &caller, &transport)?;
            let action = IamAction::parse(action, params)?;
            let started = std::time::Instant::now();
            // Boxed: IAM's store calls make a large future; out of line, the STS path's stays small.
            let iam = crate::iam::Iam::new(state, actor);
            let out = Box::pin(iam.execute(&action)).await;
            state.metrics.store("iam", started.elapsed());
            let out = out?;
            if state.audit.is_some() {
                trace.response = iam_response_elements(&out);
            }
            Ok(out.to_xml(action.name(), request_id))
        }
        other => Err(ApiError::invalid_action(action, other)),
    }
}

/// What CloudTrail would show of an IAM response: ids and names, never secrets or seeds.
fn iam_response_elements(out: &IamOutput) -> Option<Value> {
    match out {
        IamOutput::User {
            action: "CreateUser",
            user,
        } => Some(json!({
            "user": {"userName": user.user_name, "userId": user.user_id, "arn": user.arn, "path": user.path}
        })),
        IamOutput::NewAccessKey { key, .. } => Some(json!({
            "accessKey": {"accessKeyId": key.access_key_id, "status": key.status, "userName": key.user_name}
        })),
        IamOutput::NewVirtualMfaDevice { serial_number, .. } => {
            Some(json!({"virtualMFADevice": {"serialNumber": serial_number}}))
        }
        _ => None,
    }
}

fn audit_record(
    state: &AppState,
    req: &Incoming<'_>,
    params: &Params,
    api: Api,
    request_id: &str,
    trace: &Trace,
    error: Option<&ApiError>,
) -> Value {
    let source = match api {
        Api::Sts => "sts.amazonaws.com",
        Api::Iam => "iam.amazonaws.com",
    };
    let identity = trace.caller.as_ref().map(|c| {
        crate::audit::user_identity(
            &c.identity(&state.account),
            &state.account,
            c.access_key_id(),
            c.mfa(),
        )
    });
    let user_agent = req
        .headers
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| crate::audit::clean(ua, 256));
    let mut record = json!({
        "eventVersion": "1.08",
        "eventTime": stsd_core::timefmt::iso8601(state.clock.now()),
        "eventSource": source,
        "eventName": params.get("Action").map(|a| crate::audit::clean(a, 64)),
        "awsRegion": trace.region,
        "sourceIPAddress": req.peer.to_string(),
        "userAgent": user_agent,
        "userIdentity": identity,
        // Nothing a client sent is recorded for a request that failed authentication: anyone can send
        // those, and the log must not be theirs to fill.
        "requestParameters": if trace.caller.is_some() {
            crate::audit::request_parameters(params, api)
        } else {
            Value::Null
        },
        "responseElements": trace.response,
        "requestID": request_id,
        "eventID": new_request_id(),
        "eventType": "AwsApiCall",
        "recipientAccountId": state.account,
    });
    if let Some(e) = error {
        record["errorCode"] = json!(e.code);
        // Validation messages echo values: keep codes and tokens out of the log.
        record["errorMessage"] = json!(crate::audit::error_message(&e.message, params));
    }
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_calls_that_log_nothing_skip_the_request_span() {
        let quiet = |q: &str| is_quiet(&Params::parse(q.as_bytes()));
        assert!(quiet("Action=GetCallerIdentity&Version=2011-06-15"));
        assert!(quiet(
            "Action=GetAccessKeyInfo&Version=2011-06-15&AccessKeyId=AKIA"
        ));
        assert!(quiet(
            "Action=GetSessionToken&Version=2011-06-15&DurationSeconds=900"
        ));
        assert!(quiet(
            "Action=AssumeRole&Version=2011-06-15&RoleArn=arn&RoleSessionName=s"
        ));
        // MFA checks log refusals and lock-outs; IAM logs every change; anything unknown gets the span.
        assert!(!quiet(
            "Action=GetSessionToken&Version=2011-06-15&SerialNumber=arn"
        ));
        assert!(!quiet(
            "Action=GetSessionToken&Version=2011-06-15&TokenCode=123456"
        ));
        assert!(!quiet("Action=CreateUser&Version=2010-05-08&UserName=u"));
        assert!(quiet("Action=GetUser&Version=2010-05-08&UserName=u"));
        assert!(quiet("Action=ListAccessKeys&Version=2010-05-08"));
        assert!(!quiet("Action=GetUser&Version=2011-06-15"));
        assert!(!quiet("Action=ResyncMFADevice&Version=2010-05-08"));
        assert!(!quiet("Action=CreateVirtualMFADevice&Version=2010-05-08"));
        assert!(!quiet("Action=GetCallerIdentity&Version=2010-05-08"));
        assert!(!quiet("Action=GetCallerIdentity"));
        assert!(!quiet(
            "Action=AssumeRole&Version=2011-06-15&RoleArn=arn&RoleSessionName=s&SerialNumber=arn&TokenCode=123456"
        ));
        assert!(!quiet(
            "Action=AssumeRoleWithWebIdentity&Version=2011-06-15"
        ));
    }

    #[test]
    fn only_sts_calls_that_check_a_code_name_a_device_to_read_with_the_key() {
        let serial =
            |q: &str, api| mfa_serial(&Params::parse(q.as_bytes()), api).map(str::to_owned);
        let gst =
            "Action=GetSessionToken&Version=2011-06-15&SerialNumber=arn%3Adev&TokenCode=123456";
        assert_eq!(serial(gst, Api::Sts).as_deref(), Some("arn:dev"));
        let assume = "Action=AssumeRole&Version=2011-06-15&RoleArn=r&RoleSessionName=s&SerialNumber=d&TokenCode=1";
        assert_eq!(serial(assume, Api::Sts).as_deref(), Some("d"));
        // No code (refused before any device is read), another action, or the IAM API: nothing.
        assert_eq!(
            serial(
                "Action=GetSessionToken&Version=2011-06-15&SerialNumber=d",
                Api::Sts
            ),
            None
        );
        assert_eq!(
            serial(
                "Action=EnableMFADevice&Version=2010-05-08&SerialNumber=d&TokenCode=1",
                Api::Iam
            ),
            None
        );
        assert_eq!(
            serial(
                "Action=GetCallerIdentity&Version=2011-06-15&SerialNumber=d&TokenCode=1",
                Api::Sts
            ),
            None
        );
    }
}
