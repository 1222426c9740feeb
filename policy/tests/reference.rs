//! Property test: `Policy::evaluate` agrees with a deliberately simple reference
//! evaluator, written separately here, on random policies and random requests.
//!
//! Each case draws a bucket policy (random statements: effect, `Principal` /
//! `NotPrincipal` from a small pool including `*`, `Action` / `NotAction` from a pool
//! with wildcards, `Resource` / `NotResource` with wildcards and a policy variable, and
//! conditions from `StringEquals`, `StringLike`, `NumericLessThan`, `IpAddress`, `Bool`,
//! `Null`, their negated forms, `IfExists` variants and `ForAnyValue:` / `ForAllValues:`
//! qualifiers), writes it as JSON text in varying shapes, parses it with
//! `Policy::parse`, and checks a batch of random requests (random caller, action,
//! resource, present / absent / multi-valued condition keys, keys in random case).
//!
//! The reference works on the generator's own description of the policy, not on the
//! parsed one: a recursive wildcard matcher, plain loops, and the AWS rules written out
//! one by one.

use std::net::IpAddr;

use cairn_policy::{ConditionValues, Decision, Policy, PolicyKind, RequestContext};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

const BUCKET: &str = "bkt";

const CALLERS: &[&str] = &[
    "arn:aws:iam::1:user/alice",
    "arn:aws:iam::1:user/bob",
    "AKIACAROL",
];
const POLICY_ACTIONS: &[&str] = &[
    "s3:GetObject",
    "s3:PutObject",
    "s3:ListBucket",
    "s3:DeleteObject",
    "s3:Get*",
    "s3:*",
    "*",
    "s3:?etObject",
    "S3:putobject",
    "s3:*Object*",
];
const REQUEST_ACTIONS: &[&str] = &[
    "s3:GetObject",
    "s3:PutObject",
    "s3:ListBucket",
    "s3:DeleteObject",
    "s3:GetObjectAcl",
    "s3:getobject",
];
const POLICY_RESOURCES: &[&str] = &[
    "arn:aws:s3:::bkt",
    "arn:aws:s3:::bkt/*",
    "arn:aws:s3:::bkt/a/*",
    "arn:aws:s3:::bkt/a?c",
    "arn:aws:s3:::bkt/ab?",
    "arn:aws:s3:::bkt/*.txt",
    "*",
    "arn:aws:s3:::b*",
    "arn:aws:s3:::bkt/A*",
    "arn:aws:s3:::bkt/home/${aws:username}/*",
];
const REQUEST_RESOURCES: &[&str] = &[
    "arn:aws:s3:::bkt",
    "arn:aws:s3:::bkt/abc",
    "arn:aws:s3:::bkt/a/x.txt",
    "arn:aws:s3:::bkt/A/b",
    "arn:aws:s3:::bkt/x.txt",
    "arn:aws:s3:::bkt/home/bob/f",
    "arn:aws:s3:::bkt/home/al*/f",
    "arn:aws:s3:::bkt/home/alice/f",
];

/// Condition keys as the reference knows them (lowercase).
const KEYS: &[&str] = &[
    "k:str",
    "k:tags",
    "k:num",
    "aws:sourceip",
    "aws:securetransport",
    "aws:username",
];
const STRING_VALUES: &[&str] = &[
    "red",
    "green",
    "Red",
    "re*",
    "*een",
    "g?een",
    "gree?",
    "*",
    "${aws:username}",
];
const NUMBER_VALUES: &[&str] = &["-5", "0", "3", "10", "2.5"];
const CIDR_VALUES: &[&str] = &[
    "10.0.0.0/8",
    "10.1.2.3",
    "192.168.0.0/16",
    "0.0.0.0/0",
    "2001:db8::/32",
    "::1",
];
const BOOL_VALUES: &[&str] = &["true", "false"];

/// Request values per key (index-aligned with `KEYS`).
const REQUEST_VALUES: &[&[&str]] = &[
    &["red", "green", "Red", "reef", "gleen", "blue", "*"],
    &["red", "green", "blue", "Red"],
    &["-10", "0", "3", "9.5", "10", "11", "abc", "2.5"],
    &[
        "10.9.8.7",
        "10.1.2.3",
        "192.168.5.5",
        "8.8.8.8",
        "2001:db8::1",
        "::1",
        "::ffff:10.0.0.1",
        "nonsense",
    ],
    &["true", "false", "TRUE", "maybe"],
    &["bob", "al*", "alice", "red"],
];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    StringEquals,
    StringLike,
    NumericLessThan,
    IpAddress,
    Bool,
    Null,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Qual {
    Plain,
    Any,
    All,
}

#[derive(Debug, Clone)]
struct Cond {
    op: Op,
    negated: bool,
    if_exists: bool,
    qual: Qual,
    /// As written in the policy (random case).
    key: String,
    values: Vec<String>,
    /// Write single values as a bare string (not a one-element list), numbers / booleans
    /// as JSON numbers / booleans.
    compact: bool,
}

#[derive(Debug, Clone)]
struct Stmt {
    allow: bool,
    /// `None`: `"*"`; `Some(ids)`: `{"AWS": ids}` (ids may hold `*`).
    principal: Option<Vec<String>>,
    not_principal: bool,
    actions: Vec<String>,
    not_action: bool,
    resources: Vec<String>,
    not_resource: bool,
    conds: Vec<Cond>,
}

#[derive(Debug, Clone)]
struct Req {
    /// `None`: anonymous.
    caller: Option<Vec<String>>,
    action: String,
    resource: String,
    /// (key as sent, in random case; value)
    conds: Vec<(String, String)>,
}

// ---------------------------------------------------------------- the reference

/// Pattern characters: a literal, `*` or `?`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum P {
    Lit(char),
    Star,
    Q,
}

/// Recursive wildcard match.
fn wild(p: &[P], t: &[char]) -> bool {
    match p.first() {
        None => t.is_empty(),
        Some(P::Star) => wild(&p[1..], t) || (!t.is_empty() && wild(p, &t[1..])),
        Some(P::Q) => !t.is_empty() && wild(&p[1..], &t[1..]),
        Some(P::Lit(c)) => t.first() == Some(c) && wild(&p[1..], &t[1..]),
    }
}

/// Turns policy text into pattern characters, substituting `${aws:username}` with
/// `user` as literal text. `None` if the variable is used and `user` is missing.
fn pattern(s: &str, wildcards: bool, user: Option<&str>) -> Option<Vec<P>> {
    const VAR: &str = "${aws:username}";
    let mut out = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix(VAR) {
            for c in user?.chars() {
                out.push(P::Lit(c));
            }
            rest = after;
            continue;
        }
        let c = rest.chars().next().unwrap();
        out.push(match c {
            '*' if wildcards => P::Star,
            '?' if wildcards => P::Q,
            c => P::Lit(c),
        });
        rest = &rest[c.len_utf8()..];
    }
    Some(out)
}

fn text_matches(policy: &str, text: &str, wildcards: bool, user: Option<&str>) -> bool {
    match pattern(policy, wildcards, user) {
        Some(p) => wild(&p, &text.chars().collect::<Vec<_>>()),
        None => false,
    }
}

/// The request's values for a lowercase key (empty when absent).
fn values_of<'a>(req: &'a Req, key: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    for (k, v) in &req.conds {
        if k.to_lowercase() == key {
            out.push(v.as_str());
        }
    }
    out
}

fn ip_octets(s: &str) -> Option<Vec<u8>> {
    match s.parse::<IpAddr>().ok()? {
        IpAddr::V4(a) => Some(a.octets().to_vec()),
        IpAddr::V6(a) => {
            let o = a.octets();
            if o[..10].iter().all(|&b| b == 0) && o[10] == 0xff && o[11] == 0xff {
                Some(o[12..].to_vec())
            } else {
                Some(o.to_vec())
            }
        }
    }
}

fn in_cidr(cidr: &str, ip: &str) -> bool {
    let (net, bits) = match cidr.split_once('/') {
        Some((n, b)) => (n, b.parse::<usize>().unwrap()),
        None => (cidr, usize::MAX),
    };
    let (Some(net), Some(ip)) = (ip_octets(net), ip_octets(ip)) else {
        return false;
    };
    if net.len() != ip.len() {
        return false;
    }
    let bits = bits.min(net.len() * 8);
    for i in 0..bits {
        let bit = |o: &[u8]| (o[i / 8] >> (7 - i % 8)) & 1;
        if bit(&net) != bit(&ip) {
            return false;
        }
    }
    true
}

/// The positive operator: does request value `r` match policy value `v`?
fn op_matches(op: Op, v: &str, r: &str, user: Option<&str>) -> bool {
    match op {
        Op::StringEquals => text_matches(v, r, false, user),
        Op::StringLike => text_matches(v, r, true, user),
        // The pools hold plain decimals and non-numbers only.
        Op::NumericLessThan => match (r.parse::<f64>(), v.parse::<f64>()) {
            (Ok(r), Ok(v)) => r < v,
            _ => false,
        },
        Op::IpAddress => in_cidr(v, r),
        Op::Bool => r.eq_ignore_ascii_case(v),
        Op::Null => unreachable!(),
    }
}

fn cond_holds(c: &Cond, req: &Req) -> bool {
    let key = c.key.to_lowercase();
    let present = values_of(req, &key);
    let user = values_of(req, "aws:username").first().copied();
    if c.op == Op::Null {
        for v in &c.values {
            let want_absent = v == "true";
            if want_absent == present.is_empty() {
                return true;
            }
        }
        return false;
    }
    if present.is_empty() {
        if c.if_exists {
            return true;
        }
        return match c.qual {
            Qual::All => true,
            Qual::Any => false,
            Qual::Plain => c.negated,
        };
    }
    // For each request value: does it match some policy value?
    let mut hits = Vec::new();
    for r in &present {
        let mut hit = false;
        for v in &c.values {
            if op_matches(c.op, v, r, user) {
                hit = true;
            }
        }
        hits.push(hit);
    }
    match (c.qual, c.negated) {
        (Qual::Plain, false) => hits.iter().any(|&h| h),
        (Qual::Plain, true) => hits.iter().all(|&h| !h),
        (Qual::Any, false) => hits.iter().any(|&h| h),
        (Qual::Any, true) => hits.iter().any(|&h| !h),
        (Qual::All, false) => hits.iter().all(|&h| h),
        (Qual::All, true) => hits.iter().all(|&h| !h),
    }
}

fn uses_username(s: &Stmt) -> bool {
    let var = "${aws:username}";
    s.resources.iter().any(|r| r.contains(var))
        || s.conds.iter().any(|c| {
            matches!(c.op, Op::StringEquals | Op::StringLike)
                && c.values.iter().any(|v| v.contains(var))
        })
}

fn stmt_applies(s: &Stmt, req: &Req) -> bool {
    let user = values_of(req, "aws:username").first().copied();
    if uses_username(s) && user.is_none() {
        return false;
    }
    let listed = match &s.principal {
        None => true,
        Some(ids) => {
            let mut found = false;
            for id in ids {
                if id == "*" {
                    found = true;
                } else if let Some(caller) = &req.caller {
                    if caller.contains(id) {
                        found = true;
                    }
                }
            }
            found
        }
    };
    if listed == s.not_principal {
        return false;
    }
    let mut action_hit = false;
    for a in &s.actions {
        if text_matches(&a.to_lowercase(), &req.action.to_lowercase(), true, None) {
            action_hit = true;
        }
    }
    if action_hit == s.not_action {
        return false;
    }
    let mut resource_hit = false;
    for r in &s.resources {
        if text_matches(r, &req.resource, true, user) {
            resource_hit = true;
        }
    }
    if resource_hit == s.not_resource {
        return false;
    }
    s.conds.iter().all(|c| cond_holds(c, req))
}

fn reference(stmts: &[Stmt], req: &Req) -> Decision {
    let mut allowed = false;
    for s in stmts {
        if stmt_applies(s, req) {
            if !s.allow {
                return Decision::Deny;
            }
            allowed = true;
        }
    }
    if allowed {
        Decision::Allow
    } else {
        Decision::NotApplicable
    }
}

#[path = "reference/generate.rs"]
mod generate;

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn evaluate_agrees_with_the_reference(
        (stmts, shape) in generate::policy(),
        reqs in prop::collection::vec(generate::request(), 12),
    ) {
        let doc = generate::to_json(&stmts, shape);
        let kind = PolicyKind::Bucket { bucket: BUCKET.to_owned() };
        let policy = match Policy::parse(doc.as_bytes(), kind) {
            Ok(p) => p,
            Err(e) => return Err(TestCaseError::fail(format!("{e}\n{doc}"))),
        };
        for req in &reqs {
            let mut conds = ConditionValues::new();
            for (k, v) in &req.conds {
                conds.insert(k, v.clone());
            }
            let principal: Vec<String> = req.caller.clone().unwrap_or_default();
            let ctx = RequestContext {
                principal: &principal,
                anonymous: req.caller.is_none(),
                action: &req.action,
                resource: &req.resource,
                conditions: &conds,
            };
            let want = reference(&stmts, req);
            prop_assert_eq!(policy.evaluate(&ctx), want, "policy {}\nrequest {:?}", doc, req);
        }
    }
}

/// The generated cases are not lopsided: each decision is reached often, so agreement
/// above means something.
#[test]
fn generated_cases_reach_every_decision() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let mut counts = [0usize; 3];
    for _ in 0..1000 {
        let (stmts, _) = generate::policy().new_tree(&mut runner).unwrap().current();
        let req = generate::request().new_tree(&mut runner).unwrap().current();
        let i = match reference(&stmts, &req) {
            Decision::Allow => 0,
            Decision::Deny => 1,
            Decision::NotApplicable => 2,
        };
        counts[i] += 1;
    }
    eprintln!("Allow / Deny / NotApplicable over 1000 cases: {counts:?}");
    assert!(counts.iter().all(|&c| c >= 120), "{counts:?}");
}
