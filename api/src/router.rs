//! Turns a request into an S3 operation and runs it: splits the bucket and key off the path
//! (or the virtual host), classifies the request with the operation table ([`crate::op`]),
//! authenticates it, applies the signing key's rate limit ([`crate::limits`]), has
//! [`access::authorize`] decide from the table whether the caller may run it, and calls the
//! operation's handler with the resulting [`Authorized`]. The one exception is a browser form
//! upload (POST Object), signed inside its body: its handler authorizes it (see `dispatch`).

use std::sync::Arc;

use axum::extract::Request;
use axum::http::Method;
use axum::response::Response;
use cairn_types::{BucketName, InvalidName, ObjectKey};
use percent_encoding::percent_decode_str;

use crate::access::{self, Authorized};
use crate::error::{S3Error, S3ErrorCode};
use crate::op::{Op, Target};
use crate::query::Query;
use crate::{
    access_config, acl_ops, attributes, auth, bucket, bucket_config, copy, cors, delete, lifecycle,
    limits, listing, metrics, multipart, multipart_complete, multipart_list, object, object_lock,
    post_object, tagging, versioning, ApiState,
};

/// A request, classified.
pub struct Parsed {
    pub op: Op,
    bucket: Option<String>,
    key: Option<String>,
    query: Query,
}

/// Classifies a request: what it addresses and which operation it is.
pub fn parse(st: &ApiState, req: &Request) -> Result<Parsed, S3Error> {
    let query = Query::parse(req.uri().query())?;
    let (bucket, key) = split_request(st, req)?;
    let target = match (&bucket, &key) {
        (None, _) => Target::Service,
        (Some(_), None) => Target::Bucket,
        (Some(_), Some(_)) => Target::Object,
    };
    let op = Op::classify(req.method(), target, &query, req.headers())?;
    Ok(Parsed {
        op,
        bucket,
        key,
        query,
    })
}

/// Runs a classified request.
pub async fn dispatch(st: &Arc<ApiState>, p: Parsed, req: Request) -> Result<Response, S3Error> {
    let Parsed {
        op,
        bucket,
        key,
        query,
    } = p;
    let bucket = bucket.map(BucketName::new).transpose()?;
    // A path whose key has control characters is not a URI S3 can parse.
    let key = key
        .map(|k| {
            ObjectKey::new(k).map_err(|e| match e {
                InvalidName::Key(why) if why.contains("control") => {
                    S3Error::new(S3ErrorCode::InvalidURI, "Couldn't parse the specified URI.")
                }
                e => S3Error::from(e),
            })
        })
        .transpose()?;
    // Browsers send a preflight without credentials; it is answered from the CORS rules.
    let caller = if op == Op::PreflightRequest {
        auth::Caller::preflight()
    } else {
        auth::authenticate(st, &req)?
    };
    // The signing key's rate limit, now that it is known (its bytes: the declared body now,
    // the response below).
    let limited_key = caller.access_key.clone();
    if let Some(ak) = &limited_key {
        limits::check_key(st, ak, metrics::declared_len(req.headers()).unwrap_or(0))?;
    }
    let origin = req
        .headers()
        .get("origin")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    // A browser form upload is signed by fields inside its body (its policy), not by its
    // headers: it cannot be authorized before its body is read. Its handler reads the form,
    // verifies the signature and then calls `access::authorize` itself with the form's
    // caller, key and headers. Its body gets its memory budget first, as any other.
    if op == Op::PostObject {
        let bucket = bucket.ok_or_else(|| S3Error::internal("PostObject without a bucket"))?;
        let _body_budget = st.body_budget.admit(req.headers()).await?;
        let method = req.method().clone();
        let mut resp = post_object::post_object(st, caller, &bucket, &query, req).await?;
        if let Some(origin) = origin {
            cors::decorate(st, &bucket, &origin, &method, &mut resp).await;
        }
        return Ok(resp);
    }
    let a = access::authorize(
        st,
        caller,
        op,
        bucket.as_ref(),
        key.as_ref(),
        &query,
        req.headers(),
    )
    .await?;
    // The memory the body will hold is reserved before it is read, and held until the
    // request is handled (503 SlowDown, the body unread, when the budget is spent).
    let _body_budget = st.body_budget.admit(req.headers()).await?;
    let method = req.method().clone();
    let mut resp = route(st, &a, bucket, key, &query, req).await?;
    if let (Some(ak), false) = (&limited_key, method == Method::HEAD) {
        if let Some(n) = metrics::declared_len(resp.headers()) {
            st.limits.charge_key(ak, n);
        }
    }
    if let (Some(origin), Some(b)) = (origin, a.bucket_record()) {
        if op != Op::PreflightRequest {
            cors::decorate(st, &b.name, &origin, &method, &mut resp).await;
        }
    }
    Ok(resp)
}

/// Calls the handler of an authorized operation.
async fn route(
    st: &Arc<ApiState>,
    a: &Authorized,
    bucket: Option<BucketName>,
    key: Option<ObjectKey>,
    q: &Query,
    req: Request,
) -> Result<Response, S3Error> {
    let missing = || S3Error::internal(format!("{} without its target", a.op().name()));
    let key = || key.clone().ok_or_else(missing);
    let h = req.headers();
    match a.op() {
        Op::PreflightRequest => {
            let bucket = bucket.ok_or_else(missing)?;
            cors::preflight(st, a, &bucket, h).await
        }
        Op::ListBuckets => bucket::list_buckets(st, a, q).await,
        Op::CreateBucket => {
            let bucket = bucket.ok_or_else(missing)?;
            bucket::create_bucket(st, a, &bucket, req).await
        }
        Op::DeleteBucket => bucket::delete_bucket(st, a).await,
        Op::HeadBucket => bucket::head_bucket(st, a).await,
        Op::GetBucketLocation => bucket::get_location(st, a).await,
        Op::ListObjects => listing::list_objects(st, a, q, false).await,
        Op::ListObjectsV2 => listing::list_objects(st, a, q, true).await,
        Op::ListObjectVersions => versioning::list_object_versions(st, a, q).await,
        Op::ListMultipartUploads => multipart_list::list_uploads(st, a, q).await,
        Op::GetBucketVersioning => versioning::get_bucket_versioning(st, a).await,
        Op::PutBucketVersioning => versioning::put_bucket_versioning(st, a, req).await,
        Op::GetBucketAcl => acl_ops::get_bucket_acl(st, a).await,
        Op::PutBucketAcl => acl_ops::put_bucket_acl(st, a, req).await,
        Op::GetBucketCors
        | Op::PutBucketCors
        | Op::DeleteBucketCors
        | Op::GetBucketTagging
        | Op::PutBucketTagging
        | Op::DeleteBucketTagging
        | Op::GetBucketNotificationConfiguration
        | Op::GetBucketLogging
        | Op::GetBucketAccelerateConfiguration
        | Op::GetBucketRequestPayment
        | Op::GetBucketEncryption
        | Op::PutBucketEncryption
        | Op::DeleteBucketEncryption
        | Op::GetBucketWebsite
        | Op::DeleteBucketWebsite
        | Op::GetBucketReplication
        | Op::DeleteBucketReplication => bucket_config::dispatch(st, a, req).await,
        Op::GetBucketPolicy
        | Op::PutBucketPolicy
        | Op::DeleteBucketPolicy
        | Op::GetBucketPolicyStatus
        | Op::GetPublicAccessBlock
        | Op::PutPublicAccessBlock
        | Op::DeletePublicAccessBlock
        | Op::GetBucketOwnershipControls
        | Op::PutBucketOwnershipControls
        | Op::DeleteBucketOwnershipControls => access_config::dispatch(st, a, req).await,
        Op::GetBucketLifecycleConfiguration => lifecycle::get(a).await,
        Op::PutBucketLifecycleConfiguration => lifecycle::put(st, a, req).await,
        Op::DeleteBucketLifecycle => lifecycle::delete(st, a).await,
        Op::GetObjectLockConfiguration => object_lock::get_configuration(a).await,
        Op::PutObjectLockConfiguration => object_lock::put_configuration(st, a, req).await,
        Op::GetObjectRetention => object_lock::get_retention(st, a, &key()?, q).await,
        Op::PutObjectRetention => object_lock::put_retention(st, a, &key()?, q, req).await,
        Op::GetObjectLegalHold => object_lock::get_legal_hold(st, a, &key()?, q).await,
        Op::PutObjectLegalHold => object_lock::put_legal_hold(st, a, &key()?, q, req).await,
        Op::DeleteObjects => delete::delete_objects(st, a, req).await,
        Op::PostObject => Err(S3Error::internal(
            "PostObject is dispatched before authorization",
        )),
        Op::GetObject => object::get_object(st, a, &key()?, q, h, false).await,
        Op::HeadObject => object::get_object(st, a, &key()?, q, h, true).await,
        Op::GetObjectAttributes => attributes::get_object_attributes(st, a, h).await,
        Op::PutObject => {
            let acl = access::new_object_acl(st, a, h).await?;
            object::put_object(st, a, &key()?, req, acl).await
        }
        Op::CopyObject => {
            let acl = access::new_object_acl(st, a, h).await?;
            copy::copy_object(st, a, &key()?, h, acl).await
        }
        Op::DeleteObject => delete::delete_object(st, a, &key()?, q, h).await,
        Op::GetObjectAcl => acl_ops::get_object_acl(st, a).await,
        Op::PutObjectAcl => acl_ops::put_object_acl(st, a, &key()?, q, req).await,
        Op::GetObjectTagging => tagging::get_object_tagging(st, a, &key()?, q).await,
        Op::PutObjectTagging => tagging::put_object_tagging(st, a, &key()?, q, req).await,
        Op::DeleteObjectTagging => tagging::delete_object_tagging(st, a, &key()?, q).await,
        Op::CreateMultipartUpload => {
            let acl = access::new_object_acl(st, a, h).await?;
            multipart::create_upload(st, a, &key()?, h, acl).await
        }
        Op::UploadPart => multipart::upload_part(st, a, &key()?, q, req).await,
        Op::UploadPartCopy => multipart::upload_part_copy(st, a, &key()?, q, h).await,
        Op::CompleteMultipartUpload => {
            multipart_complete::complete_upload(st, a, &key()?, q, req).await
        }
        Op::AbortMultipartUpload => multipart::abort_upload(st, a, &key()?, q).await,
        Op::ListParts => multipart_list::list_parts(st, a, &key()?, q).await,
    }
}

/// The bucket and key a request addresses: virtual-hosted style (`bucket.<domain>`, for a
/// domain given with `--domain`) or path style (`/bucket/key`).
fn split_request(
    st: &ApiState,
    req: &Request,
) -> Result<(Option<String>, Option<String>), S3Error> {
    let path = req.uri().path();
    let host = req
        .headers()
        .get("host")
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().host())
        .unwrap_or("");
    match virtual_host_bucket(&st.domains, host) {
        Some(bucket) => {
            let key = decode_key(path.strip_prefix('/').unwrap_or(path))?;
            Ok((Some(bucket), key))
        }
        None => split_path(path),
    }
}

/// `Some(bucket)` when `host` (port ignored, case-insensitive) is `bucket.<domain>`.
fn virtual_host_bucket(domains: &[String], host: &str) -> Option<String> {
    let name = match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !h.ends_with(']') => h,
        _ => host,
    }
    .to_ascii_lowercase();
    domains.iter().find_map(|d| {
        let d = d.trim_matches('.').to_ascii_lowercase();
        let bucket = name.strip_suffix(&d)?.strip_suffix('.')?;
        (!bucket.is_empty()).then(|| bucket.to_string())
    })
}

fn decode_key(k: &str) -> Result<Option<String>, S3Error> {
    if k.is_empty() {
        return Ok(None);
    }
    percent_decode_str(k)
        .decode_utf8()
        .map(|c| Some(c.into_owned()))
        .map_err(|_| S3Error::new(S3ErrorCode::InvalidArgument, "key is not valid UTF-8"))
}

/// Splits a path-style request path into the bucket and the (decoded) key.
fn split_path(path: &str) -> Result<(Option<String>, Option<String>), S3Error> {
    let rest = path.strip_prefix('/').unwrap_or(path);
    if rest.is_empty() {
        return Ok((None, None));
    }
    let (bucket, key) = match rest.split_once('/') {
        Some((b, k)) => (b, Some(k)),
        None => (rest, None),
    };
    let bucket = percent_decode_str(bucket)
        .decode_utf8()
        .map_err(|_| S3Error::new(S3ErrorCode::InvalidBucketName, "bucket name is not UTF-8"))?
        .into_owned();
    Ok((Some(bucket), decode_key(key.unwrap_or(""))?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_paths() {
        assert_eq!(split_path("/").unwrap(), (None, None));
        assert_eq!(split_path("/b").unwrap(), (Some("b".into()), None));
        assert_eq!(split_path("/b/").unwrap(), (Some("b".into()), None));
        assert_eq!(
            split_path("/b/a%20b/c%2Bd+e").unwrap(),
            (Some("b".into()), Some("a b/c+d+e".into()))
        );
        assert!(split_path("/b/%ff").is_err());
    }

    #[test]
    fn virtual_hosts() {
        let d = vec!["s3.example.com".to_string()];
        assert_eq!(
            virtual_host_bucket(&d, "photos.s3.example.com"),
            Some("photos".into())
        );
        assert_eq!(
            virtual_host_bucket(&d, "Photos.S3.Example.com:9000"),
            Some("photos".into())
        );
        assert_eq!(virtual_host_bucket(&d, "s3.example.com:9000"), None);
        assert_eq!(virtual_host_bucket(&d, "evils3.example.com"), None);
        assert_eq!(virtual_host_bucket(&d, "127.0.0.1:9000"), None);
        assert_eq!(virtual_host_bucket(&[], "photos.s3.example.com"), None);
    }
}
