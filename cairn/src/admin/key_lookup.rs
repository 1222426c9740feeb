//! What the access-key routes ([`super::keys`]) and the rate-limit routes
//! ([`super::key_limits`]) share: finding an existing key, and the answer to a key command
//! metadata refused.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cairn_metadata::{AccessKeyRecord, MetadataError};

use super::AdminState;

/// The answer to a key command metadata refused (the root key, an unknown or deleted key:
/// 409 with the reason) or could not apply (503).
pub(super) fn key_change_failed(e: MetadataError) -> Response {
    match e {
        MetadataError::InvalidArgument(m) => {
            (StatusCode::CONFLICT, format!("{m}\n")).into_response()
        }
        e => (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response(),
    }
}

/// The record of `access_key`, or the answer to give: 404 for a key that does not exist
/// (or was deleted), 503 when metadata does not answer.
pub(super) async fn existing_key(
    st: &AdminState,
    access_key: &str,
) -> Result<AccessKeyRecord, Response> {
    match st.objects.metadata().get_access_key(access_key).await {
        Ok(Some(rec)) => Ok(rec),
        Ok(None) => Err((
            StatusCode::NOT_FOUND,
            format!("access key {access_key} does not exist\n"),
        )
            .into_response()),
        Err(e) => Err((StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response()),
    }
}
