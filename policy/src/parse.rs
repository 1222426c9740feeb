//! From JSON bytes to validated [`Statement`]s.
//!
//! Every refusal is a [`PolicyError::Malformed`] whose message says where
//! (`Statement[i]` counts from 0, in document order) and what.

use serde_json::{Map, Value};

use crate::condition::parse_condition;
use crate::model::{Effect, PrincipalClause, Principals, Statement, Targets};
use crate::wildcard::{can_match_prefix, Pattern, Syntax};
use crate::{clip, is_known_action, PolicyError, PolicyKind};

/// The largest policy document accepted, in bytes (S3's limit for bucket policies).
pub const MAX_POLICY_LEN: usize = 20 * 1024;

/// The ARN prefix of every S3 bucket and object resource.
const S3_ARN: &str = "arn:aws:s3:::";

pub(crate) struct Parsed {
    pub version: Option<String>,
    pub id: Option<String>,
    pub statements: Vec<Statement>,
}

fn malformed(msg: impl Into<String>) -> PolicyError {
    PolicyError::Malformed(msg.into())
}

pub(crate) fn parse(doc: &[u8], kind: &PolicyKind) -> Result<Parsed, PolicyError> {
    if doc.len() > MAX_POLICY_LEN {
        return Err(PolicyError::TooLarge);
    }
    // Nesting is bounded (128 levels); a repeated key in an object is an error.
    let root: Value = crate::json::from_slice(doc)
        .map_err(|e| malformed(format!("This policy contains invalid Json: {e}")))?;
    let Value::Object(top) = root else {
        return Err(malformed("Policy must be a JSON object"));
    };
    let mut version = None;
    let mut id = None;
    let mut statement = None;
    for (k, v) in &top {
        match k.as_str() {
            "Version" => match v {
                Value::String(s) if s == "2012-10-17" || s == "2008-10-17" => {
                    version = Some(s.clone());
                }
                _ => {
                    return Err(malformed(format!(
                        "Version: must be \"2012-10-17\" or \"2008-10-17\", got {}",
                        short(v)
                    )))
                }
            },
            "Id" => match v {
                Value::String(s) => id = Some(s.clone()),
                _ => return Err(malformed("Id: must be a string")),
            },
            "Statement" => statement = Some(v),
            other => {
                return Err(malformed(format!(
                    "Policy has an unknown field '{}'",
                    clip(other)
                )))
            }
        }
    }
    // Policy variables exist only in the 2012-10-17 language.
    let variables = version.as_deref() == Some("2012-10-17");
    let items: Vec<&Value> = match statement {
        None => return Err(malformed("Policy has no Statement")),
        Some(Value::Array(a)) if a.is_empty() => {
            return Err(malformed("Statement: must not be empty"))
        }
        Some(Value::Array(a)) => a.iter().collect(),
        Some(v @ Value::Object(_)) => vec![v],
        Some(_) => return Err(malformed("Statement: must be an object or an array")),
    };
    let mut statements = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let Value::Object(obj) = item else {
            return Err(malformed(format!("Statement[{i}]: must be an object")));
        };
        let s = parse_statement(obj, kind, variables)
            .map_err(|e| malformed(format!("Statement[{i}]: {e}")))?;
        statements.push(s);
    }
    Ok(Parsed {
        version,
        id,
        statements,
    })
}

/// A JSON value in an error message, cut short.
fn short(v: &Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(40) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s,
    }
}

/// Takes exactly one of the two fields `pos` / `neg`; `Ok(None)` when neither is there.
fn one_of<'a>(
    obj: &'a Map<String, Value>,
    pos: &str,
    neg: &str,
) -> Result<Option<(bool, &'a Value)>, String> {
    match (obj.get(pos), obj.get(neg)) {
        (Some(_), Some(_)) => Err(format!("has both {pos} and {neg}")),
        (Some(v), None) => Ok(Some((false, v))),
        (None, Some(v)) => Ok(Some((true, v))),
        (None, None) => Ok(None),
    }
}

fn parse_statement(
    obj: &Map<String, Value>,
    kind: &PolicyKind,
    variables: bool,
) -> Result<Statement, String> {
    for k in obj.keys() {
        if !matches!(
            k.as_str(),
            "Sid"
                | "Effect"
                | "Principal"
                | "NotPrincipal"
                | "Action"
                | "NotAction"
                | "Resource"
                | "NotResource"
                | "Condition"
        ) {
            return Err(format!("unknown field '{}'", clip(k)));
        }
    }
    let sid = match obj.get("Sid") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err("Sid: must be a string".into()),
    };
    let effect = match obj.get("Effect") {
        Some(Value::String(s)) if s == "Allow" => Effect::Allow,
        Some(Value::String(s)) if s == "Deny" => Effect::Deny,
        Some(v) => {
            return Err(format!(
                "Effect: must be \"Allow\" or \"Deny\", got {}",
                short(v)
            ))
        }
        None => return Err("missing Effect".into()),
    };

    let principal = match (kind, one_of(obj, "Principal", "NotPrincipal")?) {
        (PolicyKind::Identity, None) => PrincipalClause::Implicit,
        (PolicyKind::Identity, Some((neg, _))) => {
            let name = if neg { "NotPrincipal" } else { "Principal" };
            return Err(format!("{name}: not allowed in an identity policy"));
        }
        (PolicyKind::Bucket { .. }, None) => return Err("missing Principal".into()),
        (PolicyKind::Bucket { .. }, Some((false, v))) => {
            PrincipalClause::Principal(parse_principals(v).map_err(|e| format!("Principal: {e}"))?)
        }
        // "Everyone but these" may be denied, never allowed (as S3 says).
        (PolicyKind::Bucket { .. }, Some((true, _))) if effect == Effect::Allow => {
            return Err("NotPrincipal: only with \"Effect\": \"Deny\"".into())
        }
        (PolicyKind::Bucket { .. }, Some((true, v))) => PrincipalClause::NotPrincipal(
            parse_principals(v).map_err(|e| format!("NotPrincipal: {e}"))?,
        ),
    };

    let actions = match one_of(obj, "Action", "NotAction")? {
        None => return Err("missing Action".into()),
        Some((negated, v)) => {
            let name = if negated { "NotAction" } else { "Action" };
            let raw = string_list(v).map_err(|e| format!("{name}: {e}"))?;
            let patterns = raw
                .iter()
                .map(|a| parse_action(a).map_err(|e| format!("{name}: {e}")))
                .collect::<Result<_, _>>()?;
            Targets {
                negated,
                raw,
                patterns,
            }
        }
    };

    let resources = match one_of(obj, "Resource", "NotResource")? {
        None => return Err("missing Resource".into()),
        Some((negated, v)) => {
            let name = if negated { "NotResource" } else { "Resource" };
            let raw = string_list(v).map_err(|e| format!("{name}: {e}"))?;
            let patterns = raw
                .iter()
                .map(|r| parse_resource(r, kind, variables).map_err(|e| format!("{name}: {e}")))
                .collect::<Result<_, _>>()?;
            Targets {
                negated,
                raw,
                patterns,
            }
        }
    };

    let conditions = match obj.get("Condition") {
        None => Vec::new(),
        Some(v) => parse_condition(v, variables)?,
    };

    let mut vars: Vec<String> = Vec::new();
    let used = resources
        .patterns
        .iter()
        .flat_map(|p| p.variables())
        .chain(conditions.iter().flat_map(|c| c.variables()));
    for k in used {
        if !vars.iter().any(|v| v == k) {
            vars.push(k.to_owned());
        }
    }

    Ok(Statement {
        sid,
        effect,
        principal,
        actions,
        resources,
        conditions,
        variables: vars,
    })
}

/// A string, or a non-empty array of strings.
fn string_list(v: &Value) -> Result<Vec<String>, String> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) if items.is_empty() => Err("must not be an empty list".into()),
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.clone()),
                other => Err(format!("expected a string, got {}", short(other))),
            })
            .collect(),
        other => Err(format!(
            "expected a string or a list of strings, got {}",
            short(other)
        )),
    }
}

fn parse_principals(v: &Value) -> Result<Principals, String> {
    let mut p = Principals::default();
    match v {
        Value::String(s) if s == "*" => p.wildcard = true,
        Value::Object(map) if !map.is_empty() => {
            for (typ, ids) in map {
                let ids = string_list(ids).map_err(|e| format!("{}: {e}", clip(typ)))?;
                for id in ids {
                    if id.is_empty() {
                        return Err(format!("{}: invalid principal \"\"", clip(typ)));
                    }
                    match typ.as_str() {
                        "AWS" if id == "*" => p.wildcard = true,
                        "AWS" | "CanonicalUser" => p.ids.push(id),
                        "Service" | "Federated" => {}
                        other => return Err(format!("unknown principal type '{}'", clip(other))),
                    }
                }
            }
        }
        other => {
            return Err(format!(
                "must be \"*\" or an object such as {{\"AWS\": ...}}, got {}",
                short(other)
            ))
        }
    }
    Ok(p)
}

/// `*`, or `s3:` and an action name (wildcards allowed; without any, a known action).
fn parse_action(a: &str) -> Result<Pattern, String> {
    let syntax = Syntax {
        wildcards: true,
        variables: false,
    };
    if a == "*" {
        return Ok(Pattern::parse(a, syntax));
    }
    let Some((service, name)) = a.split_once(':') else {
        return Err(format!("invalid action '{}'", clip(a)));
    };
    if !service.eq_ignore_ascii_case("s3") {
        return Err(format!(
            "invalid action '{}': the service must be s3",
            clip(a)
        ));
    }
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '*' || c == '?')
    {
        return Err(format!("invalid action '{}'", clip(a)));
    }
    let pattern = Pattern::parse(a, syntax);
    if !pattern.has_wildcard() && !is_known_action(a) {
        return Err(format!("unknown action '{}'", clip(a)));
    }
    Ok(pattern)
}

/// `*`, or an S3 bucket / object ARN; for a bucket policy, one that can address the
/// policy's bucket or objects in it.
fn parse_resource(r: &str, kind: &PolicyKind, variables: bool) -> Result<Pattern, String> {
    let syntax = Syntax {
        wildcards: true,
        variables,
    };
    let invalid = || format!("'{}': Policy has invalid resource", clip(r));
    if r == "*" {
        return Ok(Pattern::parse(r, syntax));
    }
    let rest = r.strip_prefix(S3_ARN).ok_or_else(invalid)?;
    if rest.is_empty() {
        return Err(invalid());
    }
    if let PolicyKind::Bucket { bucket } = kind {
        if !can_match_prefix(&Pattern::parse(rest, syntax).toks, bucket, '/') {
            return Err(invalid());
        }
    }
    Ok(Pattern::parse(r, syntax))
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
