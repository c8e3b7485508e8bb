//! Fuzzing harness shared by the cargo-fuzz target (`fuzz/fuzz_targets/policy.rs`) and the stable
//! corpus replay test (`tests/it/corpus.rs`).

use crate::{
    Context, Layer, LayeredDecision, ParseOptions, Policy, PolicyKind, PolicyRef, PrincipalInfo,
    Request, SourceKind, Value, access_denied_message, evaluate, evaluate_layers, policy_size,
};

/// Parses `data` (as UTF-8, lossily) as a policy of every kind, with and without legacy versions,
/// and evaluates each accepted policy against a few fixed requests; must never panic.
pub fn policy_one(data: &[u8]) {
    let doc = String::from_utf8_lossy(data);
    let _ = policy_size(&doc);
    let mut ctx = Context::new();
    ctx.set("aws:username", Value::Str("alice".into()));
    ctx.set("aws:MultiFactorAuthPresent", Value::Bool(true));
    ctx.set("aws:MultiFactorAuthAge", Value::Num(30.0));
    ctx.set(
        "aws:SourceIp",
        Value::Ip(std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)),
    );
    ctx.set("aws:CurrentTime", Value::Date(1_780_000_000));
    ctx.set_list(
        "aws:TagKeys",
        vec![Value::Str("team".into()), Value::Binary(vec![0, 1])],
    );
    let empty = Context::new();
    for kind in [
        PolicyKind::Identity,
        PolicyKind::Trust,
        PolicyKind::Resource,
    ] {
        for allow_legacy_version in [false, true] {
            let Ok(p) = Policy::parse_with(
                &doc,
                kind,
                ParseOptions {
                    allow_legacy_version,
                },
            ) else {
                continue;
            };
            let _ = (
                p.condition_keys(),
                p.variable_keys(),
                p.statement_span(0),
                p.statement_span(usize::MAX),
            );
            let refs = [PolicyRef {
                policy: &p,
                id: "arn:aws:iam::123456789012:policy/F",
                kind: SourceKind::UserManaged,
            }];
            for (action, resource, c) in [
                (
                    "iam:CreateAccessKey",
                    "arn:aws:iam::123456789012:user/alice",
                    &ctx,
                ),
                ("sts:AssumeRole", "arn:aws:iam::123456789012:role/r", &empty),
                ("s3:GetObject", "*", &ctx),
            ] {
                let req = Request {
                    action,
                    resource,
                    principal: Some(PrincipalInfo {
                        arn: "arn:aws:iam::123456789012:user/alice",
                        account: "123456789012",
                    }),
                    context: c,
                };
                let d = evaluate(&refs, &req);
                let l = evaluate_layers(&refs, &[&refs], &req);
                let _ = access_denied_message(
                    "arn:aws:iam::123456789012:user/alice",
                    action,
                    Some(resource),
                    &l,
                );
                let _ = access_denied_message(
                    "x",
                    action,
                    None,
                    &LayeredDecision {
                        decision: d,
                        layer: Layer::Session,
                    },
                );
            }
        }
    }
}
