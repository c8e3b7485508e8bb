//! The authorizer: `/_stsd/authorize`, a forward-auth endpoint for nginx `auth_request`, Caddy
//! `forward_auth`, Traefik `ForwardAuth` and Envoy `ext_authz` (HTTP mode).
//!
//! A check is: read the original request as the proxy presents it ([`original`]) → find the configured
//! API by host and path prefix ([`config`]) → verify its SigV4 signature exactly as the STS endpoint does
//! ([`crate::auth::authenticate_scoped`], with the API's service name and region, and the payload hash the
//! client signed, since proxies send no body) → authorize `execute-api:Invoke` (or the API's own action)
//! on `arn:aws:execute-api:{region}:{account}:{api-id}/{stage}/{METHOD}/{path}` with the one
//! authorization path ([`crate::authz`]) → answer 200 with identity headers, or 403 with API Gateway's
//! JSON error. Every decision is counted ([`Counters`]) and audited in CloudTrail shape.

pub mod answer;
pub mod config;
pub mod fuzz;
pub mod original;

use crate::auth::{self, Caller, Payload};
use crate::authz::context::{self, Transport, Who};
use crate::handler::Incoming;
use crate::state::AppState;
use answer::Answer;
use serde_json::{Value, json};
use stsd_policy::Decision;
use stsd_sigv4 as sigv4;

pub use answer::Counters;

/// The endpoint's path (and, for Envoy, the prefix of the original path).
pub const PATH: &str = "/_stsd/authorize";

/// Whether a request path is the authorizer's.
pub fn is_authorizer_path(path: &str) -> bool {
    path == PATH || path.strip_prefix(PATH).is_some_and(|r| r.starts_with('/'))
}

/// The UNSIGNED-PAYLOAD literal.
const UNSIGNED: &str = "UNSIGNED-PAYLOAD";

/// What the decision learned, for the audit record.
#[derive(Default)]
struct Trace {
    caller: Option<Caller>,
    region: Option<String>,
    api: Option<(String, String)>,
    method: Option<String>,
    resource_path: Option<String>,
    action: Option<String>,
    resource: Option<String>,
    client: Option<std::net::IpAddr>,
}

/// Handles one check.
pub async fn handle(state: &AppState, req: &Incoming<'_>, request_id: &str) -> Answer {
    let mut trace = Trace::default();
    let answer = decide(state, req, &mut trace).await;
    state.metrics.authorizer.count(answer.reason);
    if let Some(audit) = &state.audit {
        audit.record(audit_record(state, req, request_id, &trace, &answer));
    }
    answer
}

async fn decide(state: &AppState, req: &Incoming<'_>, trace: &mut Trace) -> Answer {
    let settings = &state.authz.settings;
    let trusted_peer = settings
        .trusted_proxies
        .iter()
        .any(|c| c.contains(req.peer));
    let transport = Transport {
        peer: req.peer,
        tls: req.tls,
        headers: req.headers,
    };
    let client = context::client(&transport, &settings.trusted_proxies);
    trace.client = Some(client.0);
    if state.ip_limit.enabled() && !state.ip_limit.allow(&client.0.to_string()) {
        state.metrics.throttled();
        return Answer::throttled();
    }
    let Some(orig) = original::read(req.method, req.path, req.query, req.headers, trusted_peer)
    else {
        tracing::debug!(peer = %req.peer, trusted_peer, "authorizer: no original request to check");
        return Answer::unknown_route();
    };
    let host = orig.host_override.or_else(|| {
        req.headers
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok())
    });
    let Some(host) = host else {
        return Answer::unknown_route();
    };
    let Some(api) = config::find(&settings.apis, host, orig.path) else {
        tracing::debug!(
            host,
            path = orig.path,
            "authorizer: no API serves this host and path"
        );
        return Answer::unknown_route();
    };
    // The trace is only for the audit log: nothing is copied without one.
    let auditing = state.audit.is_some();
    if auditing {
        trace.api = Some((api.id.clone(), api.stage.clone()));
        trace.method = Some(orig.method.to_owned());
    }
    if original::ambiguous_path(orig.path) {
        return Answer::unknown_route();
    }
    let rest = config::resource_path(api, orig.path);
    if auditing {
        trace.resource_path = Some(rest.to_owned());
    }
    // Proxies send no body: the payload hash is the one the client signed.
    let declared = req
        .headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    let body_hash;
    let mut hashes: [&str; 2] = ["", ""];
    let mut n = 0;
    match declared {
        Some(h) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
            if !req.body.is_empty() && !sigv4::hex_sha256(req.body).eq_ignore_ascii_case(h) {
                // Envoy's with_request_body: a body that is not the one signed.
                return Answer::signature_mismatch();
            }
            hashes[0] = h;
            n = 1;
        }
        Some(other) => {
            if !api.unsigned_payload {
                return Answer::unsigned_refused();
            }
            hashes[0] = other;
            n = 1;
        }
        None => {
            body_hash = sigv4::hex_sha256(req.body);
            hashes[0] = &body_hash;
            n += 1;
            if api.unsigned_payload {
                // Presigned URLs may sign UNSIGNED-PAYLOAD.
                hashes[1] = UNSIGNED;
                n += 1;
            }
        }
    }
    // The client signed the original Host: verify against it.
    let overridden;
    let headers = match orig.host_override {
        None => req.headers,
        Some(h) => {
            let mut copy = req.headers.clone();
            match http::HeaderValue::from_str(h) {
                Ok(v) => {
                    copy.insert(http::header::HOST, v);
                }
                Err(_) => return Answer::unknown_route(),
            }
            overridden = copy;
            &overridden
        }
    };
    let sig_req = sigv4::Request {
        method: orig.method,
        path: orig.path,
        query: orig.query,
        headers,
        body: b"",
    };
    let regions = api.region.as_deref().or(state.regions.as_deref());
    let authenticated = match auth::authenticate_scoped(
        state,
        &sig_req,
        &api.service,
        regions,
        Payload::Declared(&hashes[..n]),
    )
    .await
    {
        Ok(a) => a,
        Err(e) => return Answer::from_auth_error(&e),
    };
    let caller = authenticated.caller;
    let region = authenticated.region;
    if !state.key_limit.allow(caller.rate_limit_key()) {
        state.metrics.throttled();
        return Answer::throttled();
    }
    let method = orig.method.to_ascii_uppercase();
    let Some(action) = api.action(&method, rest) else {
        if auditing {
            trace.caller = Some(caller);
            trace.region = Some(region);
        }
        return Answer::unknown_route();
    };
    let resource = [
        "arn:aws:execute-api:",
        region.as_str(),
        ":",
        state.account.as_str(),
        ":",
        api.id.as_str(),
        "/",
        api.stage.as_str(),
        "/",
        method.as_str(),
        "/",
        rest,
    ]
    .concat();
    let who = Who::of(&caller, &state.account);
    let now = state.clock.now();
    let ua = req
        .headers
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    let ctx = context::build(
        Some(&caller),
        &who,
        &state.account,
        now,
        Some(client),
        ua,
        &region,
    );
    // The one authorization path: users, role sessions (role policies ∩ session policies) and scoped
    // sessions alike; only the root without session layers skips evaluation.
    let check = crate::authz::Check {
        action,
        resource: &resource,
        shown: Some(&resource),
    };
    let answer = match crate::authz::decision_for(state, &who, &ctx, check).await {
        Err(e) => Answer::from_auth_error(&e),
        Ok(None) => Answer::allow(state, &caller, now),
        Ok(Some(d)) => match d.decision {
            Decision::Allowed(_) => Answer::allow(state, &caller, now),
            Decision::ExplicitDeny(_) => Answer::denied(&who.arn, action, &resource, true),
            Decision::ImplicitDeny => Answer::denied(&who.arn, action, &resource, false),
        },
    };
    if auditing {
        trace.caller = Some(caller);
        trace.region = Some(region);
        trace.action = Some(action.to_owned());
        trace.resource = Some(resource);
    }
    answer
}

fn audit_record(
    state: &AppState,
    req: &Incoming<'_>,
    request_id: &str,
    trace: &Trace,
    answer: &Answer,
) -> Value {
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
    let event_name = trace
        .action
        .as_deref()
        .and_then(|a| a.split_once(':'))
        .map_or("Invoke", |(_, n)| n);
    // Only what the configuration and the verified request name; never the query string (presigned
    // URLs carry the signature and the session token there) nor any header value but the user agent.
    let request_parameters = trace.api.as_ref().map(|(id, stage)| {
        json!({
            "apiId": id,
            "stage": stage,
            "httpMethod": trace.method.as_deref().map(|m| crate::audit::clean(m, 16)),
            "resourcePath": trace.resource_path.as_deref().map(|p| crate::audit::clean(p, 512)),
        })
    });
    let mut record = json!({
        "eventVersion": "1.08",
        "eventTime": stsd_core::timefmt::iso8601(state.clock.now()),
        "eventSource": "execute-api.amazonaws.com",
        "eventName": event_name,
        "awsRegion": trace.region,
        "sourceIPAddress": trace.client.unwrap_or(req.peer).to_string(),
        "userAgent": user_agent,
        "userIdentity": identity,
        "requestParameters": if trace.caller.is_some() { request_parameters } else { None },
        "responseElements": Value::Null,
        "resources": trace.resource.as_ref().map(|r| json!([{"ARN": r, "type": "AWS::ApiGateway::Stage"}])),
        "requestID": request_id,
        "eventID": crate::handler::new_request_id(),
        "eventType": "AwsApiCall",
        "recipientAccountId": state.account,
    });
    if let Some(t) = answer.error_type {
        record["errorCode"] = json!(t);
        record["errorMessage"] = json!(crate::audit::clean(&answer.message, 1024));
    }
    record
}
