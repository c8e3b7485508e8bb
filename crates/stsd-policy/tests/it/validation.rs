//! Every validation message of reference §2, in moto's check order.

use stsd_policy::{ParseOptions, Policy, PolicyKind, Position, policy_size};

fn msg(doc: &str, kind: PolicyKind) -> String {
    match Policy::parse(doc, kind) {
        Ok(_) => "OK".into(),
        Err(e) => e.to_string(),
    }
}

fn id(doc: &str) -> String {
    msg(doc, PolicyKind::Identity)
}

/// An identity policy with one statement whose members are `body`.
fn stmt(body: &str) -> String {
    format!(r#"{{"Version":"2012-10-17","Statement":{{{body}}}}}"#)
}

const SYNTAX: &str = "Syntax errors in policy.";
const LEGACY: &str = "The policy failed legacy parsing";

#[test]
fn valid_documents() {
    assert_eq!(
        id(&stmt(
            r#""Effect":"Allow","Action":"iam:GetUser","Resource":"*""#
        )),
        "OK"
    );
    assert_eq!(
        id(
            r#"{"Version":"2012-10-17","Id":"x","Statement":[{"Sid":"A1","Effect":"Deny","NotAction":["s3:*"],"NotResource":["arn:aws:s3:::b/*"],"Condition":{"Bool":{"aws:SecureTransport":false},"NumericLessThan":{"aws:MultiFactorAuthAge":3600}}}]}"#
        ),
        "OK"
    );
    // Unknown operator with an empty block is accepted (and ignored).
    assert_eq!(
        id(&stmt(
            r#""Effect":"Allow","Action":"*","Resource":"*","Condition":{"Whatever":{}}"#
        )),
        "OK"
    );
    // Empty Sid, repeated: not a duplicate.
    assert_eq!(
        id(
            r#"{"Version":"2012-10-17","Statement":[{"Sid":"","Effect":"Allow","Action":"*","Resource":"*"},{"Sid":"","Effect":"Allow","Action":"*","Resource":"*"}]}"#
        ),
        "OK"
    );
}

#[test]
fn syntax_errors() {
    let cases = [
        "not json".to_owned(),
        "[]".to_owned(),
        r#"{"Version":"2012-10-17"}"#.to_owned(),
        r#"{"Version":"2012-10-17","Statement":[]}"#.to_owned(),
        r#"{"Version":"2012-10-17","Statement":["x"]}"#.to_owned(),
        r#"{"Version":"2012-10-17","Extra":1,"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#.to_owned(),
        r#"{"Version":"2013-01-01","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#.to_owned(),
        r#"{"Version":"2012-10-17","Id":5,"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#.to_owned(),
        stmt(r#""Effect":"Allow","Action":"*","Resource":"*","Foo":1"#),
        stmt(r#""Effect":"Maybe","Action":"*","Resource":"*""#),
        stmt(r#""Action":"*","Resource":"*""#),
        stmt(r#""Effect":"Allow","Action":"*","NotAction":"*","Resource":"*""#),
        stmt(r#""Effect":"Allow","Action":"*","Resource":"*","NotResource":"*""#),
        stmt(r#""Effect":"Allow","Action":5,"Resource":"*""#),
        stmt(r#""Effect":"Allow","Action":["a:b",1],"Resource":"*""#),
        stmt(r#""Effect":"Allow","Action":"*","Resource":"*","Condition":{"Bogus":{"a:b":"c"}}"#),
        stmt(r#""Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":"x"}"#),
        stmt(r#""Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"a:b":null}}"#),
        stmt(r#""Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"a:b":{"c":"d"}}}"#),
        stmt(r#""Effect":"Allow","Action":"*","Resource":"*","Sid":5"#),
        stmt(r#""Effect":"Allow","Action":"*","Resource":"*","Principal":"arn:aws:iam::1:root""#),
        stmt(r#""Effect":"Allow","Action":"*","Resource":"*","Principal":{"Users":"x"}"#),
        stmt(r#""Effect":"Allow","Action":"*","Resource":"*","Principal":"*","NotPrincipal":"*""#),
        // Duplicate key.
        stmt(r#""Effect":"Allow","Effect":"Deny","Action":"*","Resource":"*""#),
        // Character outside the model pattern.
        stmt("\"Effect\":\"Allow\",\"Action\":\"iam:\u{0100}\",\"Resource\":\"*\""),
        String::new(),
    ];
    for c in &cases {
        assert_eq!(id(c), SYNTAX, "{c}");
    }
    // Latin-1 characters are allowed.
    assert_ne!(
        id(&stmt(
            "\"Sid\":\"\u{e9}\",\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\""
        )),
        SYNTAX
    );
}

#[test]
fn version() {
    let v = "Policy document must be version 2012-10-17 or greater.";
    let body = r#""Statement":{"Effect":"Allow","Action":"*","Resource":"arn:aws:iam::*:user/${aws:username}"}"#;
    assert_eq!(id(&format!("{{{body}}}")), v);
    assert_eq!(id(&format!(r#"{{"Version":"2008-10-17",{body}}}"#)), v);
    let legacy = ParseOptions {
        allow_legacy_version: true,
    };
    assert!(Policy::parse_with(&format!("{{{body}}}"), PolicyKind::Identity, legacy).is_ok());
    assert!(
        Policy::parse_with(
            &format!(r#"{{"Version":"2008-10-17",{body}}}"#),
            PolicyKind::Identity,
            legacy
        )
        .is_ok()
    );
    // Syntax comes before the version check.
    assert_eq!(id(r#"{"Statement":[]}"#), SYNTAX);
}

#[test]
fn legacy_parsing() {
    assert_eq!(
        id(&stmt(r#""Effect":"allow","Action":"*","Resource":"*""#)),
        LEGACY
    );
    assert_eq!(
        id(&stmt(
            r#""Effect":"Allow","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:CurrentTime":"2014-13-01T00:00:00Z"}}"#
        )),
        LEGACY
    );
    assert_eq!(
        id(&stmt(
            r#""Effect":"Allow","Action":"*","Resource":"*","Condition":{"DateGreaterThanIfExists":{"aws:CurrentTime":["2014-01-01","nope"]}}"#
        )),
        LEGACY
    );
    assert_eq!(
        id(&stmt(
            r#""Effect":"Allow","Action":"*","Resource":"arn:aws:s3::bucket""#
        )),
        LEGACY
    );
    // Legacy comes before the version message? No: version first.
    assert_eq!(
        id(r#"{"Statement":{"Effect":"allow","Action":"*","Resource":"*"}}"#),
        "Policy document must be version 2012-10-17 or greater."
    );
}

#[test]
fn sids() {
    assert_eq!(
        id(
            r#"{"Version":"2012-10-17","Statement":[{"Sid":"A","Effect":"Allow","Action":"*","Resource":"*"},{"Sid":"A","Effect":"Deny","Action":"*","Resource":"*"}]}"#
        ),
        "Statement IDs (SID) in a single policy must be unique."
    );
    assert_eq!(
        id(&stmt(
            r#""Sid":"my-sid","Effect":"Allow","Action":"*","Resource":"*""#
        )),
        "Statement IDs (SID) must be alpha-numeric. Check that your input satisfies the regular expression [0-9A-Za-z]*"
    );
}

#[test]
fn actions_and_resources_present() {
    let a = "Policy statement must contain actions.";
    assert_eq!(id(&stmt(r#""Effect":"Allow","Resource":"*""#)), a);
    assert_eq!(
        id(&stmt(r#""Effect":"Allow","Action":[],"Resource":"*""#)),
        a
    );
    assert_eq!(
        id(&stmt(r#""Effect":"Allow","NotAction":[],"Resource":"*""#)),
        a
    );
    let r = "Policy statement must contain resources.";
    assert_eq!(id(&stmt(r#""Effect":"Allow","Action":"*""#)), r);
    assert_eq!(
        id(&stmt(r#""Effect":"Allow","Action":"*","Resource":[]"#)),
        r
    );
    assert_eq!(
        msg(
            &stmt(r#""Effect":"Allow","Action":"*","Principal":"*""#),
            PolicyKind::Resource
        ),
        r
    );
    // Actions are checked before resources.
    assert_eq!(id(&stmt(r#""Effect":"Allow""#)), a);
}

#[test]
fn resource_formats() {
    let r = |res: &str| {
        id(&stmt(&format!(
            r#""Effect":"Allow","Action":"*","Resource":"{res}""#
        )))
    };
    assert_eq!(r("foo"), "Resource foo must be in ARN format or \"*\".");
    assert_eq!(
        r("arn:b:c:d:e:f:g:h"),
        "Partition \"b\" is not valid for resource \"arn:b:c:d:e:f:g:h\"."
    );
    assert_eq!(
        r("arn:b"),
        "Partition \"b\" is not valid for resource \"arn:b:*:*:*:*\"."
    );
    assert_eq!(
        r("arn:b:c"),
        "Partition \"b\" is not valid for resource \"arn:b:c:*:*:*\"."
    );
    assert_eq!(
        r("arn:aws"),
        "Resource vendor must be fully qualified and cannot contain regexes."
    );
    assert_eq!(
        r("arn:aws:*:::x"),
        "Resource vendor must be fully qualified and cannot contain regexes."
    );
    assert_eq!(
        r("arn:aws:iam:us-east-1::user/x"),
        "IAM resource arn:aws:iam:us-east-1::user/x cannot contain region information."
    );
    assert_eq!(
        r("arn:aws:s3:us-east-1::b"),
        "Resource arn:aws:s3:us-east-1::b can not contain region information."
    );
    assert_eq!(
        r("arn:aws:iam::123456789012:widget/x"),
        "IAM resource path must either be \"*\" or start with user/, federated-user/, role/, group/, instance-profile/, mfa/, server-certificate/, policy/, sms-mfa/, saml-provider/, oidc-provider/, report/, access-report/."
    );
    assert_eq!(r("arn:aws:iam::123456789012:*"), "OK");
    assert_eq!(r("arn:aws-cn:ec2:cn-north-1:123456789012:instance/*"), "OK");
    // The resource-format error comes after "must contain actions".
    assert_eq!(
        id(&stmt(r#""Effect":"Allow","Resource":"foo""#)),
        "Policy statement must contain actions."
    );
}

#[test]
fn action_prefixes() {
    let a = |act: &str| {
        id(&stmt(&format!(
            r#""Effect":"Allow","Action":"{act}","Resource":"*""#
        )))
    };
    assert_eq!(
        a("GetUser"),
        "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."
    );
    assert_eq!(
        a(""),
        "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."
    );
    assert_eq!(
        a("iam:Get:User"),
        "Actions/Condition can contain only one colon."
    );
    assert_eq!(a("a a:List"), "Vendor a a is not valid");
    assert_eq!(a("*"), "OK");
    assert_eq!(a("*:*"), "OK");
    assert_eq!(a("iam:*"), "OK");
    // Resource-format errors come before action prefixes.
    assert_eq!(
        id(&stmt(
            r#""Effect":"Allow","Action":"GetUser","Resource":"foo""#
        )),
        "Resource foo must be in ARN format or \"*\"."
    );
}

#[test]
fn principals_by_kind() {
    let p = r#""Effect":"Allow","Action":"sts:AssumeRole","Principal":{"AWS":"arn:aws:iam::123456789012:root"}"#;
    assert_eq!(
        id(&stmt(&format!(r#"{p},"Resource":"*""#))),
        "Policy document should not specify a principal."
    );
    assert_eq!(
        id(&stmt(
            r#""Effect":"Allow","Action":"*","Resource":"*","NotPrincipal":{"AWS":"*"}"#
        )),
        "Policy document should not specify a principal."
    );
    let t = |body: &str| msg(&stmt(body), PolicyKind::Trust);
    assert_eq!(t(p), "OK");
    assert_eq!(
        t(&format!(r#"{p},"Resource":"*""#)),
        "Has prohibited field Resource."
    );
    assert_eq!(
        t(r#""Effect":"Allow","Action":"iam:GetUser","Principal":{"AWS":"*"}"#),
        "Trust Policy statement actions can only be sts:AssumeRole, sts:AssumeRoleWithSAML,  and sts:AssumeRoleWithWebIdentity"
    );
    assert_eq!(
        t(
            r#""Effect":"Allow","Action":["sts:assumerole","sts:TagSession","sts:AssumeRoleWithWebIdentity"],"Principal":{"Federated":"x"}"#
        ),
        "OK"
    );
    assert_eq!(
        t(r#""Effect":"Allow","Action":"sts:AssumeRole""#),
        "Missing required field Principal."
    );
    assert_eq!(
        t(r#""Effect":"Allow","Action":"sts:AssumeRole","NotPrincipal":{"AWS":"*"}"#),
        "Has prohibited field NotPrincipal."
    );
    assert_eq!(
        msg(
            &stmt(r#""Effect":"Allow","Action":"s3:GetObject","Resource":"*""#),
            PolicyKind::Resource
        ),
        "Missing required field Principal."
    );
}

#[test]
fn bad_condition_values_name_the_problem() {
    let m = id(&stmt(
        r#""Sid":"S","Effect":"Allow","Action":"*","Resource":"*","Condition":{"NumericLessThan":{"aws:MultiFactorAuthAge":"soon"}}"#,
    ));
    assert_eq!(
        m,
        "Invalid numeric value \"soon\" for condition operator NumericLessThan and key aws:MultiFactorAuthAge in statement 1 (Sid S)."
    );
    assert!(
        id(&stmt(r#""Effect":"Allow","Action":"*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/40"}}"#))
            .starts_with("Invalid IP address value \"10.0.0.0/40\"")
    );
    assert!(
        id(&stmt(r#""Effect":"Allow","Action":"*","Resource":"*","Condition":{"BinaryEquals":{"k:b":"!!"}}"#))
            .starts_with("Invalid base64 value")
    );
}

#[test]
fn spans_keys_and_size() {
    let doc = "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n    {\"Effect\": \"Allow\", \"Action\": \"*\", \"Resource\": \"*\",\n     \"Condition\": {\"StringEquals\": {\"aws:UserName\": \"a\"}, \"Bool\": {\"AWS:username\": \"true\", \"aws:SecureTransport\": \"true\"}}},\n    {\"Effect\": \"Deny\", \"Action\": \"*\", \"Resource\": \"*\"}\n  ]\n}";
    let p = Policy::parse(doc, PolicyKind::Identity).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.statement_count(), 2);
    assert_eq!(
        p.statement_span(0),
        (
            Position { line: 4, column: 5 },
            Position {
                line: 5,
                column: 124
            }
        )
    );
    assert_eq!(
        p.statement_span(1),
        (
            Position { line: 6, column: 5 },
            Position {
                line: 6,
                column: 55
            }
        )
    );
    assert_eq!(
        p.condition_keys(),
        vec!["aws:UserName".to_owned(), "aws:SecureTransport".to_owned()]
    );
    assert_eq!(policy_size("{ \"a\" :\n\t\"b c\" }"), 10);
}

#[test]
fn variable_keys_and_kind() {
    let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":["arn:aws:s3:::h/${aws:username}/*","arn:aws:s3:::t/${aws:PrincipalTag/team, 'x'}"],"Condition":{"StringLike":{"s3:prefix":"${AWS:Username}/*"},"ArnEquals":{"aws:SourceArn":"arn:aws:iam::${aws:PrincipalAccount}:role/r"}}}]}"#;
    let p = Policy::parse(doc, PolicyKind::Identity).unwrap();
    assert_eq!(p.kind(), PolicyKind::Identity);
    assert_eq!(
        p.variable_keys(),
        vec![
            "aws:username".to_owned(),
            "aws:PrincipalTag/team".to_owned(),
            "aws:PrincipalAccount".to_owned()
        ]
    );
    assert_eq!(
        p.condition_keys(),
        vec!["s3:prefix".to_owned(), "aws:SourceArn".to_owned()]
    );
}

#[test]
fn aws_principal_shapes() {
    let t = |aws: &str| {
        msg(
            &stmt(&format!(
                r#""Effect":"Allow","Action":"sts:AssumeRole","Principal":{{"AWS":{aws}}}"#
            )),
            PolicyKind::Trust,
        )
    };
    for ok in [
        r#""*""#,
        r#""123456789012""#,
        r#""arn:aws:iam::123456789012:root""#,
        r#"["arn:aws:iam::123456789012:user/a/b","arn:aws:iam::123456789012:role/r"]"#,
        r#""arn:aws:sts::123456789012:assumed-role/r/s""#,
        r#""AIDAEXAMPLEEXAMPLE1""#,
    ] {
        assert_eq!(t(ok), "OK", "{ok}");
    }
    for (bad, shown) in [
        (r#""arn:aws:iam::*:root""#, "arn:aws:iam::*:root"),
        (r#"["arn:aws:iam::123456789012:root","bob"]"#, "bob"),
        (
            r#""arn:aws:iam::12345:user/x""#,
            "arn:aws:iam::12345:user/x",
        ),
        (
            r#""arn:aws:iam::123456789012:user/a*""#,
            "arn:aws:iam::123456789012:user/a*",
        ),
        (
            r#""arn:aws:iam::123456789012:group/g""#,
            "arn:aws:iam::123456789012:group/g",
        ),
    ] {
        assert_eq!(
            t(bad),
            format!("Invalid principal in policy: \"AWS\":\"{shown}\""),
            "{bad}"
        );
    }
    assert_eq!(
        stsd_policy::invalid_principal_message("arn:aws:iam::111111111111:role/NonExistent"),
        "Invalid principal in policy: \"AWS\":\"arn:aws:iam::111111111111:role/NonExistent\""
    );
    let p = Policy::parse(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Principal":{"AWS":["123456789012","arn:aws:iam::123456789012:user/a"]}},{"Effect":"Deny","Action":"sts:AssumeRole","Principal":{"AWS":"arn:aws:iam::123456789012:user/a","Service":"ec2.amazonaws.com"}}]}"#,
        PolicyKind::Trust,
    )
    .unwrap();
    assert_eq!(
        p.aws_principals(),
        vec![
            "arn:aws:iam::123456789012:root",
            "arn:aws:iam::123456789012:user/a"
        ]
    );
}
