//! The access-key routes of the admin API (what `cairn key` calls): list, create, delete,
//! disable/enable and rotate the root key. Every change is a metadata command, replicated
//! and applied on every gateway within a heartbeat; the key ring of this gateway is
//! updated at once. Rate-limit overrides are in [`super::key_limits`].

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use cairn_metadata::{access_keys, cluster_state};
use cairn_metadata::{AccessKeyRecord, Command, MetadataError};
use serde::{Deserialize, Serialize};

use super::key_lookup::{existing_key, key_change_failed};
use super::{json, key_limits, AdminState};

pub(super) fn routes() -> Router<Arc<AdminState>> {
    Router::new()
        .route("/admin/keys", get(list_keys).post(create_key))
        .route("/admin/keys/rotate-root", post(rotate_root))
        .route("/admin/keys/{ak}", delete(delete_key))
        .route("/admin/keys/{ak}/disable", post(disable_key))
        .route("/admin/keys/{ak}/enable", post(enable_key))
}

/// An access key as `GET /admin/keys` and the console's keys page list it.
#[derive(Serialize)]
pub(super) struct KeyView {
    access_key: String,
    name: String,
    created_ms: i64,
    /// The cluster's root key.
    root: bool,
    /// False for a disabled key.
    enabled: bool,
    /// Its rate-limit override (`null`: the server's default).
    limits: key_limits::LimitsView,
    /// It has an identity policy ([`super::key_policy`]).
    has_policy: bool,
}

/// Every access key (deleted ones are gone), with its state, limits and whether it has a
/// policy.
pub(super) async fn key_views(st: &AdminState) -> Result<Vec<KeyView>, MetadataError> {
    let meta = st.objects.metadata();
    let keys = meta.list_access_keys().await?;
    let disabled = access_keys::marked(
        &meta.scan_sys(access_keys::DISABLED_PREFIX).await?,
        access_keys::DISABLED_PREFIX,
    );
    let with_policy = access_keys::marked(
        &meta.scan_sys(access_keys::POLICY_PREFIX).await?,
        access_keys::POLICY_PREFIX,
    );
    let root = cluster_state::root_key(meta.as_ref()).await?;
    let limits = key_limits::read_all(meta.as_ref()).await?;
    Ok(keys
        .into_iter()
        .map(|k| KeyView {
            root: root.as_deref() == Some(k.access_key.as_str()),
            enabled: !disabled.contains(&k.access_key),
            limits: limits
                .get(&k.access_key)
                .copied()
                .unwrap_or_default()
                .into(),
            has_policy: with_policy.contains(&k.access_key),
            access_key: k.access_key,
            name: k.name,
            created_ms: k.created_ms,
        })
        .collect())
}

async fn list_keys(State(st): State<Arc<AdminState>>) -> Response {
    match key_views(&st).await {
        Ok(view) => json(StatusCode::OK, &view),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response(),
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct NewKey {
    name: Option<String>,
    access_key: Option<String>,
    secret_key: Option<String>,
    /// An identity policy (a JSON object) the key gets with its creation.
    policy: Option<serde_json::Value>,
}

#[derive(Serialize)]
struct CreatedKey {
    access_key: String,
    secret_key: String,
    name: String,
    /// For a root key rotation: the access key that was the root key until now.
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_root: Option<String>,
}

/// Access keys: 16–128 ASCII letters and digits; secrets: 16–128 printable ASCII characters
/// without spaces.
fn check_key(access: &str, secret: &str) -> Result<(), String> {
    if !(16..=128).contains(&access.len()) || !access.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err("access_key must be 16 to 128 ASCII letters and digits".into());
    }
    if !(16..=128).contains(&secret.len()) || !secret.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("secret_key must be 16 to 128 printable ASCII characters, no spaces".into());
    }
    Ok(())
}

/// A key request's body (empty: all defaults) and the key pair it asks for (generated where
/// it names none), checked; or the 400 to answer.
fn new_key_request(body: &[u8]) -> Result<(NewKey, String, String), Box<Response>> {
    let bad = |m: String| Box::new((StatusCode::BAD_REQUEST, m).into_response());
    let req: NewKey = if body.iter().all(u8::is_ascii_whitespace) {
        NewKey::default()
    } else {
        serde_json::from_slice(body).map_err(|e| bad(format!("malformed JSON: {e}\n")))?
    };
    let (generated_ak, generated_sk) = crate::credentials::generate_key_pair();
    let access_key = req.access_key.clone().unwrap_or(generated_ak);
    let secret_key = req.secret_key.clone().unwrap_or(generated_sk);
    check_key(&access_key, &secret_key).map_err(|e| bad(format!("{e}\n")))?;
    Ok((req, access_key, secret_key))
}

async fn create_key(State(st): State<Arc<AdminState>>, body: Bytes) -> Response {
    let (req, access_key, secret_key) = match new_key_request(&body) {
        Ok(k) => k,
        Err(resp) => return *resp,
    };
    let name = req.name.clone().unwrap_or_default();
    let policy = match &req.policy {
        None => None,
        Some(p) => match super::key_policy::check_policy(p.to_string().as_bytes()) {
            Ok(doc) => Some(doc),
            Err(m) => return (StatusCode::BAD_REQUEST, format!("{m}\n")).into_response(),
        },
    };
    let meta = st.objects.metadata();
    match meta.get_access_key(&access_key).await {
        Ok(Some(existing)) if existing.secret_key != secret_key => {
            return (
                StatusCode::CONFLICT,
                format!("access key {access_key} already exists\n"),
            )
                .into_response()
        }
        Ok(Some(_)) => {
            // The same key again (a retried call): fine, unless it is disabled — creating it
            // does not enable it.
            match meta.get_sys(&access_keys::disabled_key(&access_key)).await {
                Ok(None) => {}
                Ok(Some(_)) => {
                    return (
                        StatusCode::CONFLICT,
                        format!(
                            "access key {access_key} exists and is disabled (`cairn key enable`)\n"
                        ),
                    )
                        .into_response()
                }
                Err(e) => {
                    return (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response()
                }
            }
        }
        Ok(None) => {}
        Err(e) => return (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response(),
    }
    let record = AccessKeyRecord {
        access_key: access_key.clone(),
        secret_key: secret_key.clone(),
        name: name.clone(),
        created_ms: cairn_types::clock::now_ms(),
    };
    if let Err(e) = meta.apply(Command::PutAccessKey(record)).await {
        return key_change_failed(e);
    }
    // Before anyone has the secret: the key never signs a request without its policy.
    if let Some(doc) = policy {
        if let Err(r) = super::key_policy::set_policy(&st, &access_key, Some(doc)).await {
            return super::key_lookup::answer(r);
        }
    }
    st.keys.insert(access_key.clone(), secret_key.clone());
    tracing::info!(access_key = %access_key, name = %name, "access key created");
    json(
        StatusCode::CREATED,
        &CreatedKey {
            access_key,
            secret_key,
            name,
            previous_root: None,
        },
    )
}

#[derive(Serialize)]
struct KeyChanged {
    access_key: String,
    name: String,
    /// `deleted`, `disabled` or `enabled`.
    state: &'static str,
}

/// `DELETE /admin/keys/{ak}`: the key stops signing anything, on this node at once and on
/// every gateway within a heartbeat; its console sessions end. Its buckets and objects stay,
/// still naming it as their owner; the id is never used again.
async fn delete_key(State(st): State<Arc<AdminState>>, Path(ak): Path<String>) -> Response {
    let rec = match existing_key(&st, &ak).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let cmd = Command::DeleteAccessKey {
        access_key: ak.clone(),
        at_ms: cairn_types::clock::now_ms(),
    };
    if let Err(e) = st.objects.metadata().apply(cmd).await {
        return key_change_failed(e);
    }
    st.keys.remove(&ak);
    tracing::info!(access_key = %ak, name = %rec.name, "access key deleted");
    json(
        StatusCode::OK,
        &KeyChanged {
            access_key: ak,
            name: rec.name,
            state: "deleted",
        },
    )
}

async fn disable_key(State(st): State<Arc<AdminState>>, Path(ak): Path<String>) -> Response {
    set_key_enabled(&st, ak, false).await
}

async fn enable_key(State(st): State<Arc<AdminState>>, Path(ak): Path<String>) -> Response {
    set_key_enabled(&st, ak, true).await
}

/// `POST /admin/keys/{ak}/disable|enable`: a disabled key keeps its record (and its
/// buckets) but signs nothing, and its console sessions end, until it is enabled again.
async fn set_key_enabled(st: &AdminState, ak: String, enabled: bool) -> Response {
    let rec = match existing_key(st, &ak).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let cmd = Command::SetAccessKeyEnabled {
        access_key: ak.clone(),
        enabled,
        at_ms: cairn_types::clock::now_ms(),
    };
    if let Err(e) = st.objects.metadata().apply(cmd).await {
        return key_change_failed(e);
    }
    if enabled {
        st.keys.insert(ak.clone(), rec.secret_key);
    } else {
        st.keys.disable(&ak);
    }
    let state = if enabled { "enabled" } else { "disabled" };
    tracing::info!(access_key = %ak, name = %rec.name, state, "access key changed");
    json(
        StatusCode::OK,
        &KeyChanged {
            access_key: ak,
            name: rec.name,
            state,
        },
    )
}

/// `POST /admin/keys/rotate-root`: a new key (generated, or the one given) becomes the root
/// key on every gateway within a heartbeat (here at once). The previous root key stays an
/// ordinary key — it keeps working for S3 and keeps its buckets, but no longer signs admin
/// calls or sees the cluster dashboard — until the operator deletes it.
async fn rotate_root(State(st): State<Arc<AdminState>>, body: Bytes) -> Response {
    let (req, access_key, secret_key) = match new_key_request(&body) {
        Ok(k) => k,
        Err(resp) => return *resp,
    };
    let name = req.name.unwrap_or_else(|| "root".into());
    let meta = st.objects.metadata();
    let previous_root = match cluster_state::root_key(meta.as_ref()).await {
        Ok(v) => v,
        Err(e) => return (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response(),
    };
    let record = AccessKeyRecord {
        access_key: access_key.clone(),
        secret_key: secret_key.clone(),
        name: name.clone(),
        created_ms: cairn_types::clock::now_ms(),
    };
    if let Err(e) = meta.apply(Command::RotateRootKey { record }).await {
        return key_change_failed(e);
    }
    st.keys.insert(access_key.clone(), secret_key.clone());
    st.keys.set_root(&access_key);
    tracing::warn!(
        access_key = %access_key,
        previous = previous_root.as_deref().unwrap_or(""),
        "root key rotated; the previous root key is an ordinary key until it is deleted"
    );
    json(
        StatusCode::CREATED,
        &CreatedKey {
            access_key,
            secret_key,
            name,
            previous_root,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_rules() {
        assert!(check_key("ABCDEFGHIJKLMNOP", "0123456789abcdef").is_ok());
        assert!(check_key("SHORT", "0123456789abcdef").is_err());
        assert!(check_key("ABCDEFGHIJKLMNO-", "0123456789abcdef").is_err());
        assert!(check_key("ABCDEFGHIJKLMNOP", "with space 12345").is_err());
        assert!(check_key("ABCDEFGHIJKLMNOP", "short").is_err());
    }
}
