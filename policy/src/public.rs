//! Whether a bucket policy is "public" in the sense of S3 Block Public Access.
//!
//! S3 starts from "public" and looks for what makes a grant non-public. Here an `Allow`
//! statement is public when it is open to everyone (`"Principal": "*"`,
//! `{"AWS": "*"}`, or any `NotPrincipal`) and none of its conditions pins it to fixed
//! values of one of the keys S3 accepts for that:
//!
//! - `aws:SourceIp` with `IpAddress`, every block no broader than /8 (IPv4) or /32
//!   (IPv6): `0.0.0.0/0`, `0.0.0.0/1`, `::/0` stay public;
//! - `aws:SourceArn`, `aws:SourceVpc`, `aws:SourceVpce`, `aws:SourceOwner`,
//!   `aws:SourceAccount`, `aws:PrincipalOrgID`, `aws:userid`,
//!   `s3:x-amz-server-side-encryption-aws-kms-key-id`, `s3:DataAccessPointArn`,
//!   `s3:DataAccessPointAccount` with an equality or ARN operator (`StringEquals`,
//!   `StringEqualsIgnoreCase`, `StringLike`, `ArnEquals`, `ArnLike`).
//!
//! A pin must be a positive operator (no `Not...`), without `IfExists` or
//! `ForAllValues:` (both hold when the key is absent), and every value must be fixed:
//! no `*`, no `?`, no `${...}` policy variable. `Deny` statements never make a policy
//! public. Identity policies are never public.

use crate::condition::{Base, Clause, Qualifier, Values};
use crate::model::{Effect, PrincipalClause, Statement};

/// The condition keys (lowercased) whose fixed values make a grant non-public, other
/// than `aws:sourceip`.
const PINNING_KEYS: &[&str] = &[
    "aws:sourcearn",
    "aws:sourcevpc",
    "aws:sourcevpce",
    "aws:sourceowner",
    "aws:sourceaccount",
    "aws:principalorgid",
    "aws:userid",
    "s3:x-amz-server-side-encryption-aws-kms-key-id",
    "s3:dataaccesspointarn",
    "s3:dataaccesspointaccount",
];

pub(crate) fn statements_public(statements: &[Statement]) -> bool {
    statements.iter().any(statement_public)
}

fn statement_public(s: &Statement) -> bool {
    let open = match &s.principal {
        PrincipalClause::Implicit => false,
        PrincipalClause::Principal(p) => p.wildcard,
        PrincipalClause::NotPrincipal(_) => true,
    };
    s.effect == Effect::Allow && open && !s.conditions.iter().any(pins)
}

/// Whether the clause restricts the statement to fixed values of a pinning key.
fn pins(c: &Clause) -> bool {
    if c.op.negated || c.op.if_exists || c.op.qualifier == Qualifier::ForAllValues {
        return false;
    }
    let fixed = c
        .raw
        .iter()
        .all(|v| !v.contains('*') && !v.contains('?') && !v.contains("${"));
    if !fixed {
        return false;
    }
    if c.key == "aws:sourceip" {
        return match &c.values {
            Values::Cidrs(cs) => cs.iter().all(|c| {
                let broadest = if c.addr.is_ipv4() { 8 } else { 32 };
                c.prefix >= broadest
            }),
            _ => false,
        };
    }
    PINNING_KEYS.contains(&c.key.as_str())
        && matches!(
            c.op.base,
            Base::StringEquals
                | Base::StringEqualsIgnoreCase
                | Base::StringLike
                | Base::ArnEquals
                | Base::ArnLike
        )
}

#[cfg(test)]
mod tests {
    use crate::{Policy, PolicyKind};

    fn public(doc: &str) -> bool {
        let kind = PolicyKind::Bucket {
            bucket: "examplebucket".into(),
        };
        Policy::parse(doc.as_bytes(), kind).unwrap().is_public()
    }

    fn stmt(principal: &str, effect: &str, condition: &str) -> String {
        let cond = if condition.is_empty() {
            String::new()
        } else {
            format!(r#","Condition":{condition}"#)
        };
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"{effect}","Principal":{principal},
            "Action":"s3:GetObject","Resource":"arn:aws:s3:::examplebucket/*"{cond}}}]}}"#
        )
    }

    #[test]
    fn aws_doc_examples() {
        // Public: open to everyone, no condition.
        assert!(public(
            r#"{"Statement":{"Principal":"*","Resource":"*","Action":"s3:PutObject","Effect":"Allow"}}"#
        ));
        // Public: the VPC condition has a wildcard.
        assert!(public(
            r#"{"Statement":{"Principal":"*","Resource":"*","Action":"s3:PutObject","Effect":"Allow",
               "Condition":{"StringLike":{"aws:SourceVpc":"vpc-*"}}}}"#
        ));
        // Non-public: a fixed VPC.
        assert!(!public(
            r#"{"Statement":{"Principal":"*","Resource":"*","Action":"s3:PutObject","Effect":"Allow",
               "Condition":{"StringEquals":{"aws:SourceVpc":"vpc-91237329"}}}}"#
        ));
        // Non-public: a fixed account principal.
        assert!(!public(
            r#"{"Statement":{"Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Resource":"*",
               "Action":"s3:*","Effect":"Allow"}}"#
        ));
        // A policy with one public and one non-public grant is public.
        assert!(public(
            r#"{"Statement":[
                {"Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Resource":"*","Action":"s3:*","Effect":"Allow"},
                {"Principal":"*","Resource":"*","Action":"s3:GetObject","Effect":"Allow"}]}"#
        ));
    }

    #[test]
    fn principals() {
        assert!(public(&stmt(r#""*""#, "Allow", "")));
        assert!(public(&stmt(r#"{"AWS":"*"}"#, "Allow", "")));
        assert!(public(&stmt(
            r#"{"AWS":["111122223333","*"]}"#,
            "Allow",
            ""
        )));
        assert!(!public(&stmt(r#"{"AWS":"111122223333"}"#, "Allow", "")));
        assert!(!public(&stmt(r#"{"Service":"logging.s3"}"#, "Allow", "")));
        // Deny never makes a policy public.
        assert!(!public(&stmt(r#""*""#, "Deny", "")));
        // NotPrincipal goes with Deny only, which never makes a policy public.
        let not = r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny",
            "NotPrincipal":{"AWS":"111122223333"},"Action":"s3:GetObject",
            "Resource":"arn:aws:s3:::examplebucket/*"}}"#;
        assert!(!public(not));
    }

    #[test]
    fn source_ip() {
        let ip = |op: &str, v: &str| format!(r#"{{"{op}":{{"aws:SourceIp":{v}}}}}"#);
        let p = |c: String| public(&stmt(r#""*""#, "Allow", &c));
        assert!(!p(ip("IpAddress", r#""192.0.2.0/24""#)));
        assert!(!p(ip("IpAddress", r#""192.0.2.1""#)));
        assert!(!p(ip("IpAddress", r#""10.0.0.0/8""#)));
        assert!(p(ip("IpAddress", r#""10.0.0.0/7""#)));
        assert!(p(ip("IpAddress", r#""0.0.0.0/0""#)));
        assert!(p(ip("IpAddress", r#""0.0.0.0/1""#)));
        assert!(p(ip("IpAddress", r#"["192.0.2.0/24","0.0.0.0/0"]"#)));
        assert!(!p(ip("IpAddress", r#""2001:db8::/32""#)));
        assert!(p(ip("IpAddress", r#""2001::/16""#)));
        assert!(p(ip("IpAddress", r#""::/0""#)));
        // Negated or optional conditions pin nothing.
        assert!(p(ip("NotIpAddress", r#""192.0.2.0/24""#)));
        assert!(p(ip("IpAddressIfExists", r#""192.0.2.0/24""#)));
        // The key must be SourceIp.
        assert!(p(
            r#"{"IpAddress":{"aws:VpcSourceIp":"192.0.2.0/24"}}"#.to_owned()
        ));
    }

    #[test]
    fn pinning_keys() {
        let p = |c: &str| public(&stmt(r#""*""#, "Allow", c));
        assert!(!p(
            r#"{"ArnEquals":{"aws:SourceArn":"arn:aws:cloudtrail:us-east-1:111122223333:trail/x"}}"#
        ));
        assert!(p(
            r#"{"ArnLike":{"aws:SourceArn":"arn:aws:cloudtrail:*:111122223333:trail/*"}}"#
        ));
        assert!(!p(
            r#"{"StringEquals":{"aws:SourceAccount":"111122223333"}}"#
        ));
        assert!(!p(r#"{"StringEquals":{"AWS:SOURCEVPCE":"vpce-1a2b3c4d"}}"#));
        assert!(!p(r#"{"StringEquals":{"aws:SourceOwner":"111122223333"}}"#));
        assert!(!p(r#"{"StringEquals":{"aws:PrincipalOrgID":"o-abc123"}}"#));
        assert!(!p(r#"{"StringEquals":{"aws:userid":"AIDAEXAMPLE"}}"#));
        assert!(p(r#"{"StringLike":{"aws:userid":"AROAEXAMPLE:*"}}"#));
        assert!(!p(
            r#"{"StringEquals":{"s3:x-amz-server-side-encryption-aws-kms-key-id":"arn:aws:kms:us-east-1:111122223333:key/k"}}"#
        ));
        assert!(!p(
            r#"{"ForAnyValue:StringEquals":{"aws:SourceVpc":"vpc-1"}}"#
        ));
        // Not pins: a wildcard, a variable, a negation, IfExists, ForAllValues, an
        // unrelated key or operator.
        assert!(p(r#"{"StringEquals":{"aws:SourceVpc":"vpc-*"}}"#));
        assert!(p(r#"{"StringEquals":{"aws:userid":"${aws:username}"}}"#));
        assert!(p(r#"{"StringNotEquals":{"aws:SourceVpc":"vpc-1"}}"#));
        assert!(p(r#"{"StringEqualsIfExists":{"aws:SourceVpc":"vpc-1"}}"#));
        assert!(p(
            r#"{"ForAllValues:StringEquals":{"aws:SourceVpc":"vpc-1"}}"#
        ));
        assert!(p(
            r#"{"StringEquals":{"aws:Referer":"https://example.com/"}}"#
        ));
        assert!(p(r#"{"Bool":{"aws:SecureTransport":"true"}}"#));
        assert!(p(r#"{"Null":{"aws:SourceVpc":"false"}}"#));
        // One pin among other conditions is enough.
        assert!(!p(
            r#"{"Bool":{"aws:SecureTransport":"true"},"StringEquals":{"aws:SourceVpc":"vpc-1"}}"#
        ));
    }

    #[test]
    fn identity_policies_are_never_public() {
        let doc = r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}"#;
        assert!(!Policy::parse(doc.as_bytes(), PolicyKind::Identity)
            .unwrap()
            .is_public());
    }
}
