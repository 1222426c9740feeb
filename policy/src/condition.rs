//! The `Condition` element: operators, their values, and how a request satisfies them.
//!
//! Semantics (those of AWS IAM):
//!
//! - All operators of a block, and all keys under one operator, must hold (AND).
//! - Several policy values for one key: a positive operator holds when the request
//!   value matches any of them (OR); a negated one (`StringNotEquals`, `NotIpAddress`,
//!   ...) when it matches none of them. A negated operator is exactly the negation of
//!   its positive form.
//! - A key absent from the request: positive operators are false, negated ones true
//!   (AWS: "If the policy condition requires that the key is not matched ... and the
//!   right key is not present, the condition is true"). `...IfExists` makes any
//!   operator true on an absent key; `Null` tests presence itself.
//! - A key with several request values: plain operators hold when any value matches
//!   (negated: when none does); `ForAnyValue:` when some value satisfies the operator;
//!   `ForAllValues:` when every value does (true when the key is absent).
//! - A request value that does not read as the operator's type (a non-number for
//!   `Numeric*`, ...) matches no policy value.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use crate::values::{parse_bool, parse_date, parse_ip, Cidr, Num};
use crate::wildcard::{glob, Pattern, Syntax, Tok};
use crate::{clip, ConditionValues};

/// The positive operator an operator name is built on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Base {
    StringEquals,
    StringEqualsIgnoreCase,
    StringLike,
    NumericEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    BinaryEquals,
    IpAddress,
    ArnEquals,
    ArnLike,
    Null,
}

/// Every operator name (without qualifier or `IfExists`): its base and whether it is
/// the negated form.
const OPERATORS: &[(&str, Base, bool)] = &[
    ("StringEquals", Base::StringEquals, false),
    ("StringNotEquals", Base::StringEquals, true),
    (
        "StringEqualsIgnoreCase",
        Base::StringEqualsIgnoreCase,
        false,
    ),
    (
        "StringNotEqualsIgnoreCase",
        Base::StringEqualsIgnoreCase,
        true,
    ),
    ("StringLike", Base::StringLike, false),
    ("StringNotLike", Base::StringLike, true),
    ("NumericEquals", Base::NumericEquals, false),
    ("NumericNotEquals", Base::NumericEquals, true),
    ("NumericLessThan", Base::NumericLessThan, false),
    ("NumericLessThanEquals", Base::NumericLessThanEquals, false),
    ("NumericGreaterThan", Base::NumericGreaterThan, false),
    (
        "NumericGreaterThanEquals",
        Base::NumericGreaterThanEquals,
        false,
    ),
    ("DateEquals", Base::DateEquals, false),
    ("DateNotEquals", Base::DateEquals, true),
    ("DateLessThan", Base::DateLessThan, false),
    ("DateLessThanEquals", Base::DateLessThanEquals, false),
    ("DateGreaterThan", Base::DateGreaterThan, false),
    ("DateGreaterThanEquals", Base::DateGreaterThanEquals, false),
    ("Bool", Base::Bool, false),
    ("BinaryEquals", Base::BinaryEquals, false),
    ("IpAddress", Base::IpAddress, false),
    ("NotIpAddress", Base::IpAddress, true),
    ("ArnEquals", Base::ArnEquals, false),
    ("ArnNotEquals", Base::ArnEquals, true),
    ("ArnLike", Base::ArnLike, false),
    ("ArnNotLike", Base::ArnLike, true),
    ("Null", Base::Null, false),
];

/// The set qualifier before an operator name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Qualifier {
    Plain,
    ForAnyValue,
    ForAllValues,
}

/// A full operator name, e.g. `ForAllValues:StringNotLikeIfExists`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Operator {
    pub base: Base,
    pub negated: bool,
    pub if_exists: bool,
    pub qualifier: Qualifier,
}

impl Operator {
    pub fn parse(name: &str) -> Option<Operator> {
        let (qualifier, rest) = if let Some(r) = name.strip_prefix("ForAnyValue:") {
            (Qualifier::ForAnyValue, r)
        } else if let Some(r) = name.strip_prefix("ForAllValues:") {
            (Qualifier::ForAllValues, r)
        } else {
            (Qualifier::Plain, name)
        };
        let (if_exists, rest) = match rest.strip_suffix("IfExists") {
            Some(r) => (true, r),
            None => (false, rest),
        };
        let &(_, base, negated) = OPERATORS.iter().find(|(n, _, _)| *n == rest)?;
        // `Null` tests presence itself: neither `IfExists` nor a set qualifier applies.
        if base == Base::Null && (if_exists || qualifier != Qualifier::Plain) {
            return None;
        }
        Some(Operator {
            base,
            negated,
            if_exists,
            qualifier,
        })
    }
}

/// The policy values of one key, read for the operator's type.
#[derive(Debug, Clone)]
pub(crate) enum Values {
    /// String, binary and ARN operators (wildcards only for `*Like` and `Arn*`).
    Strings(Vec<Pattern>),
    Numbers(Vec<Num>),
    /// Nanoseconds since the Unix epoch.
    Dates(Vec<i128>),
    Bools(Vec<bool>),
    Cidrs(Vec<Cidr>),
}

/// One `operator: { key: values }` entry.
#[derive(Debug, Clone)]
pub(crate) struct Clause {
    pub op: Operator,
    /// Lowercased.
    pub key: String,
    /// The values as written (numbers and booleans in their JSON text).
    pub raw: Vec<String>,
    pub values: Values,
}

/// Reads a statement's `Condition` element. `variables`: whether `${...}` is a policy
/// variable (version 2012-10-17). Errors are messages without the statement's place.
pub(crate) fn parse_condition(v: &Value, variables: bool) -> Result<Vec<Clause>, String> {
    let Value::Object(ops) = v else {
        return Err("Condition: must be an object".into());
    };
    let mut clauses = Vec::new();
    for (name, keys) in ops {
        let op = Operator::parse(name)
            .ok_or_else(|| format!("Condition: unknown condition operator '{}'", clip(name)))?;
        let Value::Object(keys) = keys else {
            return Err(format!("Condition: {name}: must be an object of keys"));
        };
        parse_keys(&mut clauses, op, name, keys, variables)?;
    }
    Ok(clauses)
}

fn parse_keys(
    clauses: &mut Vec<Clause>,
    op: Operator,
    name: &str,
    keys: &Map<String, Value>,
    variables: bool,
) -> Result<(), String> {
    for (key, vals) in keys {
        let at = format!("Condition: {name}: '{}'", clip(key));
        if key.is_empty() {
            return Err(format!("Condition: {name}: empty condition key"));
        }
        let raw = scalars(vals).map_err(|e| format!("{at}: {e}"))?;
        let bad = |what: &str, v: &str| format!("{at}: '{}' is not {what}", clip(v));
        let values = match op.base {
            Base::StringEquals | Base::StringEqualsIgnoreCase | Base::StringLike => {
                let syntax = Syntax {
                    wildcards: op.base == Base::StringLike,
                    variables,
                };
                Values::Strings(raw.iter().map(|s| Pattern::parse(s, syntax)).collect())
            }
            Base::BinaryEquals => {
                let syntax = Syntax {
                    wildcards: false,
                    variables: false,
                };
                Values::Strings(raw.iter().map(|s| Pattern::parse(s, syntax)).collect())
            }
            Base::ArnEquals | Base::ArnLike => {
                let syntax = Syntax {
                    wildcards: true,
                    variables,
                };
                let mut pats = Vec::with_capacity(raw.len());
                for s in &raw {
                    let p = Pattern::parse(s, syntax);
                    if !p.has_variable() && s.matches(':').count() < 5 {
                        return Err(bad("an ARN", s));
                    }
                    pats.push(p);
                }
                Values::Strings(pats)
            }
            Base::NumericEquals
            | Base::NumericLessThan
            | Base::NumericLessThanEquals
            | Base::NumericGreaterThan
            | Base::NumericGreaterThanEquals => Values::Numbers(
                raw.iter()
                    .map(|s| Num::parse(s).ok_or_else(|| bad("a number", s)))
                    .collect::<Result<_, _>>()?,
            ),
            Base::DateEquals
            | Base::DateLessThan
            | Base::DateLessThanEquals
            | Base::DateGreaterThan
            | Base::DateGreaterThanEquals => Values::Dates(
                raw.iter()
                    .map(|s| parse_date(s).ok_or_else(|| bad("a date", s)))
                    .collect::<Result<_, _>>()?,
            ),
            Base::Bool | Base::Null => Values::Bools(
                raw.iter()
                    .map(|s| parse_bool(s).ok_or_else(|| bad("a boolean", s)))
                    .collect::<Result<_, _>>()?,
            ),
            Base::IpAddress => Values::Cidrs(
                raw.iter()
                    .map(|s| Cidr::parse(s).ok_or_else(|| bad("an IP address or CIDR block", s)))
                    .collect::<Result<_, _>>()?,
            ),
        };
        clauses.push(Clause {
            op,
            key: key.to_lowercase(),
            raw,
            values,
        });
    }
    Ok(())
}

/// A condition value: a string, number or boolean, or a non-empty array of them.
fn scalars(v: &Value) -> Result<Vec<String>, String> {
    fn one(v: &Value) -> Result<String, String> {
        match v {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            Value::Null => Err("null is not a condition value".into()),
            Value::Array(_) | Value::Object(_) => Err("nested values are not allowed".into()),
        }
    }
    match v {
        Value::Array(items) if items.is_empty() => Err("empty list of values".into()),
        Value::Array(items) => items.iter().map(one).collect(),
        v => one(v).map(|s| vec![s]),
    }
}

impl Clause {
    /// Whether the request satisfies this clause.
    pub fn holds(&self, ctx: &ConditionValues) -> bool {
        let present = ctx.get(&self.key).filter(|v| !v.is_empty());
        if self.op.base == Base::Null {
            let Values::Bools(want) = &self.values else {
                return false;
            };
            // `"Null": {"k": "true"}` holds when the key is absent.
            return want.iter().any(|&absent| absent == present.is_none());
        }
        let Some(reqs) = present else {
            if self.op.if_exists {
                return true;
            }
            return match self.op.qualifier {
                Qualifier::ForAllValues => true,
                Qualifier::ForAnyValue => false,
                Qualifier::Plain => self.op.negated,
            };
        };
        // `m(r)`: the request value `r` matches one of the policy values (positive form).
        let m = |r: &String| self.matches_any(r, ctx);
        match self.op.qualifier {
            Qualifier::Plain => reqs.iter().any(m) != self.op.negated,
            Qualifier::ForAnyValue => reqs.iter().any(|r| m(r) != self.op.negated),
            Qualifier::ForAllValues => reqs.iter().all(|r| m(r) != self.op.negated),
        }
    }

    /// Whether the request value `r` matches any policy value under the base operator.
    fn matches_any(&self, r: &str, ctx: &ConditionValues) -> bool {
        match &self.values {
            Values::Strings(pats) => match self.op.base {
                Base::ArnEquals | Base::ArnLike => pats.iter().any(|p| arn_matches(p, r, ctx)),
                Base::StringEqualsIgnoreCase => pats.iter().any(|p| p.matches(r, ctx, true)),
                _ => pats.iter().any(|p| p.matches(r, ctx, false)),
            },
            Values::Numbers(ns) => {
                let Some(r) = Num::parse(r) else {
                    return false;
                };
                ns.iter()
                    .any(|&n| r.compare(n).is_some_and(|o| ordered(self.op.base, o)))
            }
            Values::Dates(ds) => {
                let Some(r) = parse_date(r) else {
                    return false;
                };
                ds.iter().any(|d| ordered(self.op.base, r.cmp(d)))
            }
            Values::Bools(bs) => parse_bool(r).is_some_and(|r| bs.contains(&r)),
            Values::Cidrs(cs) => parse_ip(r).is_some_and(|ip| cs.iter().any(|c| c.contains(ip))),
        }
    }

    /// The variable keys the clause's values use.
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        let pats: &[Pattern] = match &self.values {
            Values::Strings(p) => p,
            _ => &[],
        };
        pats.iter().flat_map(|p| p.variables())
    }
}

/// Whether `request ⋈ policy` (the ordering of the request value against the policy
/// value) satisfies a numeric or date operator.
fn ordered(base: Base, o: Ordering) -> bool {
    match base {
        Base::NumericEquals | Base::DateEquals => o == Ordering::Equal,
        Base::NumericLessThan | Base::DateLessThan => o == Ordering::Less,
        Base::NumericLessThanEquals | Base::DateLessThanEquals => o != Ordering::Greater,
        Base::NumericGreaterThan | Base::DateGreaterThan => o == Ordering::Greater,
        Base::NumericGreaterThanEquals | Base::DateGreaterThanEquals => o != Ordering::Less,
        _ => false,
    }
}

/// ARN matching: the six `:`-separated parts compared one by one (the last part takes
/// the rest), case-sensitively, wildcards not crossing a `:` between parts.
fn arn_matches(p: &Pattern, r: &str, ctx: &ConditionValues) -> bool {
    let Some(toks) = p.resolve(ctx, false) else {
        return false;
    };
    let pat_parts: Vec<&[Tok]> = split_toks(&toks);
    let req: Vec<char> = r.chars().collect();
    let req_parts: Vec<&[char]> = split_chars(&req);
    pat_parts.len() == 6
        && req_parts.len() == 6
        && pat_parts.iter().zip(&req_parts).all(|(p, r)| glob(p, r))
}

fn split_toks(toks: &[Tok]) -> Vec<&[Tok]> {
    let mut parts = Vec::with_capacity(6);
    let mut rest = toks;
    while parts.len() < 5 {
        match rest.iter().position(|t| *t == Tok::Lit(':')) {
            Some(i) => {
                parts.push(&rest[..i]);
                rest = &rest[i + 1..];
            }
            None => break,
        }
    }
    parts.push(rest);
    parts
}

fn split_chars(chars: &[char]) -> Vec<&[char]> {
    let mut parts = Vec::with_capacity(6);
    let mut rest = chars;
    while parts.len() < 5 {
        match rest.iter().position(|&c| c == ':') {
            Some(i) => {
                parts.push(&rest[..i]);
                rest = &rest[i + 1..];
            }
            None => break,
        }
    }
    parts.push(rest);
    parts
}

#[cfg(test)]
#[path = "condition_tests.rs"]
mod tests;
