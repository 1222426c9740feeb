//! What the access-key routes ([`super::keys`]), the rate-limit routes
//! ([`super::key_limits`]), the key-policy routes ([`super::key_policy`]) and the console's
//! keys page share: finding an existing key, and the answer to a key command metadata
//! refused. Each comes as a [`Refusal`] (status and message, which the console turns into
//! JSON) and as the admin API's plain-text answer.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cairn_metadata::{AccessKeyRecord, MetadataError};

use super::AdminState;

/// Why a key call is refused: the status to answer and a one-line message.
pub(super) type Refusal = (StatusCode, String);

/// A refusal as the admin API answers it: the message as a line of plain text.
pub(super) fn answer((status, message): Refusal) -> Response {
    (status, format!("{message}\n")).into_response()
}

/// A key command metadata refused (the root key, an unknown or deleted key: 409 with the
/// reason) or could not apply (503).
pub(super) fn key_change_refusal(e: MetadataError) -> Refusal {
    match e {
        MetadataError::InvalidArgument(m) => (StatusCode::CONFLICT, m),
        e => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

/// [`key_change_refusal`] as the admin API answers it.
pub(super) fn key_change_failed(e: MetadataError) -> Response {
    answer(key_change_refusal(e))
}

/// The record of `access_key`, or why not: 404 for a key that does not exist (or was
/// deleted), 503 when metadata does not answer.
pub(super) async fn find_key(
    st: &AdminState,
    access_key: &str,
) -> Result<AccessKeyRecord, Refusal> {
    match st.objects.metadata().get_access_key(access_key).await {
        Ok(Some(rec)) => Ok(rec),
        Ok(None) => Err((
            StatusCode::NOT_FOUND,
            format!("access key {access_key} does not exist"),
        )),
        Err(e) => Err((StatusCode::SERVICE_UNAVAILABLE, e.to_string())),
    }
}

/// [`find_key`] with the admin API's answer.
pub(super) async fn existing_key(
    st: &AdminState,
    access_key: &str,
) -> Result<AccessKeyRecord, Response> {
    find_key(st, access_key).await.map_err(answer)
}
