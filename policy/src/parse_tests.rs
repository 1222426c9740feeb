//! Parser tests: what is accepted, and every refusal with its message.

use super::*;
use crate::Policy;

fn bucket() -> PolicyKind {
    PolicyKind::Bucket {
        bucket: "examplebucket".into(),
    }
}

/// The error message for `doc` parsed as a bucket policy.
fn err(doc: &str) -> String {
    err_as(doc, bucket())
}

fn err_as(doc: &str, kind: PolicyKind) -> String {
    match Policy::parse(doc.as_bytes(), kind) {
        Ok(_) => panic!("accepted: {doc}"),
        Err(PolicyError::Malformed(m)) => m,
        Err(e) => panic!("{e:?} for {doc}"),
    }
}

fn ok(doc: &str) -> Policy {
    Policy::parse(doc.as_bytes(), bucket()).unwrap_or_else(|e| panic!("{e}: {doc}"))
}

/// A one-statement bucket policy with `body` as the statement's fields.
fn stmt(body: &str) -> String {
    format!(r#"{{"Version":"2012-10-17","Statement":[{{{body}}}]}}"#)
}

const BASE: &str = r#""Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::examplebucket/*""#;

#[test]
fn accepts_the_usual_shapes() {
    let p = ok(&stmt(BASE));
    assert_eq!(p.version(), Some("2012-10-17"));
    assert_eq!(p.id(), None);
    // Statement as a single object, no Version, Id, Sid, lists everywhere.
    let p = ok(r#"{"Id":"P1","Statement":{"Sid":"S1","Effect":"Deny",
        "Principal":{"AWS":["arn:aws:iam::111122223333:root","111122223333"],"CanonicalUser":"79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"},
        "NotAction":["s3:Get*","s3:List?ucket"],"NotResource":["arn:aws:s3:::examplebucket","arn:aws:s3:::examplebucket/private/*"],
        "Condition":{"Bool":{"aws:SecureTransport":false},"NumericLessThan":{"s3:max-keys":10}}}}"#);
    assert_eq!(p.id(), Some("P1"));
    assert_eq!(p.version(), None);
    assert_eq!(p.sids().collect::<Vec<_>>(), [Some("S1")]);
    assert_eq!(
        p.resources().collect::<Vec<_>>(),
        [
            "arn:aws:s3:::examplebucket",
            "arn:aws:s3:::examplebucket/private/*"
        ]
    );
    assert_eq!(
        p.actions().collect::<Vec<_>>(),
        ["s3:Get*", "s3:List?ucket"]
    );
    ok(
        r#"{"Version":"2008-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"*","Resource":"*"}]}"#,
    );
    ok(&stmt(
        r#""Effect":"Allow","Principal":{"Service":"logging.s3.amazonaws.com"},"Action":"s3:PutObject","Resource":"arn:aws:s3:::examplebucket/logs/*""#,
    ));
    ok(&stmt(
        r#""Effect":"Allow","Principal":{"Federated":"cognito-identity.amazonaws.com"},"Action":"s3:*","Resource":"arn:aws:s3:::examplebucket""#,
    ));
    // Action names are case-insensitive.
    ok(&stmt(
        r#""Effect":"Allow","Principal":"*","Action":"S3:getobject","Resource":"arn:aws:s3:::examplebucket/*""#,
    ));
    // An empty Condition is accepted and holds.
    ok(&stmt(&format!(r#"{BASE},"Condition":{{}}"#)));
}

#[test]
fn document_level_refusals() {
    assert!(err("").starts_with("This policy contains invalid Json: "));
    assert!(err("{").starts_with("This policy contains invalid Json: "));
    assert!(err(r#"{"Statement":[]} x"#).starts_with("This policy contains invalid Json: "));
    assert!(err("\u{0}\u{ff}").starts_with("This policy contains invalid Json: "));
    assert_eq!(err("[]"), "Policy must be a JSON object");
    assert_eq!(err("\"x\""), "Policy must be a JSON object");
    assert_eq!(err("{}"), "Policy has no Statement");
    assert_eq!(
        err(r#"{"Version":"2012-10-17"}"#),
        "Policy has no Statement"
    );
    assert_eq!(
        err(r#"{"Statement":[],"Version":"2012-10-17"}"#),
        "Statement: must not be empty"
    );
    assert_eq!(
        err(r#"{"Statement":"x"}"#),
        "Statement: must be an object or an array"
    );
    assert_eq!(
        err(r#"{"Statement":["x"]}"#),
        "Statement[0]: must be an object"
    );
    assert_eq!(
        err(&format!(
            r#"{{"Statement":[{{{BASE}}}],"Version":"2012-10-18"}}"#
        )),
        r#"Version: must be "2012-10-17" or "2008-10-17", got "2012-10-18""#
    );
    assert_eq!(
        err(&format!(r#"{{"Statement":[{{{BASE}}}],"Version":2012}}"#)),
        r#"Version: must be "2012-10-17" or "2008-10-17", got 2012"#
    );
    assert_eq!(
        err(&format!(r#"{{"Statement":[{{{BASE}}}],"Id":1}}"#)),
        "Id: must be a string"
    );
    assert_eq!(
        err(&format!(r#"{{"Statement":[{{{BASE}}}],"statement":[]}}"#)),
        "Policy has an unknown field 'statement'"
    );
}

#[test]
fn statement_level_refusals() {
    let cases: &[(&str, &str)] = &[
        (
            r#""Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"*","Foo":1"#,
            "Statement[0]: unknown field 'Foo'",
        ),
        (
            r#""Sid":1,"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"*""#,
            "Statement[0]: Sid: must be a string",
        ),
        (
            r#""Effect":"allow","Principal":"*","Action":"s3:GetObject","Resource":"*""#,
            r#"Statement[0]: Effect: must be "Allow" or "Deny", got "allow""#,
        ),
        (
            r#""Principal":"*","Action":"s3:GetObject","Resource":"*""#,
            "Statement[0]: missing Effect",
        ),
        (
            r#""Effect":"Allow","Action":"s3:GetObject","Resource":"*""#,
            "Statement[0]: missing Principal",
        ),
        (
            r#""Effect":"Allow","Principal":"*","NotPrincipal":"*","Action":"s3:GetObject","Resource":"*""#,
            "Statement[0]: has both Principal and NotPrincipal",
        ),
        (
            r#""Effect":"Allow","Principal":"*","Resource":"*""#,
            "Statement[0]: missing Action",
        ),
        (
            r#""Effect":"Allow","Principal":"*","Action":"s3:GetObject","NotAction":"s3:PutObject","Resource":"*""#,
            "Statement[0]: has both Action and NotAction",
        ),
        (
            r#""Effect":"Allow","Principal":"*","Action":"s3:GetObject""#,
            "Statement[0]: missing Resource",
        ),
        (
            r#""Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"*","NotResource":"*""#,
            "Statement[0]: has both Resource and NotResource",
        ),
    ];
    for (body, want) in cases {
        assert_eq!(err(&stmt(body)), *want, "{body}");
    }
    // The index is the statement's place in the array.
    let two = format!(
        r#"{{"Statement":[{{{BASE}}},{{"Effect":"Allow","Principal":"*","Action":"s3:Foo","Resource":"*"}}]}}"#
    );
    assert_eq!(err(&two), "Statement[1]: Action: unknown action 's3:Foo'");
}

#[test]
fn principal_refusals() {
    let with = |p: &str| {
        err(&stmt(&format!(
            r#""Effect":"Allow","Principal":{p},"Action":"s3:GetObject","Resource":"*""#
        )))
    };
    assert_eq!(
        with(r#""someone""#),
        r#"Statement[0]: Principal: must be "*" or an object such as {"AWS": ...}, got "someone""#
    );
    assert_eq!(
        with("{}"),
        r#"Statement[0]: Principal: must be "*" or an object such as {"AWS": ...}, got {}"#
    );
    assert_eq!(
        with("[]"),
        r#"Statement[0]: Principal: must be "*" or an object such as {"AWS": ...}, got []"#
    );
    assert_eq!(
        with(r#"{"IAM":"x"}"#),
        "Statement[0]: Principal: unknown principal type 'IAM'"
    );
    assert_eq!(
        with(r#"{"AWS":[]}"#),
        "Statement[0]: Principal: AWS: must not be an empty list"
    );
    assert_eq!(
        with(r#"{"AWS":[1]}"#),
        "Statement[0]: Principal: AWS: expected a string, got 1"
    );
    assert_eq!(
        with(r#"{"AWS":""}"#),
        r#"Statement[0]: Principal: AWS: invalid principal """#
    );
    assert_eq!(
        with(r#"{"AWS":{"x":1}}"#),
        r#"Statement[0]: Principal: AWS: expected a string or a list of strings, got {"x":1}"#
    );
    let not = err(&stmt(
        r#""Effect":"Deny","NotPrincipal":"x","Action":"s3:GetObject","Resource":"*""#,
    ));
    assert!(
        not.starts_with("Statement[0]: NotPrincipal: must be"),
        "{not}"
    );
    // "Everyone but" may be denied, never allowed.
    assert_eq!(
        err(&stmt(
            r#""Effect":"Allow","NotPrincipal":{"AWS":"x"},"Action":"s3:GetObject","Resource":"*""#
        )),
        r#"Statement[0]: NotPrincipal: only with "Effect": "Deny""#
    );
    // Identity policies name no principal.
    let identity = |body: &str| err_as(&stmt(body), PolicyKind::Identity);
    assert_eq!(
        identity(r#""Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"*""#),
        "Statement[0]: Principal: not allowed in an identity policy"
    );
    assert_eq!(
        identity(r#""Effect":"Deny","NotPrincipal":"*","Action":"s3:GetObject","Resource":"*""#),
        "Statement[0]: NotPrincipal: not allowed in an identity policy"
    );
    assert_eq!(
        identity(r#""Effect":"Allow","Action":"s3:GetObject""#),
        "Statement[0]: missing Resource"
    );
}

#[test]
fn action_refusals() {
    let with = |a: &str| {
        err(&stmt(&format!(
            r#""Effect":"Allow","Principal":"*","Action":{a},"Resource":"*""#
        )))
    };
    assert_eq!(
        with(r#""s3:Foo""#),
        "Statement[0]: Action: unknown action 's3:Foo'"
    );
    assert_eq!(
        with(r#""iam:GetUser""#),
        "Statement[0]: Action: invalid action 'iam:GetUser': the service must be s3"
    );
    assert_eq!(
        with(r#""s*:GetObject""#),
        "Statement[0]: Action: invalid action 's*:GetObject': the service must be s3"
    );
    assert_eq!(
        with(r#""GetObject""#),
        "Statement[0]: Action: invalid action 'GetObject'"
    );
    assert_eq!(
        with(r#""s3:""#),
        "Statement[0]: Action: invalid action 's3:'"
    );
    assert_eq!(with(r#""""#), "Statement[0]: Action: invalid action ''");
    assert_eq!(
        with(r#""s3:Get Object""#),
        "Statement[0]: Action: invalid action 's3:Get Object'"
    );
    assert_eq!(
        with("[]"),
        "Statement[0]: Action: must not be an empty list"
    );
    assert_eq!(
        with(r#"["s3:GetObject",null]"#),
        "Statement[0]: Action: expected a string, got null"
    );
    assert_eq!(
        with("7"),
        "Statement[0]: Action: expected a string or a list of strings, got 7"
    );
    let not = err(&stmt(
        r#""Effect":"Allow","Principal":"*","NotAction":"s3:Nope","Resource":"*""#,
    ));
    assert_eq!(not, "Statement[0]: NotAction: unknown action 's3:Nope'");
}

#[test]
fn resource_refusals() {
    let with = |r: &str| {
        err(&stmt(&format!(
            r#""Effect":"Allow","Principal":"*","Action":"s3:*","Resource":{r}"#
        )))
    };
    for bad in [
        "arn:aws:s3:::otherbucket/*",
        "arn:aws:s3:::otherbucket",
        "arn:aws:s3:::examplebucketx/*",
        "arn:aws:s3:::example",
        "arn:aws:s3:::",
        "arn:aws-cn:s3:::examplebucket/*",
        "arn:aws:sqs:::examplebucket",
        "arn:aws:s3:us-east-1:111122223333:accesspoint/ap",
        "examplebucket/*",
        "",
        "**",
    ] {
        assert_eq!(
            with(&format!("\"{bad}\"")),
            format!("Statement[0]: Resource: '{bad}': Policy has invalid resource")
        );
    }
    assert_eq!(
        with(r#"["arn:aws:s3:::examplebucket", "arn:aws:s3:::other"]"#),
        "Statement[0]: Resource: 'arn:aws:s3:::other': Policy has invalid resource"
    );
    let not = err(&stmt(
        r#""Effect":"Deny","Principal":"*","Action":"s3:*","NotResource":"arn:aws:s3:::other/*""#,
    ));
    assert_eq!(
        not,
        "Statement[0]: NotResource: 'arn:aws:s3:::other/*': Policy has invalid resource"
    );
    // Patterns that can address the bucket are fine; identity policies may name any
    // bucket.
    for good in [
        "*",
        "arn:aws:s3:::*",
        "arn:aws:s3:::example*",
        "arn:aws:s3:::examplebucke?/*",
        "arn:aws:s3:::*/public/*",
        "arn:aws:s3:::examplebucket/${aws:username}/*",
    ] {
        ok(&stmt(&format!(
            r#""Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"{good}""#
        )));
    }
    let p = Policy::parse(
        stmt(r#""Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::other/*""#).as_bytes(),
        PolicyKind::Identity,
    );
    assert!(p.is_ok());
    assert_eq!(
        err_as(
            &stmt(r#""Effect":"Allow","Action":"s3:*","Resource":"arn:aws:iam::1:user/x""#),
            PolicyKind::Identity
        ),
        "Statement[0]: Resource: 'arn:aws:iam::1:user/x': Policy has invalid resource"
    );
}

#[test]
fn condition_refusals() {
    let with = |c: &str| err(&stmt(&format!(r#"{BASE},"Condition":{c}"#)));
    let cases: &[(&str, &str)] = &[
        ("[]", "Condition: must be an object"),
        (
            r#"{"StringEqual":{"k":"v"}}"#,
            "Condition: unknown condition operator 'StringEqual'",
        ),
        (
            r#"{"stringequals":{"k":"v"}}"#,
            "Condition: unknown condition operator 'stringequals'",
        ),
        (
            r#"{"NullIfExists":{"k":"true"}}"#,
            "Condition: unknown condition operator 'NullIfExists'",
        ),
        (
            r#"{"ForAnyValue:Null":{"k":"true"}}"#,
            "Condition: unknown condition operator 'ForAnyValue:Null'",
        ),
        (
            r#"{"ForSomeValues:StringEquals":{"k":"v"}}"#,
            "Condition: unknown condition operator 'ForSomeValues:StringEquals'",
        ),
        (
            r#"{"StringEquals":"v"}"#,
            "Condition: StringEquals: must be an object of keys",
        ),
        (
            r#"{"StringEquals":{"":"v"}}"#,
            "Condition: StringEquals: empty condition key",
        ),
        (
            r#"{"StringEquals":{"k":[]}}"#,
            "Condition: StringEquals: 'k': empty list of values",
        ),
        (
            r#"{"StringEquals":{"k":null}}"#,
            "Condition: StringEquals: 'k': null is not a condition value",
        ),
        (
            r#"{"StringEquals":{"k":[["v"]]}}"#,
            "Condition: StringEquals: 'k': nested values are not allowed",
        ),
        (
            r#"{"StringEquals":{"k":{"a":"b"}}}"#,
            "Condition: StringEquals: 'k': nested values are not allowed",
        ),
        (
            r#"{"NumericLessThan":{"s3:max-keys":"ten"}}"#,
            "Condition: NumericLessThan: 's3:max-keys': 'ten' is not a number",
        ),
        (
            r#"{"NumericEqualsIfExists":{"n":["1","1e3"]}}"#,
            "Condition: NumericEqualsIfExists: 'n': '1e3' is not a number",
        ),
        (
            r#"{"DateGreaterThan":{"aws:CurrentTime":"tomorrow"}}"#,
            "Condition: DateGreaterThan: 'aws:CurrentTime': 'tomorrow' is not a date",
        ),
        (
            r#"{"Bool":{"aws:SecureTransport":"yes"}}"#,
            "Condition: Bool: 'aws:SecureTransport': 'yes' is not a boolean",
        ),
        (
            r#"{"Null":{"k":1}}"#,
            "Condition: Null: 'k': '1' is not a boolean",
        ),
        (
            r#"{"IpAddress":{"aws:SourceIp":"10.0.0.0/33"}}"#,
            "Condition: IpAddress: 'aws:SourceIp': '10.0.0.0/33' is not an IP address or CIDR block",
        ),
        (
            r#"{"NotIpAddress":{"aws:SourceIp":"example.com"}}"#,
            "Condition: NotIpAddress: 'aws:SourceIp': 'example.com' is not an IP address or CIDR block",
        ),
        (
            r#"{"ArnLike":{"aws:SourceArn":"arn:aws:s3"}}"#,
            "Condition: ArnLike: 'aws:SourceArn': 'arn:aws:s3' is not an ARN",
        ),
    ];
    for (c, want) in cases {
        assert_eq!(with(c), format!("Statement[0]: {want}"), "{c}");
    }
}

#[test]
fn size_and_nesting_limits() {
    // Exactly at the limit parses (as far as size goes); one byte more is TooLarge.
    let body = stmt(BASE);
    let pad = MAX_POLICY_LEN - body.len();
    let at_limit = format!("{body}{}", " ".repeat(pad));
    assert_eq!(at_limit.len(), MAX_POLICY_LEN);
    assert!(Policy::parse(at_limit.as_bytes(), bucket()).is_ok());
    let over = format!("{at_limit} ");
    assert_eq!(
        Policy::parse(over.as_bytes(), bucket()).unwrap_err(),
        PolicyError::TooLarge
    );
    // Deep nesting is refused without blowing the stack.
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(err(&deep).starts_with("This policy contains invalid Json: "));
    let deep_obj = "{\"a\":".repeat(3000) + "1" + &"}".repeat(3000);
    assert!(err(&deep_obj).starts_with("This policy contains invalid Json: "));
    // A condition nested too deep for the grammar.
    let nested = format!(
        r#"{BASE},"Condition":{{"StringEquals":{{"k":{}1{}}}}}"#,
        "[".repeat(100),
        "]".repeat(100)
    );
    assert_eq!(
        err(&stmt(&nested)),
        "Statement[0]: Condition: StringEquals: 'k': nested values are not allowed"
    );
    // Many statements and many values within the limit are fine.
    let many: Vec<String> = (0..150).map(|_| format!("{{{BASE}}}")).collect();
    let doc = format!(r#"{{"Statement":[{}]}}"#, many.join(","));
    assert!(doc.len() < MAX_POLICY_LEN);
    assert_eq!(ok(&doc).sids().count(), 150);
}

#[test]
fn long_error_values_are_cut() {
    let long = "x".repeat(500);
    let msg = err(&stmt(&format!(
        r#""Effect":"{long}","Principal":"*","Action":"s3:GetObject","Resource":"*""#
    )));
    assert!(msg.len() < 120, "{msg}");
    assert!(msg.ends_with("..."), "{msg}");
}

#[test]
fn long_echoed_text_is_cut() {
    let long = "a".repeat(5000);
    let msgs = [
        err(&format!(r#"{{"{long}":1}}"#)),
        err(&stmt(&format!(r#"{BASE},"{long}":1"#))),
        err(&stmt(&format!(
            r#""Effect":"Allow","Principal":"*","Action":"s3:{long}","Resource":"*""#
        ))),
        err(&stmt(&format!(
            r#""Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::{long}""#
        ))),
        err(&stmt(&format!(
            r#"{BASE},"Condition":{{"NumericEquals":{{"{long}":"{long}"}}}}"#
        ))),
        err(&stmt(&format!(r#"{BASE},"Condition":{{"{long}":{{}}}}"#))),
    ];
    for m in msgs {
        assert!(m.len() < 250, "{} bytes: {}...", m.len(), &m[..100]);
        assert!(m.contains("..."), "{m}");
    }
}

#[test]
fn duplicate_keys_are_malformed() {
    let m = err(
        r#"{"Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"*","Effect":"Allow"}]}"#,
    );
    assert!(
        m.starts_with("This policy contains invalid Json: duplicate key 'Effect'"),
        "{m}"
    );
    let m = err(&format!(
        r#"{{"Statement":[{{{BASE}}}],"Statement":[{{{BASE}}}]}}"#
    ));
    assert!(m.contains("duplicate key 'Statement'"), "{m}");
}
