//! Condition operator tests: each operator, negations, `IfExists`, set qualifiers.

use super::*;

/// Whether the condition block `cond` (JSON) holds for the request values `req`
/// (`(key, value)` pairs; a key may repeat).
fn holds(cond: &str, req: &[(&str, &str)]) -> bool {
    let v: Value = serde_json::from_str(cond).unwrap();
    let clauses = parse_condition(&v, true).unwrap_or_else(|e| panic!("{e}: {cond}"));
    let mut ctx = ConditionValues::new();
    for (k, val) in req {
        ctx.insert(k, *val);
    }
    clauses.iter().all(|c| c.holds(&ctx))
}

/// `{"<op>": {"k": <vals>}}` against the single request value `k = r`, or no `k` at
/// all when `r` is `None`.
fn one(op: &str, vals: &str, r: Option<&str>) -> bool {
    let cond = format!(r#"{{"{op}":{{"k":{vals}}}}}"#);
    match r {
        Some(r) => holds(&cond, &[("k", r)]),
        None => holds(&cond, &[("other", "x")]),
    }
}

#[test]
fn operator_names() {
    let op = Operator::parse("ForAllValues:StringNotLikeIfExists").unwrap();
    assert_eq!(op.base, Base::StringLike);
    assert!(op.negated && op.if_exists);
    assert_eq!(op.qualifier, Qualifier::ForAllValues);
    for (name, _, _) in OPERATORS {
        assert!(Operator::parse(name).is_some());
        assert!(Operator::parse(&format!("ForAnyValue:{name}")).is_some() || *name == "Null");
        assert!(Operator::parse(&format!("{name}IfExists")).is_some() || *name == "Null");
    }
    for bad in [
        "",
        "IfExists",
        "StringEqualsIfExistsIfExists",
        "ForAnyValue:",
        "Foo",
    ] {
        assert!(Operator::parse(bad).is_none(), "{bad}");
    }
}

#[test]
fn string_operators() {
    assert!(one("StringEquals", r#""abc""#, Some("abc")));
    assert!(!one("StringEquals", r#""abc""#, Some("ABC")));
    assert!(!one("StringEquals", r#""a*""#, Some("abc")));
    assert!(one("StringEquals", r#""a*""#, Some("a*")));
    assert!(one("StringEquals", r#"["x","abc"]"#, Some("abc")));
    assert!(!one("StringNotEquals", r#""abc""#, Some("abc")));
    assert!(one("StringNotEquals", r#""abc""#, Some("abd")));
    // Negated with several values: none may match (AND of inequalities).
    assert!(!one("StringNotEquals", r#"["x","abc"]"#, Some("abc")));
    assert!(one("StringNotEquals", r#"["x","y"]"#, Some("abc")));
    assert!(one("StringEqualsIgnoreCase", r#""AbC""#, Some("aBc")));
    assert!(!one("StringNotEqualsIgnoreCase", r#""AbC""#, Some("aBc")));
    assert!(one("StringNotEqualsIgnoreCase", r#""AbC""#, Some("aBd")));
    assert!(one(
        "StringLike",
        r#""home/*/photos/?.jpg""#,
        Some("home/bob/photos/1.jpg")
    ));
    assert!(!one(
        "StringLike",
        r#""home/*/photos/?.jpg""#,
        Some("home/bob/photos/12.jpg")
    ));
    assert!(!one("StringLike", r#""A*""#, Some("abc")));
    assert!(!one("StringNotLike", r#"["a*","b*"]"#, Some("bcd")));
    assert!(one("StringNotLike", r#"["a*","b*"]"#, Some("cde")));
    // Numbers and booleans are compared as their JSON text.
    assert!(one("StringEquals", "10", Some("10")));
    assert!(one("StringEquals", "true", Some("true")));
}

#[test]
fn numeric_operators() {
    let n = |op: &str, policy: &str, req: &str| one(op, policy, Some(req));
    assert!(n("NumericEquals", "10", "10"));
    assert!(n("NumericEquals", r#""10""#, "10.0"));
    assert!(!n("NumericEquals", "10", "11"));
    assert!(n("NumericNotEquals", "10", "11"));
    assert!(!n("NumericNotEquals", "10", "10"));
    assert!(n("NumericLessThan", "10", "9"));
    assert!(!n("NumericLessThan", "10", "10"));
    assert!(n("NumericLessThanEquals", "10", "10"));
    assert!(!n("NumericLessThanEquals", "10", "11"));
    assert!(n("NumericGreaterThan", "10", "11"));
    assert!(!n("NumericGreaterThan", "10", "10"));
    assert!(n("NumericGreaterThanEquals", "10", "10"));
    assert!(!n("NumericGreaterThanEquals", "10", "9.5"));
    assert!(n("NumericLessThan", "-1.5", "-2"));
    assert!(n("NumericLessThan", r#"["1","100"]"#, "50"));
    // A request value that is not a number matches nothing.
    assert!(!n("NumericLessThan", "10", "five"));
    assert!(n("NumericNotEquals", "10", "five"));
}

#[test]
fn date_operators() {
    let d = |op: &str, policy: &str, req: &str| one(op, policy, Some(req));
    let noon = r#""2019-07-16T12:00:00Z""#;
    assert!(d("DateEquals", noon, "2019-07-16T12:00:00Z"));
    assert!(d("DateEquals", noon, "1563278400"));
    assert!(d("DateEquals", "1563278400", "2019-07-16T14:00:00+02:00"));
    assert!(!d("DateNotEquals", noon, "2019-07-16T12:00:00Z"));
    assert!(d("DateNotEquals", noon, "2019-07-16T12:00:01Z"));
    assert!(d("DateLessThan", noon, "2019-07-16T11:59:59Z"));
    assert!(!d("DateLessThan", noon, "2019-07-16T12:00:00Z"));
    assert!(d("DateLessThanEquals", noon, "2019-07-16T12:00:00Z"));
    assert!(d("DateGreaterThan", noon, "2020-01-01T00:00:00Z"));
    assert!(!d("DateGreaterThan", noon, "2019-07-16T12:00:00Z"));
    assert!(d("DateGreaterThanEquals", noon, "2019-07-16T12:00:00Z"));
    assert!(d(
        "DateGreaterThan",
        r#""2019-07-16""#,
        "2019-07-16T00:00:01Z"
    ));
    assert!(!d("DateLessThan", noon, "not a date"));
}

#[test]
fn bool_binary_null() {
    assert!(one("Bool", r#""true""#, Some("true")));
    assert!(one("Bool", "true", Some("TRUE")));
    assert!(!one("Bool", "true", Some("false")));
    assert!(!one("Bool", "true", Some("1")));
    assert!(one("Bool", "false", Some("false")));
    assert!(!one("Bool", "false", None));
    assert!(one(
        "BinaryEquals",
        r#""QmluYXJ5VmFsdWU=""#,
        Some("QmluYXJ5VmFsdWU=")
    ));
    assert!(!one(
        "BinaryEquals",
        r#""QmluYXJ5VmFsdWU=""#,
        Some("qmluyxj5vmfsdwu=")
    ));
    // Null: true = the key is absent; false = it is present.
    assert!(one("Null", "true", None));
    assert!(!one("Null", "true", Some("x")));
    assert!(one("Null", r#""false""#, Some("x")));
    assert!(!one("Null", "false", None));
    // A key with an empty list of values counts as absent.
    let v: Value = serde_json::from_str(r#"{"Null":{"k":"true"}}"#).unwrap();
    let clauses = parse_condition(&v, true).unwrap();
    let mut ctx = ConditionValues::new();
    ctx.map.insert("k".into(), Vec::new());
    assert!(clauses[0].holds(&ctx));
}

#[test]
fn ip_operators() {
    let ip = |op: &str, policy: &str, req: &str| one(op, policy, Some(req));
    assert!(ip("IpAddress", r#""203.0.113.0/24""#, "203.0.113.9"));
    assert!(!ip("IpAddress", r#""203.0.113.0/24""#, "203.0.114.9"));
    assert!(ip("IpAddress", r#""203.0.113.9""#, "203.0.113.9"));
    assert!(!ip("IpAddress", r#""203.0.113.9""#, "203.0.113.10"));
    assert!(ip(
        "IpAddress",
        r#"["10.0.0.0/8","2001:db8::/32"]"#,
        "2001:db8::5"
    ));
    assert!(ip("IpAddress", r#""2001:db8::/32""#, "2001:DB8:0:0::1"));
    assert!(!ip("IpAddress", r#""2001:db8::/32""#, "10.0.0.1"));
    assert!(ip("IpAddress", r#""0.0.0.0/0""#, "198.51.100.1"));
    assert!(ip("IpAddress", r#""::/0""#, "::1"));
    assert!(!ip("IpAddress", r#""0.0.0.0/0""#, "garbage"));
    assert!(ip("NotIpAddress", r#""203.0.113.0/24""#, "198.51.100.1"));
    assert!(!ip(
        "NotIpAddress",
        r#"["198.51.100.0/24","203.0.113.0/24"]"#,
        "198.51.100.1"
    ));
}

#[test]
fn arn_operators() {
    let a = |op: &str, policy: &str, req: &str| one(op, policy, Some(req));
    let arn = "arn:aws:sns:us-east-1:111122223333:topic";
    assert!(a("ArnEquals", &format!("\"{arn}\""), arn));
    assert!(a("ArnLike", r#""arn:aws:sns:*:111122223333:*""#, arn));
    assert!(a("ArnEquals", r#""arn:aws:sns:*:111122223333:*""#, arn));
    assert!(!a("ArnLike", r#""arn:aws:sns:*:444455556666:*""#, arn));
    // A wildcard does not cross the `:` between parts.
    assert!(!a("ArnLike", r#""arn:aws:*:111122223333:topic:x""#, arn));
    // The resource part keeps its own colons.
    assert!(a(
        "ArnLike",
        r#""arn:aws:sns:us-east-1:111122223333:topic:*""#,
        "arn:aws:sns:us-east-1:111122223333:topic:sub:1"
    ));
    assert!(!a("ArnLike", r#""arn:aws:sns:*:*:*""#, "not-an-arn"));
    assert!(a("ArnNotLike", r#""arn:aws:sns:*:444455556666:*""#, arn));
    assert!(!a("ArnNotEquals", &format!("\"{arn}\""), arn));
    assert!(!a(
        "ArnEquals",
        r#""arn:aws:sns:us-east-1:111122223333:Topic""#,
        arn
    ));
}

#[test]
fn absent_keys() {
    // Positive operators are false on an absent key, negated ones true.
    assert!(!one("StringEquals", r#""v""#, None));
    assert!(!one("StringLike", r#""*""#, None));
    assert!(!one("NumericLessThan", "10", None));
    assert!(!one("IpAddress", r#""0.0.0.0/0""#, None));
    assert!(one("StringNotEquals", r#""v""#, None));
    assert!(one("StringNotLike", r#""*""#, None));
    assert!(one("NotIpAddress", r#""10.0.0.0/8""#, None));
    assert!(one("NumericNotEquals", "1", None));
    // IfExists: true when absent, the operator otherwise.
    assert!(one("StringEqualsIfExists", r#""v""#, None));
    assert!(one("StringEqualsIfExists", r#""v""#, Some("v")));
    assert!(!one("StringEqualsIfExists", r#""v""#, Some("w")));
    assert!(one("StringNotEqualsIfExists", r#""v""#, None));
    assert!(!one("StringNotEqualsIfExists", r#""v""#, Some("v")));
    assert!(one("NumericLessThanIfExists", "10", None));
    assert!(!one("NumericLessThanIfExists", "10", Some("11")));
    assert!(one("IpAddressIfExists", r#""10.0.0.0/8""#, None));
    assert!(one("BoolIfExists", "true", None));
    assert!(!one("BoolIfExists", "true", Some("false")));
    // Keys are case-insensitive.
    assert!(holds(
        r#"{"StringEquals":{"AWS:UserName":"bob"}}"#,
        &[("aws:username", "bob")]
    ));
    assert!(holds(
        r#"{"StringEquals":{"aws:username":"bob"}}"#,
        &[("AWS:USERNAME", "bob")]
    ));
}

#[test]
fn set_qualifiers() {
    let tags = |op: &str, vals: &str, req: &[&str]| {
        let cond = format!(r#"{{"{op}":{{"aws:TagKeys":{vals}}}}}"#);
        let req: Vec<(&str, &str)> = req.iter().map(|v| ("aws:TagKeys", *v)).collect();
        holds(&cond, &req)
    };
    let allowed = r#"["env","team"]"#;
    // ForAllValues: every request value is among the policy's; vacuous when absent.
    assert!(tags("ForAllValues:StringEquals", allowed, &["env"]));
    assert!(tags("ForAllValues:StringEquals", allowed, &["env", "team"]));
    assert!(!tags(
        "ForAllValues:StringEquals",
        allowed,
        &["env", "owner"]
    ));
    assert!(tags("ForAllValues:StringEquals", allowed, &[]));
    // ForAnyValue: at least one request value is; false when absent.
    assert!(tags(
        "ForAnyValue:StringEquals",
        allowed,
        &["owner", "team"]
    ));
    assert!(!tags("ForAnyValue:StringEquals", allowed, &["owner"]));
    assert!(!tags("ForAnyValue:StringEquals", allowed, &[]));
    // IfExists overrides the absent-key rule of ForAnyValue.
    assert!(tags("ForAnyValue:StringEqualsIfExists", allowed, &[]));
    // Negated: ForAllValues = no request value matches; ForAnyValue = some does not.
    assert!(tags(
        "ForAllValues:StringNotEquals",
        allowed,
        &["owner", "cost"]
    ));
    assert!(!tags(
        "ForAllValues:StringNotEquals",
        allowed,
        &["owner", "env"]
    ));
    assert!(tags("ForAllValues:StringNotEquals", allowed, &[]));
    assert!(tags(
        "ForAnyValue:StringNotEquals",
        allowed,
        &["owner", "env"]
    ));
    assert!(!tags(
        "ForAnyValue:StringNotEquals",
        allowed,
        &["team", "env"]
    ));
    assert!(!tags("ForAnyValue:StringNotEquals", allowed, &[]));
    assert!(tags("ForAnyValue:StringLike", r#""te*""#, &["env", "team"]));
    assert!(!tags(
        "ForAllValues:StringLike",
        r#""te*""#,
        &["env", "team"]
    ));
    // Plain operators on several request values: any matches (negated: none does).
    assert!(tags("StringEquals", allowed, &["owner", "env"]));
    assert!(!tags("StringNotEquals", allowed, &["owner", "env"]));
    assert!(tags("StringNotEquals", allowed, &["owner", "cost"]));
}

#[test]
fn blocks_are_and_values_are_or() {
    let cond = r#"{"StringEquals":{"a":"1","b":["2","3"]},"Bool":{"c":"true"}}"#;
    assert!(holds(cond, &[("a", "1"), ("b", "3"), ("c", "true")]));
    assert!(!holds(cond, &[("a", "1"), ("b", "4"), ("c", "true")]));
    assert!(!holds(cond, &[("a", "1"), ("b", "2"), ("c", "false")]));
    assert!(!holds(cond, &[("b", "2"), ("c", "true")]));
    // The same key under two operators: both must hold.
    let range = r#"{"NumericGreaterThan":{"n":"1"},"NumericLessThan":{"n":"5"}}"#;
    assert!(holds(range, &[("n", "3")]));
    assert!(!holds(range, &[("n", "7")]));
}

#[test]
fn variables_in_values() {
    let cond = r#"{"StringLike":{"s3:prefix":["home/${aws:username}/*", "${*}literal"]}}"#;
    assert!(holds(
        cond,
        &[("s3:prefix", "home/bob/x"), ("aws:username", "bob")]
    ));
    assert!(!holds(
        cond,
        &[("s3:prefix", "home/alice/x"), ("aws:username", "bob")]
    ));
    assert!(holds(cond, &[("s3:prefix", "*literal")]));
    assert!(!holds(cond, &[("s3:prefix", "xliteral")]));
    let v: Value = serde_json::from_str(cond).unwrap();
    let clauses = parse_condition(&v, true).unwrap();
    assert_eq!(clauses[0].variables().collect::<Vec<_>>(), ["aws:username"]);
    // Without variables (version 2008-10-17) the text is literal.
    let clauses = parse_condition(&v, false).unwrap();
    assert_eq!(clauses[0].variables().count(), 0);
}
