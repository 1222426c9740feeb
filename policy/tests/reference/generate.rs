//! Random policies and requests for the reference property test, and the policies'
//! JSON text.

use super::*;

/// How a policy is written out (the same policy has several JSON shapes).
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// A one-statement policy as `"Statement": {...}` rather than `[{...}]`.
    single_object: bool,
    /// Single values as bare strings / numbers / booleans rather than lists.
    compact: bool,
    /// Pretty-printed.
    pretty: bool,
    /// With an `Id`.
    id: bool,
}

/// `key` with the letters whose bit is set in `mask` uppercased.
fn with_case(key: &str, mask: u64) -> String {
    key.chars()
        .enumerate()
        .map(|(i, c)| {
            if mask >> (i % 64) & 1 == 1 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

fn pick(pool: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::sample::select(pool).prop_map(str::to_owned)
}

/// The random draws behind one condition.
type CondDraw = (
    usize,
    bool,
    bool,
    usize,
    (&'static str, u64, u8),
    Vec<usize>,
    bool,
);

fn cond() -> impl Strategy<Value = Cond> {
    (
        0..6usize,
        any::<bool>(),
        any::<bool>(),
        0..3usize,
        (prop::sample::select(KEYS), any::<u64>(), any::<u8>()),
        prop::collection::vec(0..100usize, 1..4),
        any::<bool>(),
    )
        .prop_map(make_cond)
}

fn make_cond(draw: CondDraw) -> Cond {
    let (op, negated, if_exists, qual, (any_key, mask, roll), idx, compact) = draw;
    let op = [
        Op::StringEquals,
        Op::StringLike,
        Op::NumericLessThan,
        Op::IpAddress,
        Op::Bool,
        Op::Null,
    ][op];
    let (pool, natural): (&[&str], &[&str]) = match op {
        Op::StringEquals | Op::StringLike => (STRING_VALUES, &["k:str", "k:tags", "aws:username"]),
        Op::NumericLessThan => (NUMBER_VALUES, &["k:num"]),
        Op::IpAddress => (CIDR_VALUES, &["aws:sourceip"]),
        Op::Bool => (BOOL_VALUES, &["aws:securetransport"]),
        Op::Null => (BOOL_VALUES, KEYS),
    };
    let values = idx
        .iter()
        .map(|i| pool[i % pool.len()].to_owned())
        .collect();
    // Mostly a key of the operator's type; sometimes any key.
    let key = if roll < 200 {
        natural[usize::from(roll) % natural.len()]
    } else {
        any_key
    };
    let negatable = matches!(op, Op::StringEquals | Op::StringLike | Op::IpAddress);
    let is_null = op == Op::Null;
    Cond {
        op,
        negated: negated && negatable,
        if_exists: if_exists && !is_null,
        qual: if is_null {
            Qual::Plain
        } else {
            [Qual::Plain, Qual::Any, Qual::All][qual]
        },
        key: with_case(key, mask),
        values,
        compact,
    }
}

fn op_name(c: &Cond) -> String {
    let base = match (c.op, c.negated) {
        (Op::StringEquals, false) => "StringEquals",
        (Op::StringEquals, true) => "StringNotEquals",
        (Op::StringLike, false) => "StringLike",
        (Op::StringLike, true) => "StringNotLike",
        (Op::NumericLessThan, _) => "NumericLessThan",
        (Op::IpAddress, false) => "IpAddress",
        (Op::IpAddress, true) => "NotIpAddress",
        (Op::Bool, _) => "Bool",
        (Op::Null, _) => "Null",
    };
    let qual = match c.qual {
        Qual::Plain => "",
        Qual::Any => "ForAnyValue:",
        Qual::All => "ForAllValues:",
    };
    let suffix = if c.if_exists { "IfExists" } else { "" };
    format!("{qual}{base}{suffix}")
}

fn stmt() -> impl Strategy<Value = Stmt> {
    let ids: &'static [&'static str] = &[
        "arn:aws:iam::1:user/alice",
        "arn:aws:iam::1:user/bob",
        "AKIACAROL",
        "arn:aws:iam::1:user/dave",
        "*",
    ];
    (
        any::<bool>(),
        prop::option::weighted(0.4, prop::collection::vec(pick(ids), 1..4)),
        prop::bool::weighted(0.2),
        prop::collection::vec(pick(POLICY_ACTIONS), 1..4),
        prop::bool::weighted(0.2),
        prop::collection::vec(pick(POLICY_RESOURCES), 1..3),
        prop::bool::weighted(0.2),
        prop::collection::vec(cond(), 0..3),
    )
        .prop_map(
            |(
                allow,
                principal,
                not_principal,
                actions,
                not_action,
                resources,
                not_resource,
                conds,
            )| {
                // One JSON object per operator name: drop a repeated (operator, key).
                let mut kept: Vec<Cond> = Vec::new();
                for c in conds {
                    if !kept
                        .iter()
                        .any(|k| op_name(k) == op_name(&c) && k.key == c.key)
                    {
                        kept.push(c);
                    }
                }
                Stmt {
                    allow,
                    principal,
                    // NotPrincipal goes with Deny only (an Allow with it is malformed).
                    not_principal: not_principal && !allow,
                    actions,
                    not_action,
                    resources,
                    not_resource,
                    conds: kept,
                }
            },
        )
}

pub fn policy() -> impl Strategy<Value = (Vec<Stmt>, Shape)> {
    (
        prop::collection::vec(stmt(), 1..8),
        any::<(bool, bool, bool, bool)>(),
    )
        .prop_map(|(stmts, (single_object, compact, pretty, id))| {
            let shape = Shape {
                single_object,
                compact,
                pretty,
                id,
            };
            (stmts, shape)
        })
}

pub fn request() -> impl Strategy<Value = Req> {
    const CALLERS_AND_OTHER: &[&str] = &[CALLERS[0], CALLERS[1], CALLERS[2], "AKIAOTHER"];
    let callers: &'static [&'static str] = CALLERS_AND_OTHER;
    (
        prop::option::weighted(0.85, prop::sample::subsequence(callers, 1..4)),
        pick(REQUEST_ACTIONS),
        pick(REQUEST_RESOURCES),
        prop::collection::vec(
            prop::option::weighted(
                0.75,
                (prop::collection::vec(0..100usize, 1..4), any::<u64>()),
            ),
            KEYS.len(),
        ),
    )
        .prop_map(|(caller, action, resource, keys)| {
            let mut conds = Vec::new();
            for (i, present) in keys.into_iter().enumerate() {
                if let Some((idx, mask)) = present {
                    let pool = REQUEST_VALUES[i];
                    // Only k:tags often has several values; other keys mostly one.
                    let n = if KEYS[i] == "k:tags" || mask & 0xf00 == 0 {
                        idx.len()
                    } else {
                        1
                    };
                    for j in &idx[..n] {
                        // Each value may be sent under a differently cased key.
                        let case = mask.rotate_left(*j as u32);
                        conds.push((with_case(KEYS[i], case), pool[j % pool.len()].to_owned()));
                    }
                }
            }
            Req {
                caller: caller.map(|c| c.into_iter().map(str::to_owned).collect()),
                action,
                resource,
                conds,
            }
        })
}

/// A list of strings, or a bare string when `compact` and there is one.
fn strings(items: &[String], compact: bool) -> Value {
    if compact && items.len() == 1 {
        json!(items[0])
    } else {
        json!(items)
    }
}

fn cond_values(c: &Cond) -> Value {
    if !c.compact || c.values.len() != 1 {
        return json!(c.values);
    }
    let v = &c.values[0];
    match c.op {
        Op::NumericLessThan => match v.parse::<i64>() {
            Ok(i) => json!(i),
            Err(_) => json!(v.parse::<f64>().unwrap()),
        },
        Op::Bool | Op::Null => json!(v == "true"),
        _ => json!(v),
    }
}

pub fn to_json(stmts: &[Stmt], shape: Shape) -> String {
    let statements: Vec<Value> = stmts
        .iter()
        .map(|s| {
            let mut m = Map::new();
            m.insert(
                "Effect".into(),
                json!(if s.allow { "Allow" } else { "Deny" }),
            );
            let principal = match &s.principal {
                None => json!("*"),
                Some(ids) => json!({ "AWS": strings(ids, shape.compact) }),
            };
            let name = if s.not_principal {
                "NotPrincipal"
            } else {
                "Principal"
            };
            m.insert(name.into(), principal);
            let name = if s.not_action { "NotAction" } else { "Action" };
            m.insert(name.into(), strings(&s.actions, shape.compact));
            let name = if s.not_resource {
                "NotResource"
            } else {
                "Resource"
            };
            m.insert(name.into(), strings(&s.resources, shape.compact));
            if !s.conds.is_empty() {
                let mut ops = Map::new();
                for c in &s.conds {
                    let entry = ops.entry(op_name(c)).or_insert_with(|| json!({}));
                    entry
                        .as_object_mut()
                        .unwrap()
                        .insert(c.key.clone(), cond_values(c));
                }
                m.insert("Condition".into(), Value::Object(ops));
            }
            Value::Object(m)
        })
        .collect();
    let mut top = Map::new();
    top.insert("Version".into(), json!("2012-10-17"));
    if shape.id {
        top.insert("Id".into(), json!("reference-test"));
    }
    let statement = if shape.single_object && statements.len() == 1 {
        statements[0].clone()
    } else {
        Value::Array(statements)
    };
    top.insert("Statement".into(), statement);
    let top = Value::Object(top);
    if shape.pretty {
        serde_json::to_string_pretty(&top).unwrap()
    } else {
        top.to_string()
    }
}
