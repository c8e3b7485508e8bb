//! Evaluation cost of AWS's "manage your own credentials with MFA" policy (reference §8.1).
//! Budget: ≤ 1 µs per typical request.
//!
//! `cargo bench -p stsd-policy --bench policy`

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use stsd_policy::{
    Context, Policy, PolicyKind, PolicyRef, Request, SourceKind, Value, decide, evaluate,
};

const MFA_POLICY: &str = include_str!("../tests/fixtures/mfa-self-manage.json");

fn bench(c: &mut Criterion) {
    let policy = Policy::parse(MFA_POLICY, PolicyKind::Identity).expect("fixture parses");
    let refs = [PolicyRef {
        policy: &policy,
        id: "arn:aws:iam::123456789012:policy/SelfManage",
        kind: SourceKind::UserManaged,
    }];
    let mut mfa = Context::new();
    mfa.set("aws:username", Value::Str("alice".into()));
    mfa.set("aws:userid", Value::Str("AIDAEXAMPLEALICE".into()));
    mfa.set("aws:PrincipalType", Value::Str("User".into()));
    mfa.set("aws:SourceIp", Value::Ip("203.0.113.7".parse().unwrap()));
    mfa.set("aws:SecureTransport", Value::Bool(true));
    mfa.set("aws:CurrentTime", Value::Date(1_780_000_000));
    mfa.set("aws:MultiFactorAuthPresent", Value::Bool(true));
    mfa.set("aws:MultiFactorAuthAge", Value::Num(120.0));
    let mut long_term = mfa.clone();
    long_term.remove("aws:MultiFactorAuthPresent");
    long_term.remove("aws:MultiFactorAuthAge");
    let alice = "arn:aws:iam::123456789012:user/alice";

    c.bench_function("parse §8.1", |b| {
        b.iter(|| Policy::parse(black_box(MFA_POLICY), PolicyKind::Identity))
    });
    c.bench_function("evaluate §8.1 CreateAccessKey with MFA (allowed)", |b| {
        let req = Request {
            action: "iam:CreateAccessKey",
            resource: alice,
            principal: None,
            context: &mfa,
        };
        b.iter(|| evaluate(black_box(&refs), black_box(&req)));
    });
    c.bench_function(
        "evaluate §8.1 CreateAccessKey long-term key (explicit deny)",
        |b| {
            let req = Request {
                action: "iam:CreateAccessKey",
                resource: alice,
                principal: None,
                context: &long_term,
            };
            b.iter(|| evaluate(black_box(&refs), black_box(&req)));
        },
    );
    c.bench_function(
        "decide §8.1 CreateAccessKey with MFA (allowed, no details)",
        |b| {
            let req = Request {
                action: "iam:CreateAccessKey",
                resource: alice,
                principal: None,
                context: &mfa,
            };
            b.iter(|| decide(black_box(&refs), black_box(&req)));
        },
    );
    c.bench_function(
        "evaluate §8.1 CreateUser bob with MFA (implicit deny)",
        |b| {
            let req = Request {
                action: "iam:CreateUser",
                resource: "arn:aws:iam::123456789012:user/bob",
                principal: None,
                context: &mfa,
            };
            b.iter(|| evaluate(black_box(&refs), black_box(&req)));
        },
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
