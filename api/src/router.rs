//! Turns a request into an S3 operation: authenticates it, splits path-style
//! `/bucket/key` and the query, and calls the handler for the operation.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::Method;
use axum::response::Response;
use cairn_metadata::BucketRecord;
use cairn_types::{BucketName, InvalidName, ObjectKey};
use percent_encoding::percent_decode_str;

use crate::access::{self, Need};
use crate::auth::{self, Caller};
use crate::error::{S3Error, S3ErrorCode};
use crate::identity::canonical_id;
use crate::{
    acl_ops, attributes, bucket, bucket_config, copy, cors, delete, listing, multipart,
    multipart_complete, multipart_list, object, tagging, versioning, ApiState,
};

/// Decoded query parameters (a parameter given without `=` has an empty value).
#[derive(Debug, Default)]
pub struct Query(BTreeMap<String, String>);

impl Query {
    pub fn parse(raw: Option<&str>) -> Result<Query, S3Error> {
        let mut map = BTreeMap::new();
        for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            map.insert(decode(k)?, decode(v)?);
        }
        Ok(Query(map))
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }

    pub fn has(&self, k: &str) -> bool {
        self.0.contains_key(k)
    }
}

fn decode(s: &str) -> Result<String, S3Error> {
    let s = s.replace('+', " ");
    percent_decode_str(&s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| S3Error::new(S3ErrorCode::InvalidArgument, "query is not valid UTF-8"))
}

/// Sub-resources Cairn does not implement yet; named so that the client gets NotImplemented
/// instead of a wrong answer from the plain operation. (`tagging` is implemented on keys
/// only, see [`unsupported`].)
const UNSUPPORTED_SUBRESOURCES: &[&str] = &[
    "accelerate",
    "acl",
    "analytics",
    "cors",
    "encryption",
    "intelligent-tiering",
    "inventory",
    "lifecycle",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "ownershipControls",
    "policy",
    "policyStatus",
    "publicAccessBlock",
    "replication",
    "requestPayment",
    "restore",
    "retention",
    "legal-hold",
    "select",
    "tagging",
    "torrent",
    "website",
];

pub async fn dispatch(st: &Arc<ApiState>, req: Request) -> Result<Response, S3Error> {
    let query = Query::parse(req.uri().query())?;
    let (bucket, key) = split_request(st, &req)?;
    if req.method() == Method::OPTIONS {
        // CORS preflight: browsers send it without credentials.
        let Some(bucket) = bucket else {
            return Err(method_not_allowed());
        };
        let bucket = BucketName::new(bucket)?;
        return cors::preflight(st, &bucket, req.headers()).await;
    }
    let caller = auth::authenticate(st, &req)?;
    let method = req.method().clone();
    let origin = req
        .headers()
        .get("origin")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);

    let Some(bucket) = bucket else {
        return match method {
            Method::GET => bucket::list_buckets(st, &caller, &query).await,
            _ => Err(method_not_allowed()),
        };
    };
    let bucket = BucketName::new(bucket)?;
    if key.is_none() && method == Method::PUT && req.uri().query().unwrap_or("").is_empty() {
        return bucket::create_bucket(st, &caller, bucket.as_str(), req).await;
    }
    // Everything else needs the bucket to exist and the caller to be allowed.
    let record = access::load_bucket(st, &bucket).await?;
    if let Some(expected) = req.headers().get("x-amz-expected-bucket-owner") {
        // The request is only meant for a bucket of that account (canonical user id).
        if expected.as_bytes() != canonical_id(&record.owner).as_bytes() {
            return Err(S3Error::access_denied().with("BucketName", bucket.as_str()));
        }
    }
    let need = need(&method, &query, key.is_some());
    access::authorize(st, &caller, &record, need).await?;
    let mut resp = route(st, caller, &record, key, &query, req).await?;
    if let Some(origin) = origin {
        cors::decorate(st, &bucket, &origin, &method, &mut resp).await;
    }
    Ok(resp)
}

/// What the caller needs on the bucket for a request (see [`access`] for the table).
fn need(method: &Method, q: &Query, has_key: bool) -> Need {
    use cairn_metadata::Permission::{Read, ReadAcp, Write, WriteAcp};
    if !has_key {
        return match (method, bucket_config::subresource(q)) {
            (&Method::GET, Some("acl")) => Need::Bucket(ReadAcp),
            (&Method::PUT, Some("acl")) => Need::Bucket(WriteAcp),
            (_, Some(_)) => Need::Owner,
            (&Method::HEAD, None) => Need::Bucket(Read),
            (&Method::GET, None) if q.has("location") || q.has("versioning") => Need::Owner,
            (&Method::GET, None) => Need::Bucket(Read),
            (&Method::POST, None) if q.has("delete") => Need::Bucket(Write),
            _ => Need::Owner,
        };
    }
    match method {
        _ if q.has("tagging") => Need::Owner,
        _ if q.has("acl") => Need::Object,
        &Method::GET if q.has("uploadId") => Need::Bucket(Write),
        &Method::GET | &Method::HEAD => Need::Object,
        &Method::PUT | &Method::POST | &Method::DELETE => Need::Bucket(Write),
        _ => Need::Owner,
    }
}

/// Dispatches a request on an existing bucket the caller may use as [`need`] says.
async fn route(
    st: &Arc<ApiState>,
    caller: Caller,
    record: &BucketRecord,
    key: Option<String>,
    query: &Query,
    req: Request,
) -> Result<Response, S3Error> {
    let bucket = &record.name;
    let method = req.method().clone();
    if key.is_none() {
        match (bucket_config::subresource(query), &method) {
            (Some("acl"), &Method::GET) => return acl_ops::get_bucket_acl(st, record).await,
            (Some("acl"), &Method::PUT) => {
                return acl_ops::put_bucket_acl(st, &caller, record, req).await
            }
            (Some(sub), _) => return bucket_config::dispatch(st, &caller, record, sub, req).await,
            (None, _) => {}
        }
    }
    if let Some(sub) = unsupported(query, key.is_some()) {
        return Err(S3Error::not_implemented(&format!(
            "the `{sub}` sub-resource"
        )));
    }

    match key {
        None => match method {
            Method::HEAD => bucket::head_bucket(st, bucket).await,
            Method::DELETE => bucket::delete_bucket(st, bucket).await,
            Method::GET if query.has("location") => bucket::get_location(st, bucket).await,
            Method::GET if query.has("versioning") => {
                versioning::get_bucket_versioning(st, bucket).await
            }
            Method::PUT if query.has("versioning") => {
                versioning::put_bucket_versioning(st, &caller, bucket, req).await
            }
            Method::GET if query.has("versions") => {
                versioning::list_object_versions(st, bucket, query).await
            }
            Method::GET if query.has("uploads") => {
                multipart_list::list_uploads(st, bucket, query).await
            }
            Method::GET if query.get("list-type") == Some("2") => {
                listing::list_objects(st, bucket, query, true).await
            }
            Method::GET => listing::list_objects(st, bucket, query, false).await,
            Method::POST if query.has("delete") => {
                delete::delete_objects(st, &caller, bucket, req).await
            }
            _ => Err(method_not_allowed()),
        },
        Some(key) => {
            // A path whose key has control characters is not a URI S3 can parse.
            let key = ObjectKey::new(key).map_err(|e| match e {
                InvalidName::Key(why) if why.contains("control") => {
                    S3Error::new(S3ErrorCode::InvalidURI, "Couldn't parse the specified URI.")
                }
                e => S3Error::from(e),
            })?;
            let copy = req.headers().contains_key("x-amz-copy-source");
            let h = req.headers();
            match method {
                Method::GET if query.has("acl") => {
                    acl_ops::get_object_acl(st, &caller, record, &key, query).await
                }
                Method::GET if query.has("attributes") => {
                    attributes::get_object_attributes(st, &caller, record, &key, query, h).await
                }
                Method::PUT if query.has("acl") => {
                    acl_ops::put_object_acl(st, &caller, record, &key, query, req).await
                }
                Method::PUT if query.has("tagging") => {
                    tagging::put_object_tagging(st, &caller, bucket, &key, query, req).await
                }
                Method::GET if query.has("tagging") => {
                    tagging::get_object_tagging(st, bucket, &key, query).await
                }
                Method::DELETE if query.has("tagging") => {
                    tagging::delete_object_tagging(st, bucket, &key, query).await
                }
                Method::PUT if query.has("uploadId") && copy => {
                    multipart::upload_part_copy(st, &caller, bucket, &key, query, h).await
                }
                Method::PUT if query.has("uploadId") => {
                    multipart::upload_part(st, caller, bucket, &key, query, req).await
                }
                Method::PUT if copy => {
                    let acl = access::new_object_acl(st, &caller, record, h).await?;
                    copy::copy_object(st, &caller, bucket, &key, h, acl).await
                }
                Method::PUT => {
                    let acl = access::new_object_acl(st, &caller, record, h).await?;
                    object::put_object(st, caller, bucket, &key, req, acl).await
                }
                Method::POST if query.has("uploads") => {
                    let acl = access::new_object_acl(st, &caller, record, h).await?;
                    multipart::create_upload(st, bucket, &key, h, acl).await
                }
                Method::POST if query.has("uploadId") => {
                    multipart_complete::complete_upload(st, &caller, bucket, &key, query, req).await
                }
                Method::GET if query.has("uploadId") => {
                    multipart_list::list_parts(st, bucket, &key, query).await
                }
                Method::DELETE if query.has("uploadId") => {
                    multipart::abort_upload(st, bucket, &key, query).await
                }
                Method::GET => object::get_object(st, &caller, record, &key, query, h, false).await,
                Method::HEAD => object::get_object(st, &caller, record, &key, query, h, true).await,
                Method::DELETE => delete::delete_object(st, bucket, &key, query).await,
                _ => Err(method_not_allowed()),
            }
        }
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

/// Sub-resources answered on keys although the bucket form is not in the list above.
const KEY_SUBRESOURCES: &[&str] = &["acl", "tagging"];

/// The first sub-resource of the request Cairn does not implement for this target.
fn unsupported(query: &Query, has_key: bool) -> Option<&'static str> {
    UNSUPPORTED_SUBRESOURCES
        .iter()
        .find(|s| query.has(s) && !(has_key && KEY_SUBRESOURCES.contains(s)))
        .copied()
}

fn method_not_allowed() -> S3Error {
    S3Error::new(
        S3ErrorCode::MethodNotAllowed,
        "The specified method is not allowed against this resource.",
    )
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

    #[test]
    fn parses_query() {
        let q = Query::parse(Some("list-type=2&prefix=a%2Fb+c&delimiter=%2F&location")).unwrap();
        assert_eq!(q.get("prefix"), Some("a/b c"));
        assert_eq!(q.get("delimiter"), Some("/"));
        assert!(q.has("location"));
    }

    #[test]
    fn key_subresources_are_routed_for_keys_only() {
        let q = Query::parse(Some("tagging")).unwrap();
        assert_eq!(unsupported(&q, false), Some("tagging"));
        assert_eq!(unsupported(&q, true), None);
        let q = Query::parse(Some("versioning")).unwrap();
        assert_eq!(unsupported(&q, false), None);
        // Object ACLs are answered on keys; the bucket form never reaches this list.
        let q = Query::parse(Some("acl")).unwrap();
        assert_eq!(unsupported(&q, true), None);
        let q = Query::parse(Some("restore")).unwrap();
        assert_eq!(unsupported(&q, true), Some("restore"));
    }
}
