//! The console's bucket settings: the quota (root only), versioning and the default
//! encryption, each through the session's S3 client except the quota (the admin side).

use super::*;

/// Sets a bucket's quota (root only: quotas bind every key writing there).
pub(super) async fn set_quota(
    State(st): State<Arc<AdminState>>,
    h: HeaderMap,
    Path(b): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(r) = crate::admin::console::require_root(&st, &h, "set bucket quotas") {
        return *r;
    }
    let Ok(quota) = serde_json::from_slice::<cairn_metadata::usage::BucketQuota>(&body) else {
        return fail(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "A quota is a number of bytes and a number of objects (either may be empty).",
        );
    };
    let quota = (quota != Default::default()).then_some(quota);
    store_quota(&st, &b, quota).await
}

pub(super) async fn clear_quota(
    State(st): State<Arc<AdminState>>,
    h: HeaderMap,
    Path(b): Path<String>,
) -> Response {
    if let Err(r) = crate::admin::console::require_root(&st, &h, "set bucket quotas") {
        return *r;
    }
    store_quota(&st, &b, None).await
}

async fn store_quota(
    st: &AdminState,
    b: &str,
    quota: Option<cairn_metadata::usage::BucketQuota>,
) -> Response {
    let Ok(name) = cairn_types::BucketName::new(b.to_string()) else {
        return fail(
            StatusCode::BAD_REQUEST,
            "InvalidBucketName",
            "Not a bucket name.",
        );
    };
    match st.objects.set_bucket_quota(&name, quota).await {
        Ok(()) => match st.objects.bucket_quota(&name).await {
            Ok((quota, usage)) => json(StatusCode::OK, &j!({ "quota": quota, "usage": usage })),
            Err(e) => fail(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                &e.to_string(),
            ),
        },
        Err(cairn_objects::ObjectsError::Metadata(cairn_metadata::MetadataError::NoSuchBucket)) => {
            fail(
                StatusCode::NOT_FOUND,
                "NoSuchBucket",
                "The bucket does not exist.",
            )
        }
        Err(e) => fail(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            &e.to_string(),
        ),
    }
}

#[derive(Deserialize)]
struct Versioning {
    enabled: bool,
}

/// The `{"enabled": …}` body of a setting switched on or off, or the 400 to answer.
fn switch(body: &[u8]) -> Result<Versioning, Box<Response>> {
    serde_json::from_slice::<Versioning>(body).map_err(|_| {
        Box::new(fail(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Say enabled: true or false.",
        ))
    })
}

pub(super) async fn set_versioning(
    State(st): State<Arc<AdminState>>,
    h: HeaderMap,
    Path(b): Path<String>,
    body: Bytes,
) -> Response {
    let s3 = open!(st, h);
    let req = match switch(&body) {
        Ok(r) => r,
        Err(r) => return *r,
    };
    let status = if req.enabled {
        BucketVersioningStatus::Enabled
    } else {
        BucketVersioningStatus::Suspended
    };
    s3!(s3
        .put_bucket_versioning()
        .bucket(&b)
        .versioning_configuration(VersioningConfiguration::builder().status(status).build())
        .send()
        .await);
    json(StatusCode::OK, &j!({ "versioning": req.enabled }))
}

/// Sets (`enabled`) or removes a bucket's default encryption (SSE-S3).
pub(super) async fn set_encryption(
    State(st): State<Arc<AdminState>>,
    h: HeaderMap,
    Path(b): Path<String>,
    body: Bytes,
) -> Response {
    use aws_sdk_s3::types::{
        ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration,
        ServerSideEncryptionRule,
    };
    let s3 = open!(st, h);
    let req = match switch(&body) {
        Ok(r) => r,
        Err(r) => return *r,
    };
    if req.enabled {
        let by_default = ServerSideEncryptionByDefault::builder()
            .sse_algorithm(ServerSideEncryption::Aes256)
            .build();
        let conf = by_default.and_then(|d| {
            ServerSideEncryptionConfiguration::builder()
                .rules(
                    ServerSideEncryptionRule::builder()
                        .apply_server_side_encryption_by_default(d)
                        .build(),
                )
                .build()
        });
        let Ok(conf) = conf else {
            return fail(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "could not build the encryption configuration",
            );
        };
        s3!(s3
            .put_bucket_encryption()
            .bucket(&b)
            .server_side_encryption_configuration(conf)
            .send()
            .await);
    } else {
        s3!(s3.delete_bucket_encryption().bucket(&b).send().await);
    }
    json(StatusCode::OK, &j!({ "encryption": req.enabled }))
}
