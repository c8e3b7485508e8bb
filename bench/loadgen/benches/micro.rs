//! Micro-benchmarks of stsd's pure hot paths (criterion): `cargo bench -p stsd-loadgen`.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use stsd_core::secret::Secret;
use stsd_core::token::{KeyRing, Principal, SessionClaims};
use stsd_core::totp;
use stsd_loadgen::request::{Creds, form_body, sign};
use stsd_proto::Params;
use stsd_proto::sts::{Credentials, StsAction, get_session_token_body};

const NOW: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

fn sigv4(c: &mut Criterion) {
    // A typical STS POST as boto3 sends it: GetSessionToken with a long-term key.
    let creds = Creds {
        access_key_id: "AKIAEXAMPLEKEYID0001".into(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
        session_token: None,
    };
    let body = form_body(&[("Action", "GetSessionToken"), ("Version", "2011-06-15")]);
    let signed = sign("127.0.0.1:8754", &creds, "sts", body, NOW).expect("signs");
    let req = signed.request();
    let sreq = stsd_sigv4::Request {
        method: "POST",
        path: "/",
        query: "",
        headers: req.headers(),
        body: signed.body(),
    };
    let secret = creds.secret_access_key.as_bytes();
    c.bench_function("sigv4 parse+verify (STS POST)", |b| {
        b.iter(|| {
            let auth = stsd_sigv4::parse(black_box(&sreq)).expect("parses");
            stsd_sigv4::verify(&sreq, &auth, black_box(secret)).expect("verifies");
        });
    });
    let auth = stsd_sigv4::parse(&sreq).expect("parses");
    c.bench_function("sigv4 verify only", |b| {
        b.iter(|| {
            stsd_sigv4::verify(black_box(&sreq), &auth, black_box(secret)).expect("verifies")
        });
    });
    // What the server does: the signing key comes from its cache after the first request of the day.
    let cache = stsd_sigv4::KeyCache::default();
    c.bench_function(
        "sigv4 parse+verify, cached signing key (server path)",
        |b| {
            b.iter(|| {
                let auth = stsd_sigv4::parse(black_box(&sreq)).expect("parses");
                stsd_sigv4::verify_cached(&sreq, &auth, black_box(secret), &cache)
                    .expect("verifies");
            });
        },
    );
}

fn claims() -> SessionClaims {
    SessionClaims {
        account_id: 123_456_789_012,
        principal: Principal::User {
            user_id: "AIDAEXAMPLEUSERID0000".into(),
            name: "bench-user".into(),
            path: "/".into(),
        },
        access_key_id: "ASIAEXAMPLEKEYID0001".into(),
        secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        source_access_key_id: "AKIAEXAMPLEKEYID0001".into(),
        issued_at: NOW,
        expires_at: NOW + 43_200,
        mfa: None,
        ext: Default::default(),
    }
}

fn token(c: &mut Criterion) {
    let mut ring = KeyRing::new();
    ring.insert(1, &[7u8; 32]).expect("key");
    ring.set_signing(1);
    let claims = claims();
    c.bench_function("token seal", |b| {
        b.iter(|| ring.seal(black_box(&claims), 0).expect("seals"));
    });
    let token = ring.seal(&claims, 0).expect("seals");
    c.bench_function("token open", |b| {
        b.iter(|| ring.open(black_box(&token)).expect("opens"));
    });
}

fn totp_check(c: &mut Criterion) {
    let secret = [0x5au8; 40]; // IAM virtual devices have 40-byte seeds
    let now_step = totp::step_at(NOW);
    // The worst accepted case of the default ±1 window: the code of now+1 (three HMACs).
    let code_next = totp::code(&secret, now_step + 1);
    let code_now = totp::code(&secret, now_step);
    c.bench_function("totp verify (current step)", |b| {
        b.iter(|| {
            totp::verify(
                black_box(&secret),
                black_box(&code_now),
                now_step,
                1,
                Some(now_step - 2),
            )
        });
    });
    c.bench_function("totp verify (next step, 3 candidates)", |b| {
        b.iter(|| {
            totp::verify(
                black_box(&secret),
                black_box(&code_next),
                now_step,
                1,
                Some(now_step - 2),
            )
        });
    });
}

fn query(c: &mut Criterion) {
    let body = b"Action=GetSessionToken&Version=2011-06-15&SerialNumber=arn%3Aaws%3Aiam%3A%3A123456789012%3Amfa%2Fbench-mfa-1&TokenCode=123456";
    c.bench_function("params parse + StsAction::parse (GST with MFA)", |b| {
        b.iter(|| {
            let p = Params::parse(black_box(body));
            StsAction::parse("GetSessionToken", &p).expect("valid")
        });
    });
    let plain = b"Action=GetCallerIdentity&Version=2011-06-15";
    c.bench_function("params parse + StsAction::parse (GCI)", |b| {
        b.iter(|| {
            let p = Params::parse(black_box(plain));
            StsAction::parse("GetCallerIdentity", &p).expect("valid")
        });
    });
}

fn xml(c: &mut Criterion) {
    let mut ring = KeyRing::new();
    ring.insert(1, &[7u8; 32]).expect("key");
    ring.set_signing(1);
    let token = ring.seal(&claims(), 0).expect("seals");
    let creds = Credentials {
        access_key_id: "ASIAEXAMPLEKEYID0001",
        secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        session_token: &token,
        expiration: "2026-01-01T12:00:00Z",
    };
    c.bench_function("xml get_session_token_body", |b| {
        b.iter(|| {
            get_session_token_body(black_box(&creds), "01234567-89ab-4cde-8f01-23456789abcd")
        });
    });
}

criterion_group!(benches, sigv4, token, totp_check, query, xml);
criterion_main!(benches);
