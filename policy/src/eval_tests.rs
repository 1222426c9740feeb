//! Evaluation tests: principals, actions, resources, effects, variables, `combine`.

use super::*;

const BUCKET: &str = "examplebucket";

fn bucket_policy(statements: &str) -> Policy {
    let doc = format!(r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#);
    Policy::parse(
        doc.as_bytes(),
        PolicyKind::Bucket {
            bucket: BUCKET.into(),
        },
    )
    .unwrap_or_else(|e| panic!("{e}: {doc}"))
}

/// A request builder with owned parts.
struct Req {
    principal: Vec<String>,
    anonymous: bool,
    action: String,
    resource: String,
    conditions: ConditionValues,
}

fn req(principal: &[&str], action: &str, key: &str) -> Req {
    let resource = if key.is_empty() {
        format!("arn:aws:s3:::{BUCKET}")
    } else {
        format!("arn:aws:s3:::{BUCKET}/{key}")
    };
    Req {
        principal: principal.iter().map(|s| s.to_string()).collect(),
        anonymous: principal.is_empty(),
        action: action.into(),
        resource,
        conditions: ConditionValues::new(),
    }
}

impl Req {
    fn with(mut self, key: &str, value: &str) -> Req {
        self.conditions.insert(key, value);
        self
    }

    fn ctx(&self) -> RequestContext<'_> {
        RequestContext {
            principal: &self.principal,
            anonymous: self.anonymous,
            action: &self.action,
            resource: &self.resource,
            conditions: &self.conditions,
        }
    }

    fn on(&self, p: &Policy) -> Decision {
        p.evaluate(&self.ctx())
    }
}

const ALICE: &str = "arn:aws:iam::111122223333:user/alice";
const BOB: &str = "arn:aws:iam::111122223333:user/bob";

#[test]
fn principals() {
    let p = bucket_policy(&format!(
        r#"{{"Effect":"Allow","Principal":{{"AWS":["{ALICE}","AKIAALICE"]}},"Action":"s3:GetObject","Resource":"arn:aws:s3:::examplebucket/*"}}"#
    ));
    assert_eq!(req(&[ALICE], "s3:GetObject", "k").on(&p), Decision::Allow);
    // Any of the caller's identifiers may match.
    assert_eq!(
        req(&["someone-else", "AKIAALICE"], "s3:GetObject", "k").on(&p),
        Decision::Allow
    );
    assert_eq!(
        req(&[BOB], "s3:GetObject", "k").on(&p),
        Decision::NotApplicable
    );
    assert_eq!(
        req(&[], "s3:GetObject", "k").on(&p),
        Decision::NotApplicable
    );
    // Exact comparison: no case folding, no prefix.
    assert_eq!(
        req(&["akiaalice"], "s3:GetObject", "k").on(&p),
        Decision::NotApplicable
    );
    // An anonymous request matches no identifier, whatever it carries.
    let mut anon = req(&[ALICE], "s3:GetObject", "k");
    anon.anonymous = true;
    assert_eq!(anon.on(&p), Decision::NotApplicable);

    for star in [r#""*""#, r#"{"AWS":"*"}"#, r#"{"AWS":["x","*"]}"#] {
        let p = bucket_policy(&format!(
            r#"{{"Effect":"Allow","Principal":{star},"Action":"s3:GetObject","Resource":"arn:aws:s3:::examplebucket/*"}}"#
        ));
        assert_eq!(req(&[], "s3:GetObject", "k").on(&p), Decision::Allow);
        assert_eq!(req(&[BOB], "s3:GetObject", "k").on(&p), Decision::Allow);
    }

    // Service and CanonicalUser principals.
    let p = bucket_policy(
        r#"{"Effect":"Allow","Principal":{"Service":"logging.s3.amazonaws.com","CanonicalUser":"c0ffee"},"Action":"s3:PutObject","Resource":"arn:aws:s3:::examplebucket/*"}"#,
    );
    assert_eq!(
        req(&["c0ffee"], "s3:PutObject", "k").on(&p),
        Decision::Allow
    );
    assert_eq!(
        req(&["logging.s3.amazonaws.com"], "s3:PutObject", "k").on(&p),
        Decision::NotApplicable
    );
}

#[test]
fn not_principal() {
    let p = bucket_policy(&format!(
        r#"{{"Effect":"Deny","NotPrincipal":{{"AWS":"{ALICE}"}},"Action":"s3:*","Resource":"arn:aws:s3:::examplebucket/*"}}"#
    ));
    assert_eq!(
        req(&[ALICE], "s3:GetObject", "k").on(&p),
        Decision::NotApplicable
    );
    assert_eq!(req(&[BOB], "s3:GetObject", "k").on(&p), Decision::Deny);
    assert_eq!(req(&[], "s3:GetObject", "k").on(&p), Decision::Deny);
    // NotPrincipal "*" excludes everyone.
    let p = bucket_policy(
        r#"{"Effect":"Deny","NotPrincipal":"*","Action":"s3:*","Resource":"arn:aws:s3:::examplebucket/*"}"#,
    );
    assert_eq!(
        req(&[], "s3:GetObject", "k").on(&p),
        Decision::NotApplicable
    );
    assert_eq!(
        req(&[BOB], "s3:GetObject", "k").on(&p),
        Decision::NotApplicable
    );
}

#[test]
fn actions() {
    let p = bucket_policy(
        r#"{"Effect":"Allow","Principal":"*","Action":["s3:Get*","s3:List?ucket"],"Resource":["arn:aws:s3:::examplebucket","arn:aws:s3:::examplebucket/*"]}"#,
    );
    assert_eq!(req(&[], "s3:GetObject", "k").on(&p), Decision::Allow);
    assert_eq!(req(&[], "S3:GETOBJECTACL", "k").on(&p), Decision::Allow);
    assert_eq!(req(&[], "s3:ListBucket", "").on(&p), Decision::Allow);
    assert_eq!(
        req(&[], "s3:ListBucketVersions", "").on(&p),
        Decision::NotApplicable
    );
    assert_eq!(
        req(&[], "s3:PutObject", "k").on(&p),
        Decision::NotApplicable
    );

    let p = bucket_policy(
        r#"{"Effect":"Allow","Principal":"*","NotAction":"s3:Delete*","Resource":"*"}"#,
    );
    assert_eq!(req(&[], "s3:PutObject", "k").on(&p), Decision::Allow);
    assert_eq!(
        req(&[], "s3:DeleteObject", "k").on(&p),
        Decision::NotApplicable
    );
    assert_eq!(
        req(&[], "s3:deleteobject", "k").on(&p),
        Decision::NotApplicable
    );

    let p = bucket_policy(r#"{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}"#);
    assert_eq!(req(&[], "s3:Anything", "k").on(&p), Decision::Allow);
}

#[test]
fn resources() {
    let p = bucket_policy(
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::examplebucket/public/*.jpg"}"#,
    );
    assert_eq!(
        req(&[], "s3:GetObject", "public/a/b.jpg").on(&p),
        Decision::Allow
    );
    assert_eq!(
        req(&[], "s3:GetObject", "public/.jpg").on(&p),
        Decision::Allow
    );
    // Case-sensitive.
    assert_eq!(
        req(&[], "s3:GetObject", "Public/a.jpg").on(&p),
        Decision::NotApplicable
    );
    assert_eq!(
        req(&[], "s3:GetObject", "public/a.JPG").on(&p),
        Decision::NotApplicable
    );
    assert_eq!(req(&[], "s3:GetObject", "").on(&p), Decision::NotApplicable);

    let p = bucket_policy(
        r#"{"Effect":"Deny","Principal":"*","Action":"s3:*","NotResource":["arn:aws:s3:::examplebucket/shared/*","arn:aws:s3:::examplebucket"]}"#,
    );
    assert_eq!(
        req(&[], "s3:GetObject", "shared/x").on(&p),
        Decision::NotApplicable
    );
    assert_eq!(
        req(&[], "s3:ListBucket", "").on(&p),
        Decision::NotApplicable
    );
    assert_eq!(req(&[], "s3:GetObject", "private/x").on(&p), Decision::Deny);

    let p = bucket_policy(
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::examplebucket/?"}"#,
    );
    assert_eq!(req(&[], "s3:GetObject", "a").on(&p), Decision::Allow);
    assert_eq!(
        req(&[], "s3:GetObject", "ab").on(&p),
        Decision::NotApplicable
    );
}

#[test]
fn deny_wins_within_a_policy() {
    let p = bucket_policy(&format!(
        r#"{{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::examplebucket/*"}},
           {{"Effect":"Deny","Principal":{{"AWS":"{BOB}"}},"Action":"s3:DeleteObject","Resource":"arn:aws:s3:::examplebucket/*"}}"#
    ));
    assert_eq!(req(&[BOB], "s3:GetObject", "k").on(&p), Decision::Allow);
    assert_eq!(req(&[BOB], "s3:DeleteObject", "k").on(&p), Decision::Deny);
    assert_eq!(
        req(&[ALICE], "s3:DeleteObject", "k").on(&p),
        Decision::Allow
    );
}

#[test]
fn conditions_gate_statements() {
    let p = bucket_policy(
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::examplebucket/*",
            "Condition":{"IpAddress":{"aws:SourceIp":"192.0.2.0/24"},"Bool":{"aws:SecureTransport":"true"}}},
           {"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::examplebucket/*",
            "Condition":{"Bool":{"aws:SecureTransport":"false"}}}"#,
    );
    let r = || req(&[], "s3:GetObject", "k");
    assert_eq!(
        r().with("aws:SourceIp", "192.0.2.1")
            .with("aws:SecureTransport", "true")
            .on(&p),
        Decision::Allow
    );
    assert_eq!(
        r().with("aws:SourceIp", "192.0.2.1")
            .with("aws:SecureTransport", "false")
            .on(&p),
        Decision::Deny
    );
    assert_eq!(
        r().with("aws:SourceIp", "198.51.100.1")
            .with("aws:SecureTransport", "true")
            .on(&p),
        Decision::NotApplicable
    );
    assert_eq!(r().on(&p), Decision::NotApplicable);
}

#[test]
fn identity_policies() {
    let doc = br#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"arn:aws:s3:::any-bucket/home/${aws:username}/*"},
        {"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::any-bucket",
         "Condition":{"StringLike":{"s3:prefix":["home/${aws:username}/*"]}}}]}"#;
    let p = Policy::parse(doc, PolicyKind::Identity).unwrap();
    let r = |action: &str, resource: &str| Req {
        principal: vec!["AKIAEXAMPLE".into()],
        anonymous: false,
        action: action.into(),
        resource: resource.into(),
        conditions: ConditionValues::new(),
    };
    let home = "arn:aws:s3:::any-bucket/home/bob/notes.txt";
    assert_eq!(
        r("s3:GetObject", home).with("aws:username", "bob").on(&p),
        Decision::Allow
    );
    assert_eq!(
        r("s3:GetObject", home).with("aws:username", "alice").on(&p),
        Decision::NotApplicable
    );
    // Without the variable's value the statement does not apply.
    assert_eq!(r("s3:GetObject", home).on(&p), Decision::NotApplicable);
    assert_eq!(
        r("s3:ListBucket", "arn:aws:s3:::any-bucket")
            .with("aws:username", "bob")
            .with("s3:prefix", "home/bob/")
            .on(&p),
        Decision::Allow
    );
    assert_eq!(
        r("s3:ListBucket", "arn:aws:s3:::any-bucket")
            .with("aws:username", "bob")
            .with("s3:prefix", "home/alice/")
            .on(&p),
        Decision::NotApplicable
    );
    assert!(!p.is_public());
}

#[test]
fn variables_need_version_2012() {
    // In the 2008 language `${...}` is literal text.
    let doc = br#"{"Version":"2008-10-17","Statement":[
        {"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/${aws:username}"}]}"#;
    let p = Policy::parse(doc, PolicyKind::Identity).unwrap();
    let mut r = req(&["k"], "s3:GetObject", "");
    r.resource = "arn:aws:s3:::b/${aws:username}".into();
    assert_eq!(r.with("aws:username", "bob").on(&p), Decision::Allow);
}

#[test]
fn unresolved_variable_disables_a_deny_too() {
    let p = bucket_policy(
        r#"{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::examplebucket/*"},
           {"Effect":"Deny","Principal":"*","Action":"s3:GetObject","NotResource":"arn:aws:s3:::examplebucket/${aws:username}/*"}"#,
    );
    let r = || req(&["x"], "s3:GetObject", "bob/file");
    assert_eq!(r().with("aws:username", "bob").on(&p), Decision::Allow);
    assert_eq!(r().with("aws:username", "eve").on(&p), Decision::Deny);
    assert_eq!(r().on(&p), Decision::Allow);
}

#[test]
fn combine_decisions() {
    use Decision::*;
    assert_eq!(combine([]), NotApplicable);
    assert_eq!(combine([NotApplicable, NotApplicable]), NotApplicable);
    assert_eq!(combine([NotApplicable, Allow]), Allow);
    assert_eq!(combine([Allow, Deny, Allow]), Deny);
    assert_eq!(combine(vec![Deny]), Deny);
}

#[test]
fn condition_values_api() {
    let mut c = ConditionValues::new();
    assert_eq!(c.get("k"), None);
    c.insert("AWS:TagKeys", "a");
    c.insert("aws:tagkeys", String::from("b"));
    assert_eq!(
        c.get("aws:TagKeys"),
        Some(&["a".to_string(), "b".to_string()][..])
    );
    assert_eq!(c.get("AWS:TAGKEYS").map(<[String]>::len), Some(2));
}

#[test]
fn error_display() {
    assert_eq!(
        PolicyError::Malformed("Statement[0]: missing Effect".into()).to_string(),
        "Statement[0]: missing Effect"
    );
    assert_eq!(
        PolicyError::TooLarge.to_string(),
        "policy document is larger than 20480 bytes"
    );
}
