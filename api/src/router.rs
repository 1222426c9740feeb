//! Turns a request into an S3 operation: authenticates it, splits path-style
//! `/bucket/key` and the query, and calls the handler for the operation.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::Method;
use axum::response::Response;
use cairn_types::{BucketName, ObjectKey};
use percent_encoding::percent_decode_str;

use crate::auth;
use crate::error::{S3Error, S3ErrorCode};
use crate::{
    bucket, copy, delete, listing, multipart, multipart_list, object, tagging, versioning, ApiState,
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
    "attributes",
];

pub async fn dispatch(st: &Arc<ApiState>, req: Request) -> Result<Response, S3Error> {
    let caller = auth::authenticate(st, &req)?;
    let query = Query::parse(req.uri().query())?;
    let path = req.uri().path().to_string();
    let (bucket, key) = split_path(&path)?;
    let method = req.method().clone();

    let Some(bucket) = bucket else {
        return match method {
            Method::GET => bucket::list_buckets(st, &caller).await,
            _ => Err(method_not_allowed()),
        };
    };
    if let Some(sub) = unsupported(&query, key.is_some()) {
        return Err(S3Error::not_implemented(&format!(
            "the `{sub}` sub-resource"
        )));
    }
    let bucket_name = || BucketName::new(bucket.clone()).map_err(S3Error::from);

    match key {
        None => match method {
            Method::PUT if !query.has("versioning") => {
                bucket::create_bucket(st, &caller, &bucket, req).await
            }
            Method::HEAD => bucket::head_bucket(st, &bucket_name()?).await,
            Method::DELETE => bucket::delete_bucket(st, &bucket_name()?).await,
            Method::GET if query.has("location") => bucket::get_location(st, &bucket_name()?).await,
            Method::GET if query.has("versioning") => {
                versioning::get_bucket_versioning(st, &bucket_name()?).await
            }
            Method::PUT if query.has("versioning") => {
                versioning::put_bucket_versioning(st, &caller, &bucket_name()?, req).await
            }
            Method::GET if query.has("versions") => {
                versioning::list_object_versions(st, &bucket_name()?, &query).await
            }
            Method::GET if query.has("uploads") => {
                multipart_list::list_uploads(st, &bucket_name()?, &query).await
            }
            Method::GET if query.get("list-type") == Some("2") => {
                listing::list_objects(st, &bucket_name()?, &query, true).await
            }
            Method::GET => listing::list_objects(st, &bucket_name()?, &query, false).await,
            Method::POST if query.has("delete") => {
                delete::delete_objects(st, &caller, &bucket_name()?, req).await
            }
            _ => Err(method_not_allowed()),
        },
        Some(key) => {
            let bucket = bucket_name()?;
            let key = ObjectKey::new(key)?;
            let copy = req.headers().contains_key("x-amz-copy-source");
            match method {
                Method::PUT if query.has("tagging") => {
                    tagging::put_object_tagging(st, &caller, &bucket, &key, &query, req).await
                }
                Method::GET if query.has("tagging") => {
                    tagging::get_object_tagging(st, &bucket, &key, &query).await
                }
                Method::DELETE if query.has("tagging") => {
                    tagging::delete_object_tagging(st, &bucket, &key, &query).await
                }
                Method::PUT if query.has("uploadId") && copy => {
                    multipart::upload_part_copy(st, &bucket, &key, &query, req.headers()).await
                }
                Method::PUT if query.has("uploadId") => {
                    multipart::upload_part(st, caller, &bucket, &key, &query, req).await
                }
                Method::PUT if copy => copy::copy_object(st, &bucket, &key, req.headers()).await,
                Method::PUT => object::put_object(st, caller, &bucket, &key, req).await,
                Method::POST if query.has("uploads") => {
                    multipart::create_upload(st, &caller, &bucket, &key, req.headers()).await
                }
                Method::POST if query.has("uploadId") => {
                    multipart::complete_upload(st, &caller, &bucket, &key, &query, req).await
                }
                Method::GET if query.has("uploadId") => {
                    multipart_list::list_parts(st, &bucket, &key, &query).await
                }
                Method::DELETE if query.has("uploadId") => {
                    multipart::abort_upload(st, &bucket, &key, &query).await
                }
                Method::GET => {
                    object::get_object(st, &bucket, &key, &query, req.headers(), false).await
                }
                Method::HEAD => {
                    object::get_object(st, &bucket, &key, &query, req.headers(), true).await
                }
                Method::DELETE => delete::delete_object(st, &bucket, &key, &query).await,
                _ => Err(method_not_allowed()),
            }
        }
    }
}

/// The first sub-resource of the request Cairn does not implement for this target.
fn unsupported(query: &Query, has_key: bool) -> Option<&'static str> {
    UNSUPPORTED_SUBRESOURCES
        .iter()
        .find(|s| query.has(s) && !(has_key && **s == "tagging"))
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
    let key = match key {
        None | Some("") => None,
        Some(k) => Some(
            percent_decode_str(k)
                .decode_utf8()
                .map_err(|_| S3Error::new(S3ErrorCode::InvalidArgument, "key is not valid UTF-8"))?
                .into_owned(),
        ),
    };
    Ok((Some(bucket), key))
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
    fn parses_query() {
        let q = Query::parse(Some("list-type=2&prefix=a%2Fb+c&delimiter=%2F&location")).unwrap();
        assert_eq!(q.get("prefix"), Some("a/b c"));
        assert_eq!(q.get("delimiter"), Some("/"));
        assert!(q.has("location"));
    }

    #[test]
    fn tagging_is_routed_for_keys_only() {
        let q = Query::parse(Some("tagging")).unwrap();
        assert_eq!(unsupported(&q, false), Some("tagging"));
        assert_eq!(unsupported(&q, true), None);
        let q = Query::parse(Some("versioning")).unwrap();
        assert_eq!(unsupported(&q, false), None);
        let q = Query::parse(Some("acl")).unwrap();
        assert_eq!(unsupported(&q, true), Some("acl"));
    }
}
