//! JSON answers on the STS query API (`Accept: application/json`, aws-iam-authenticator) and the
//! Vault/Consul pattern (a GetCallerIdentity signed for `sts.amazonaws.com`, forwarded with that Host,
//! with extra signed headers).

use crate::harness::Server;
use crate::raw;
use crate::sign::{FORM, SignCfg, signed_api_request};

const GCI: &str = "Action=GetCallerIdentity&Version=2011-06-15";

fn sts_cfg() -> SignCfg {
    SignCfg {
        content_type: None,
        ..SignCfg::default()
    }
}

#[test]
fn aws_iam_authenticator_presigned_get_caller_identity_answers_json() {
    let server = Server::start();
    let account = &server.account;
    // The token's URL: presigned for the public STS host, x-k8s-aws-id signed.
    let mut p = signed_api_request(
        server.addr,
        &server.root,
        "GET",
        "sts.amazonaws.com",
        &format!("/?{GCI}"),
        &[("x-k8s-aws-id", "my-cluster")],
        b"",
        &sts_cfg(),
        true,
    );
    assert!(p.target.contains("x-k8s-aws-id"), "{}", p.target);
    p.headers.push(("accept".into(), "application/json".into()));
    let r = p.send();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let result = &v["GetCallerIdentityResponse"]["GetCallerIdentityResult"];
    assert_eq!(result["Account"], account.as_str());
    assert_eq!(result["Arn"], format!("arn:aws:iam::{account}:root"));
    assert_eq!(result["UserId"], account.as_str());
    assert!(
        v["GetCallerIdentityResponse"]["ResponseMetadata"]["RequestId"]
            .as_str()
            .is_some_and(|s| s.len() == 36)
    );
    // Errors too.
    let r = raw::send(
        server.addr,
        "GET",
        &format!("/?{GCI}"),
        &[("accept".into(), "application/json".into())],
        b"",
    );
    assert_eq!(r.status, 403);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(
        v["ErrorResponse"]["Error"]["Code"],
        "MissingAuthenticationToken"
    );
    // GetSessionToken in JSON.
    let mut p = signed_api_request(
        server.addr,
        &server.root,
        "POST",
        &server.addr.to_string(),
        "/",
        &[("content-type", FORM)],
        b"Action=GetSessionToken&Version=2011-06-15&DurationSeconds=900",
        &sts_cfg(),
        false,
    );
    p.headers.push(("Accept".into(), "application/json".into()));
    let r = p.send();
    assert_eq!(r.status, 200, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let c = &v["GetSessionTokenResponse"]["GetSessionTokenResult"]["Credentials"];
    assert!(c["AccessKeyId"].as_str().unwrap().starts_with("ASIA"));
    assert!(c["SessionToken"].as_str().is_some());
    // Without the Accept header: XML as before.
    let p = signed_api_request(
        server.addr,
        &server.root,
        "GET",
        "sts.amazonaws.com",
        &format!("/?{GCI}"),
        &[],
        b"",
        &sts_cfg(),
        true,
    );
    let r = p.send();
    assert_eq!(r.status, 200);
    assert!(r.body.starts_with("<GetCallerIdentityResponse"));
}

#[test]
fn vault_forwarded_get_caller_identity_verifies_with_its_host_and_extra_signed_headers() {
    let server = Server::start();
    let p = signed_api_request(
        server.addr,
        &server.root,
        "POST",
        "sts.amazonaws.com",
        "/",
        &[
            (
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            ),
            ("x-vault-aws-iam-server-id", "vault.example.com"),
        ],
        GCI.as_bytes(),
        &sts_cfg(),
        false,
    );
    assert!(
        p.header("authorization")
            .contains("x-vault-aws-iam-server-id")
    );
    assert_eq!(p.header("host"), "sts.amazonaws.com");
    let r = p.send();
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body
            .contains(&format!("<Arn>arn:aws:iam::{}:root</Arn>", server.account))
    );
    // The server id header is signed: changing it breaks the signature.
    let mut changed = p.clone();
    changed.set_header("x-vault-aws-iam-server-id", "other.example.com");
    assert_eq!(changed.send().status, 403);
}
