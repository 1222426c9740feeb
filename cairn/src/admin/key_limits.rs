//! `POST /admin/keys/{ak}/limits`: sets or clears an access key's rate-limit override (what
//! `cairn key set-limit` calls), and the limits column of `GET /admin/keys`.
//!
//! The body is JSON: `{"ops_per_sec": N, "bytes_per_sec": N}`, each optional (absent: left
//! as it is), a number (0: the override is removed and the server's default applies again)
//! or `"unlimited"` (no limit for this key, whatever the default); or `{"clear": true}`,
//! which removes both. The answer is the key's override afterwards, `null` in a dimension
//! meaning the default. The change is in metadata (replicated), applied on this gateway at
//! once and on every other within a heartbeat (see [`crate::cluster::watch_cluster`]);
//! the limits themselves are enforced per gateway by `cairn_api::limits`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use cairn_metadata::key_limits::{self, KeyLimits, Limit, LimitChange};
use cairn_metadata::{Command, MetadataError, MetadataStore};
use serde::Serialize;
use serde_json::Value;

use super::key_lookup::{existing_key, key_change_failed};
use super::{json, AdminState};

pub(super) fn routes() -> Router<Arc<AdminState>> {
    Router::new().route("/admin/keys/{ak}/limits", post(set_limits))
}

/// A key's override as the admin API shows it: per dimension `null` (the default), a
/// number, or `"unlimited"`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(super) struct LimitsView {
    pub ops_per_sec: Value,
    pub bytes_per_sec: Value,
}

fn limit_value(l: Option<Limit>) -> Value {
    match l {
        None => Value::Null,
        Some(Limit::PerSecond(n)) => Value::from(n),
        Some(Limit::Unlimited) => Value::from("unlimited"),
    }
}

impl From<KeyLimits> for LimitsView {
    fn from(l: KeyLimits) -> LimitsView {
        LimitsView {
            ops_per_sec: limit_value(l.ops_per_sec),
            bytes_per_sec: limit_value(l.bytes_per_sec),
        }
    }
}

/// Every key's override (keys without one are absent).
pub(super) async fn read_all(
    meta: &dyn MetadataStore,
) -> Result<std::collections::BTreeMap<String, KeyLimits>, MetadataError> {
    Ok(key_limits::decode_all(
        &meta.scan_sys(key_limits::LIMITS_PREFIX).await?,
    ))
}

/// One dimension of a request body.
fn change(body: &serde_json::Map<String, Value>, field: &str) -> Result<LimitChange, String> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(LimitChange::Keep),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(0) => Ok(LimitChange::Clear),
            Some(n) => Ok(LimitChange::Set(Limit::PerSecond(n))),
            None => Err(format!(
                "{field} must be a whole number ≥ 0 or \"unlimited\""
            )),
        },
        Some(Value::String(s)) if s.eq_ignore_ascii_case("unlimited") => {
            Ok(LimitChange::Set(Limit::Unlimited))
        }
        Some(other) => Err(format!(
            "{field} must be a whole number ≥ 0 or \"unlimited\", not {other}"
        )),
    }
}

/// The changes a request body asks for.
fn parse_request(body: &[u8]) -> Result<(LimitChange, LimitChange), String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("malformed JSON: {e}"))?;
    let Value::Object(map) = value else {
        return Err("expected a JSON object".into());
    };
    if let Some(unknown) = map
        .keys()
        .find(|k| !["ops_per_sec", "bytes_per_sec", "clear"].contains(&k.as_str()))
    {
        return Err(format!("unknown field {unknown:?}"));
    }
    let ops = change(&map, "ops_per_sec")?;
    let bytes = change(&map, "bytes_per_sec")?;
    match map.get("clear") {
        None | Some(Value::Bool(false)) => {}
        Some(Value::Bool(true)) if ops == LimitChange::Keep && bytes == LimitChange::Keep => {
            return Ok((LimitChange::Clear, LimitChange::Clear));
        }
        Some(Value::Bool(true)) => {
            return Err(
                "clear removes both limits; give it without ops_per_sec and bytes_per_sec".into(),
            )
        }
        Some(other) => return Err(format!("clear must be true or false, not {other}")),
    }
    if ops == LimitChange::Keep && bytes == LimitChange::Keep {
        return Err("nothing to change: give ops_per_sec, bytes_per_sec or clear".into());
    }
    Ok((ops, bytes))
}

#[derive(Serialize)]
struct LimitsChanged {
    access_key: String,
    name: String,
    limits: LimitsView,
}

async fn set_limits(
    State(st): State<Arc<AdminState>>,
    Path(ak): Path<String>,
    body: Bytes,
) -> Response {
    let (ops_per_sec, bytes_per_sec) = match parse_request(&body) {
        Ok(c) => c,
        Err(m) => return (StatusCode::BAD_REQUEST, format!("{m}\n")).into_response(),
    };
    let rec = match existing_key(&st, &ak).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let meta = st.objects.metadata();
    let cmd = Command::SetAccessKeyLimits {
        access_key: ak.clone(),
        ops_per_sec,
        bytes_per_sec,
    };
    if let Err(e) = meta.apply(cmd).await {
        return key_change_failed(e);
    }
    // What the key has now (another change may have landed meanwhile: the stored value is
    // the truth). Should the read fail, the watcher brings it within a heartbeat.
    let now = match meta.get_sys(&key_limits::limits_key(&ak)).await {
        Ok(v) => v.map(|v| key_limits::decode(&v)).transpose(),
        Err(e) => Err(e),
    };
    let limits = match now {
        Ok(l) => {
            let l = l.unwrap_or_default();
            st.keys.set_limits(&ak, l);
            l
        }
        Err(e) => {
            tracing::warn!(access_key = %ak, error = %e, "reading back a key's rate limits");
            let mut l = st.keys.limits(&ak);
            l.ops_per_sec = ops_per_sec.apply(l.ops_per_sec);
            l.bytes_per_sec = bytes_per_sec.apply(l.bytes_per_sec);
            l
        }
    };
    tracing::info!(
        access_key = %ak,
        ops_per_sec = ?limits.ops_per_sec,
        bytes_per_sec = ?limits.bytes_per_sec,
        "access key rate limits changed"
    );
    json(
        StatusCode::OK,
        &LimitsChanged {
            access_key: ak,
            name: rec.name,
            limits: limits.into(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use LimitChange::*;

    #[test]
    fn requests_are_parsed_strictly() {
        let p = |s: &str| parse_request(s.as_bytes());
        assert_eq!(
            p(r#"{"ops_per_sec": 20}"#),
            Ok((Set(Limit::PerSecond(20)), Keep))
        );
        assert_eq!(
            p(r#"{"ops_per_sec": 0, "bytes_per_sec": "unlimited"}"#),
            Ok((Clear, Set(Limit::Unlimited)))
        );
        assert_eq!(p(r#"{"clear": true}"#), Ok((Clear, Clear)));
        for bad in [
            "",
            "[]",
            "{}",
            r#"{"clear": false}"#,
            r#"{"ops_per_sec": -1}"#,
            r#"{"ops_per_sec": 1.5}"#,
            r#"{"ops_per_sec": "lots"}"#,
            r#"{"ops": 5}"#,
            r#"{"clear": true, "ops_per_sec": 5}"#,
            r#"{"clear": "yes"}"#,
        ] {
            assert!(p(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn the_view_says_default_numbers_and_unlimited() {
        let v = LimitsView::from(KeyLimits {
            ops_per_sec: Some(Limit::PerSecond(20)),
            bytes_per_sec: Some(Limit::Unlimited),
        });
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"{"ops_per_sec":20,"bytes_per_sec":"unlimited"}"#
        );
        let v = LimitsView::from(KeyLimits::default());
        assert_eq!(v.ops_per_sec, Value::Null);
    }
}
