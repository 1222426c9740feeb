//! The console's data calls: buckets and objects, each an S3 request signed with the
//! session's key (so S3's own authorization decides), and S3 errors turned into messages
//! that say what to do.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::types::{
    BucketVersioningStatus, ChecksumMode, CompletedMultipartUpload, CompletedPart, Delete,
    ObjectIdentifier, VersioningConfiguration,
};
use aws_sdk_s3::Client;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use serde::Deserialize;
use serde_json::{json as j, Value};

use super::{fail, session, AdminState, Session, MAX_CONSOLE_BODY, MAX_JSON_BODY};
use crate::admin::json;

pub(super) fn routes() -> Router<Arc<AdminState>> {
    Router::new()
        .route(
            "/console/api/buckets",
            get(list_buckets).post(create_bucket),
        )
        .route(
            "/console/api/buckets/{b}",
            axum::routing::delete(delete_bucket),
        )
        .route("/console/api/buckets/{b}/versioning", put(set_versioning))
        .route("/console/api/buckets/{b}/encryption", put(set_encryption))
        .route(
            "/console/api/buckets/{b}/quota",
            put(set_quota).delete(clear_quota),
        )
        .route("/console/api/buckets/{b}/objects", get(list_objects))
        .route("/console/api/buckets/{b}/object", get(object_details))
        .route(
            "/console/api/buckets/{b}/delete",
            post(delete_objects).layer(DefaultBodyLimit::max(MAX_JSON_BODY)),
        )
        .route(
            "/console/api/buckets/{b}/upload",
            put(upload).layer(DefaultBodyLimit::max(MAX_CONSOLE_BODY)),
        )
        .route("/console/api/buckets/{b}/multipart", post(create_multipart))
        .route(
            "/console/api/buckets/{b}/multipart/{u}",
            put(upload_part)
                .layer(DefaultBodyLimit::max(MAX_CONSOLE_BODY))
                .delete(abort_multipart),
        )
        .route(
            "/console/api/buckets/{b}/multipart/{u}/complete",
            post(complete_multipart).layer(DefaultBodyLimit::max(MAX_JSON_BODY)),
        )
        .route("/console/api/buckets/{b}/download", get(download))
        .route("/console/api/buckets/{b}/share", post(share))
}

fn client(st: &AdminState, s: &Session) -> Client {
    client_at(st, s, &st.console.s3_endpoint)
}

/// The S3 endpoint as the browser reaches it (for presigned links): `--public-s3-url`, else
/// the host the console was reached at with the S3 port.
fn public_endpoint(st: &AdminState, h: &HeaderMap) -> String {
    if let Some(u) = &st.console.public_s3_url {
        return u.trim_end_matches('/').to_string();
    }
    let host = h
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(|hp| match hp.rfind(']') {
            Some(i) => hp[..=i].to_string(),
            None => hp.split(':').next().unwrap_or(hp).to_string(),
        });
    match host {
        Some(host) if !host.is_empty() => {
            let scheme = if st.console.s3_https.is_some() {
                "https"
            } else {
                "http"
            };
            format!("{scheme}://{host}:{}", st.console.s3_port)
        }
        _ => st.console.s3_endpoint.clone(),
    }
}

fn client_at(st: &AdminState, s: &Session, endpoint: &str) -> Client {
    let creds =
        aws_credential_types::Credentials::new(&s.access_key, &s.secret, None, None, "console");
    let mut conf = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new(st.console.region.clone()))
        .endpoint_url(endpoint)
        .credentials_provider(creds)
        .force_path_style(true);
    if let Some(http) = &st.console.s3_https {
        conf = conf.http_client(http.clone());
    }
    Client::from_conf(conf.build())
}

/// The session's S3 client, or the 401 response.
pub(super) fn open(st: &AdminState, headers: &HeaderMap) -> Result<Client, Box<Response>> {
    session(st, headers).map(|s| client(st, &s))
}

/// An S3 failure as the page shows it: the S3 code and a message saying what to do.
pub(super) fn s3_error<E: ProvideErrorMetadata + std::fmt::Debug>(
    e: SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> Response {
    let status = e.raw_response().map(|r| r.status().as_u16());
    let code = e.code().unwrap_or("Unavailable").to_string();
    let message = match code.as_str() {
        "NoSuchBucket" => "This bucket no longer exists (it may have been deleted meanwhile). Go back to the bucket list.".to_string(),
        "NoSuchKey" => "This object no longer exists. Refresh the listing.".to_string(),
        "BucketNotEmpty" => "The bucket is not empty: delete its objects (and their versions) first.".to_string(),
        "BucketAlreadyOwnedByYou" => "You already have a bucket with this name.".to_string(),
        "BucketAlreadyExists" => "That name is taken by someone else's bucket. Pick another.".to_string(),
        "InvalidBucketName" => "Bucket names are 3–63 characters: lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit.".to_string(),
        "AccessDenied" => "Your key is not allowed to do this.".to_string(),
        _ => e
            .message()
            .map(str::to_string)
            .unwrap_or_else(|| format!("The S3 API could not be reached: {e:?}")),
    };
    let status = status
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::BAD_GATEWAY);
    fail(status, &code, &message)
}

macro_rules! s3 {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return s3_error(e),
        }
    };
}

macro_rules! open {
    ($st:expr, $h:expr) => {
        match open(&$st, &$h) {
            Ok(c) => c,
            Err(r) => return *r,
        }
    };
}

// Bucket settings (quota, versioning, default encryption), using the macros above.
#[path = "settings.rs"]
mod settings;
use settings::{clear_quota, set_encryption, set_quota, set_versioning};

fn ms(t: Option<&aws_smithy_types::DateTime>) -> Option<i64> {
    t.and_then(|t| t.to_millis().ok())
}

/// Most objects counted per bucket in the bucket list.
const COUNT_LIMIT: usize = 10_000;

async fn list_buckets(State(st): State<Arc<AdminState>>, h: HeaderMap) -> Response {
    let s3 = open!(st, h);
    let out = s3!(s3.list_buckets().send().await);
    let mut buckets = Vec::new();
    for b in out.buckets() {
        let name = b.name().unwrap_or_default().to_string();
        let (mut count, mut bytes, mut more) = (0usize, 0i64, false);
        let mut token = None;
        loop {
            let page = match s3
                .list_objects_v2()
                .bucket(&name)
                .set_continuation_token(token.take())
                .send()
                .await
            {
                Ok(p) => p,
                Err(_) => break,
            };
            for o in page.contents() {
                count += 1;
                bytes += o.size().unwrap_or(0);
            }
            match page.next_continuation_token() {
                Some(t) if count < COUNT_LIMIT => token = Some(t.to_string()),
                Some(_) => {
                    more = true;
                    break;
                }
                None => break,
            }
        }
        let versioning = s3
            .get_bucket_versioning()
            .bucket(&name)
            .send()
            .await
            .ok()
            .and_then(|v| v.status().map(|s| s.as_str().to_string()));
        // The bucket's default encryption (absent: the server's default applies).
        let encryption = s3
            .get_bucket_encryption()
            .bucket(&name)
            .send()
            .await
            .ok()
            .and_then(|e| {
                let rule = e.server_side_encryption_configuration()?.rules().first()?;
                let alg = rule
                    .apply_server_side_encryption_by_default()?
                    .sse_algorithm();
                Some(alg.as_str().to_string())
            });
        // Usage as the metadata counts it (every version, parts of uploads) and the quota.
        let (quota, usage) = match cairn_types::BucketName::new(name.clone()) {
            Ok(bn) => st.objects.bucket_quota(&bn).await.unwrap_or_default(),
            Err(_) => (None, None),
        };
        buckets.push(j!({
            "name": name, "created_ms": ms(b.creation_date()), "objects": count,
            "objects_more": more, "bytes": bytes, "versioning": versioning,
            "encryption": encryption, "quota": quota, "usage": usage,
        }));
    }
    json(StatusCode::OK, &buckets)
}

#[derive(Deserialize)]
struct NewBucket {
    name: String,
}

async fn create_bucket(State(st): State<Arc<AdminState>>, h: HeaderMap, body: Bytes) -> Response {
    let s3 = open!(st, h);
    let Ok(req) = serde_json::from_slice::<NewBucket>(&body) else {
        return fail(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Give the bucket a name.",
        );
    };
    s3!(s3.create_bucket().bucket(req.name.trim()).send().await);
    json(StatusCode::CREATED, &j!({ "name": req.name.trim() }))
}

async fn delete_bucket(
    State(st): State<Arc<AdminState>>,
    h: HeaderMap,
    Path(b): Path<String>,
) -> Response {
    let s3 = open!(st, h);
    s3!(s3.delete_bucket().bucket(&b).send().await);
    json(StatusCode::OK, &j!({ "deleted": b }))
}

#[derive(Deserialize)]
struct ListQ {
    #[serde(default)]
    prefix: String,
    token: Option<String>,
    #[serde(default)]
    filter: String,
}

async fn list_objects(
    State(st): State<Arc<AdminState>>,
    h: HeaderMap,
    Path(b): Path<String>,
    Query(q): Query<ListQ>,
) -> Response {
    let s3 = open!(st, h);
    let page = s3!(s3
        .list_objects_v2()
        .bucket(&b)
        .prefix(format!("{}{}", q.prefix, q.filter))
        .delimiter("/")
        .max_keys(200)
        .set_continuation_token(q.token)
        .send()
        .await);
    let folders: Vec<&str> = page
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    let objects: Vec<Value> = page
        .contents()
        .iter()
        .filter(|o| o.key() != Some(q.prefix.as_str()))
        .map(|o| {
            j!({ "key": o.key(), "size": o.size(), "etag": o.e_tag(),
                 "modified_ms": ms(o.last_modified()) })
        })
        .collect();
    json(
        StatusCode::OK,
        &j!({ "folders": folders, "objects": objects, "next": page.next_continuation_token() }),
    )
}

#[derive(Deserialize)]
struct KeyQ {
    key: String,
}

async fn object_details(
    State(st): State<Arc<AdminState>>,
    h: HeaderMap,
    Path(b): Path<String>,
    Query(q): Query<KeyQ>,
) -> Response {
    let s3 = open!(st, h);
    let head = s3!(s3
        .head_object()
        .bucket(&b)
        .key(&q.key)
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await);
    let versions = s3
        .list_object_versions()
        .bucket(&b)
        .prefix(&q.key)
        .send()
        .await
        .map(|v| {
            v.versions()
                .iter()
                .filter(|x| x.key() == Some(q.key.as_str()))
                .map(|x| {
                    j!({ "version_id": x.version_id(), "size": x.size(), "latest": x.is_latest(),
                         "modified_ms": ms(x.last_modified()) })
                })
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    // Where its shards are: the caller may read the object, so show its placement.
    let mut shards = std::collections::BTreeMap::<u32, u64>::new();
    let mut scheme = None;
    let mut encryption = "none".to_string();
    if let (Ok(bn), Ok(kn)) = (
        cairn_types::BucketName::new(b.clone()),
        cairn_types::ObjectKey::new(q.key.clone()),
    ) {
        if let Ok(Some(rec)) = st.objects.metadata().get_object(&bn, &kn).await {
            for (node, _) in rec.data.shards() {
                *shards.entry(node.0).or_default() += 1;
            }
            encryption = match rec.data.encryption() {
                cairn_metadata::Encryption::None => "none".into(),
                cairn_metadata::Encryption::Managed => "SSE-S3 (AES-256-GCM)".into(),
                cairn_metadata::Encryption::Customer => "SSE-C (AES-256-GCM, customer key)".into(),
                cairn_metadata::Encryption::Kms => format!(
                    "SSE-KMS (AES-256-GCM, key {})",
                    rec.data.kms_key_id().unwrap_or("?")
                ),
            };
            let striped = match &rec.data {
                cairn_metadata::ObjectData::Parts(parts) => parts
                    .iter()
                    .map(|p| p.data.stored())
                    .find(|d| matches!(d, cairn_metadata::ObjectData::Striped { .. })),
                d => Some(d.stored()),
            };
            if let Some(cairn_metadata::ObjectData::Striped { ec, .. }) = striped {
                scheme = Some(format!("erasure coded {}+{}", ec.data, ec.parity));
            }
        }
    }
    let checksums: Vec<(&str, &str)> = [
        ("CRC32", head.checksum_crc32()),
        ("CRC32C", head.checksum_crc32_c()),
        ("CRC64NVME", head.checksum_crc64_nvme()),
        ("SHA1", head.checksum_sha1()),
        ("SHA256", head.checksum_sha256()),
    ]
    .into_iter()
    .filter_map(|(n, v)| v.map(|v| (n, v)))
    .collect();
    json(
        StatusCode::OK,
        &j!({
            "key": q.key, "size": head.content_length(), "etag": head.e_tag(),
            "content_type": head.content_type(), "modified_ms": ms(head.last_modified()),
            "version_id": head.version_id(), "metadata": head.metadata(),
            "checksums": checksums.into_iter().collect::<std::collections::BTreeMap<_, _>>(),
            "versions": versions,
            "shards": shards.into_iter().map(|(n, c)| j!({"node": n, "shards": c})).collect::<Vec<_>>(),
            "erasure_coding": scheme.unwrap_or_else(|| "inline (stored in metadata)".into()),
            "storage_class": head.storage_class().map_or("STANDARD", |c| c.as_str()),
            "encryption": encryption,
        }),
    )
}

#[derive(Deserialize)]
struct Keys {
    keys: Vec<String>,
}

async fn delete_objects(
    State(st): State<Arc<AdminState>>,
    h: HeaderMap,
    Path(b): Path<String>,
    body: Bytes,
) -> Response {
    let s3 = open!(st, h);
    let Ok(req) = serde_json::from_slice::<Keys>(&body) else {
        return fail(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Select objects to delete.",
        );
    };
    let ids: Vec<ObjectIdentifier> = req
        .keys
        .iter()
        .filter_map(|k| ObjectIdentifier::builder().key(k).build().ok())
        .collect();
    let Ok(del) = Delete::builder().set_objects(Some(ids)).build() else {
        return fail(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Select objects to delete.",
        );
    };
    let out = s3!(s3.delete_objects().bucket(&b).delete(del).send().await);
    let errors: Vec<Value> = out
        .errors()
        .iter()
        .map(|e| j!({ "key": e.key(), "code": e.code(), "message": e.message() }))
        .collect();
    json(
        StatusCode::OK,
        &j!({ "deleted": out.deleted().len(), "errors": errors }),
    )
}

async fn upload(
    State(st): State<Arc<AdminState>>,
    h: HeaderMap,
    Path(b): Path<String>,
    Query(q): Query<KeyQ>,
    body: Bytes,
) -> Response {
    let s3 = open!(st, h);
    let ctype = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_string();
    let out = s3!(s3
        .put_object()
        .bucket(&b)
        .key(&q.key)
        .content_type(ctype)
        .body(body.into())
        .send()
        .await);
    json(StatusCode::OK, &j!({ "etag": out.e_tag() }))
}

async fn create_multipart(
    State(st): State<Arc<AdminState>>,
    h: HeaderMap,
    Path(b): Path<String>,
    Query(q): Query<KeyQ>,
) -> Response {
    let s3 = open!(st, h);
    let ctype = h
        .get("x-content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_string();
    let out = s3!(s3
        .create_multipart_upload()
        .bucket(&b)
        .key(&q.key)
        .content_type(ctype)
        .send()
        .await);
    json(StatusCode::OK, &j!({ "upload_id": out.upload_id() }))
}

#[derive(Deserialize)]
struct PartQ {
    key: String,
    part: i32,
}

async fn upload_part(
    State(st): State<Arc<AdminState>>,
    h: HeaderMap,
    Path((b, u)): Path<(String, String)>,
    Query(q): Query<PartQ>,
    body: Bytes,
) -> Response {
    let s3 = open!(st, h);
    let out = s3!(s3
        .upload_part()
        .bucket(&b)
        .key(&q.key)
        .upload_id(&u)
        .part_number(q.part)
        .body(body.into())
        .send()
        .await);
    json(StatusCode::OK, &j!({ "etag": out.e_tag() }))
}

#[derive(Deserialize)]
struct Parts {
    parts: Vec<PartDone>,
}

#[derive(Deserialize)]
struct PartDone {
    part: i32,
    etag: String,
}

async fn complete_multipart(
    State(st): State<Arc<AdminState>>,
    h: HeaderMap,
    Path((b, u)): Path<(String, String)>,
    Query(q): Query<KeyQ>,
    body: Bytes,
) -> Response {
    let s3 = open!(st, h);
    let Ok(req) = serde_json::from_slice::<Parts>(&body) else {
        return fail(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "List the uploaded parts.",
        );
    };
    let parts: Vec<CompletedPart> = req
        .parts
        .into_iter()
        .map(|p| {
            CompletedPart::builder()
                .part_number(p.part)
                .e_tag(p.etag)
                .build()
        })
        .collect();
    let out = s3!(s3
        .complete_multipart_upload()
        .bucket(&b)
        .key(&q.key)
        .upload_id(&u)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build()
        )
        .send()
        .await);
    json(StatusCode::OK, &j!({ "etag": out.e_tag() }))
}

async fn abort_multipart(
    State(st): State<Arc<AdminState>>,
    h: HeaderMap,
    Path((b, u)): Path<(String, String)>,
    Query(q): Query<KeyQ>,
) -> Response {
    let s3 = open!(st, h);
    s3!(s3
        .abort_multipart_upload()
        .bucket(&b)
        .key(&q.key)
        .upload_id(&u)
        .send()
        .await);
    json(StatusCode::OK, &j!({ "aborted": true }))
}

async fn presign(
    s3: &Client,
    b: &str,
    key: &str,
    secs: u64,
    attach: bool,
) -> Result<String, Box<Response>> {
    let conf = PresigningConfig::expires_in(Duration::from_secs(secs)).map_err(|e| {
        Box::new(fail(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            &format!("Bad expiry: {e}"),
        ))
    })?;
    let mut req = s3.get_object().bucket(b).key(key);
    if attach {
        let name = key.rsplit('/').next().unwrap_or(key).replace('"', "");
        req = req.response_content_disposition(format!("attachment; filename=\"{name}\""));
    }
    match req.presigned(conf).await {
        Ok(p) => Ok(p.uri().to_string()),
        Err(e) => Err(Box::new(s3_error(e))),
    }
}

async fn download(
    State(st): State<Arc<AdminState>>,
    h: HeaderMap,
    Path(b): Path<String>,
    Query(q): Query<KeyQ>,
) -> Response {
    let sess = match session(&st, &h) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let s3 = client(&st, &sess);
    s3!(s3.head_object().bucket(&b).key(&q.key).send().await);
    let public = client_at(&st, &sess, &public_endpoint(&st, &h));
    match presign(&public, &b, &q.key, 300, true).await {
        Ok(url) => (StatusCode::FOUND, [(header::LOCATION, url)]).into_response(),
        Err(r) => *r,
    }
}

#[derive(Deserialize)]
struct ShareReq {
    key: String,
    expires_secs: u64,
}

/// Longest share link SigV4 allows: seven days.
const MAX_SHARE_SECS: u64 = 7 * 24 * 3600;

async fn share(
    State(st): State<Arc<AdminState>>,
    h: HeaderMap,
    Path(b): Path<String>,
    body: Bytes,
) -> Response {
    let sess = match session(&st, &h) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let s3 = client(&st, &sess);
    let Ok(req) = serde_json::from_slice::<ShareReq>(&body) else {
        return fail(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Pick an object and an expiry.",
        );
    };
    if req.expires_secs == 0 || req.expires_secs > MAX_SHARE_SECS {
        return fail(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "A share link lasts from one second to seven days.",
        );
    }
    s3!(s3.head_object().bucket(&b).key(&req.key).send().await);
    let public = client_at(&st, &sess, &public_endpoint(&st, &h));
    match presign(&public, &b, &req.key, req.expires_secs, false).await {
        Ok(url) => json(
            StatusCode::OK,
            &j!({ "url": url, "expires_ms": cairn_types::clock::now_ms() + req.expires_secs as i64 * 1000 }),
        ),
        Err(r) => *r,
    }
}
