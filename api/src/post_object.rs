//! POST Object: browser form uploads (`POST /bucket`, `multipart/form-data`).
//!
//! The form is read as a stream ([`crate::form`]): the fields before the `file` part are
//! small and bounded ([`MAX_FIELDS_BYTES`]); the file part is never buffered whole, it
//! streams into the object service like a PutObject body. In order:
//!
//! 1. the fields up to the file are read (names are case-insensitive);
//! 2. the signature (SigV4 `x-amz-*` fields or SigV2 `AWSAccessKeyId`/`signature`) of the
//!    `policy` field is verified against the key ring: the form's key is the caller. A form
//!    without them is the request's own caller (normally anonymous);
//! 3. the policy ([`crate::post_policy`]) must not have expired, its conditions must hold
//!    and name every field;
//! 4. [`access::authorize`] decides, as for any operation, from the caller, the key and the
//!    headers a PutObject would carry (built from the fields);
//! 5. the file is stored, refused if its length is outside the policy's
//!    `content-length-range` (EntityTooSmall / EntityTooLarge) or its checksum fields do
//!    not match; nothing is committed unless the whole form arrived intact.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use cairn_metadata::{StoredChecksum, TagSet, WriteCondition};
use cairn_objects::PutObject;
use cairn_sigv4::{verify_body, AuthError, BodyExpectations, PayloadMode, PostSignature};
use cairn_types::{BucketName, ObjectKey};
use futures::Stream;
use time::OffsetDateTime;

use crate::access;
use crate::auth::{self, Caller, Via};
use crate::error::{S3Error, S3ErrorCode};
use crate::form::{self, FormError, FormEvent, FormParser, FormReader, PartHead, ReadError};
use crate::headers::{object_metadata, set, MAX_PUT_SIZE};
use crate::op::Op;
use crate::post_policy::{self, FormFields, Policy};
use crate::query::Query;
use crate::util::url_encode;
use crate::xml::XmlWriter;
use crate::{limits, metrics, tagging, ApiState};

/// Most bytes of the fields before the file (names and values), as S3.
pub const MAX_FIELDS_BYTES: usize = 20 * 1024;
/// Most fields before the file.
const MAX_FIELDS: usize = 200;
/// Most bytes after the file's data: fields sent after it (ignored, as S3 does) and the
/// epilogue.
const MAX_TRAILING: u64 = 64 * 1024;

/// Form fields whose value is sent as the request header of the same name by a PutObject.
const HEADER_FIELDS: &[&str] = &[
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "content-md5",
    "content-type",
    "expires",
];

/// Prefixes of the `x-amz-*` fields sent on as headers (not the signing fields, nor those
/// that would change what a PutObject does, such as `x-amz-copy-source`).
const AMZ_FIELD_PREFIXES: &[&str] = &[
    "x-amz-meta-",
    "x-amz-grant-",
    "x-amz-checksum-",
    "x-amz-server-side-encryption",
    "x-amz-storage-class",
    "x-amz-expected-bucket-owner",
    "x-amz-website-redirect-location",
    "x-amz-object-lock-",
];

type Body = futures::stream::BoxStream<'static, Result<Bytes, AuthError>>;

fn malformed(e: &FormError) -> S3Error {
    S3Error::new(
        S3ErrorCode::MalformedPOSTRequest,
        format!("The body of your POST request is not well-formed multipart/form-data: {e}."),
    )
}

fn read_error(e: ReadError<AuthError>) -> S3Error {
    match e {
        ReadError::Body(e) => e.into(),
        ReadError::Form(e) => malformed(&e),
    }
}

fn missing_field(name: &str) -> S3Error {
    S3Error::new(
        S3ErrorCode::InvalidArgument,
        format!(
            "Bucket POST must contain a field named '{name}'.  If it is specified, please check \
             the order of the fields."
        ),
    )
    .with("ArgumentName", name)
}

/// Handles a form upload to `bucket`; `caller` is who signed the request's headers (a
/// browser's form: nobody). Dispatched before authorization: this handler authorizes once
/// the form has said who it is from.
pub async fn post_object(
    st: &Arc<ApiState>,
    caller: Caller,
    bucket: &BucketName,
    query: &Query,
    req: Request,
) -> Result<Response, S3Error> {
    let request_headers = req.headers().clone();
    let boundary = request_headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .and_then(form::boundary)
        .ok_or_else(|| {
            S3Error::new(
                S3ErrorCode::MalformedPOSTRequest,
                "POST Object needs a multipart/form-data body with a boundary.",
            )
        })?;
    let parser = FormParser::new(&boundary).map_err(|e| malformed(&e))?;
    // The request's own integrity checks (a signed body hash, Content-MD5) cover the whole
    // form; the stream reports a mismatch before its end, which the file's stream reaches.
    let (body, _) = auth::body_stream(&caller, req)?;
    let mut reader = FormReader::new(body, parser);
    let (fields, file) = read_fields(&mut reader).await?;

    let (caller, policy) = form_caller(st, caller, &fields)?;
    if let (Some(ak), Some(_)) = (&caller.access_key, &policy) {
        limits::check_key(st, ak, metrics::declared_len(&request_headers).unwrap_or(0))?;
    }
    let key = fields.get("key").ok_or_else(|| missing_field("key"))?;
    let key = key.replace("${filename}", file.filename.as_deref().unwrap_or(""));
    let key = ObjectKey::new(key)?;
    let (min, max) = match &policy {
        Some(p) => {
            p.check_expiration(OffsetDateTime::now_utc())?;
            p.check_fields(&fields, bucket.as_str(), key.as_str())?;
            p.length_range(MAX_PUT_SIZE)
        }
        None => (0, MAX_PUT_SIZE),
    };
    let tags = match fields.get("tagging") {
        Some(xml) => tagging::from_xml(xml.as_bytes())?,
        None => TagSet::default(),
    };
    let headers = put_headers(&fields, &tags)?;
    let a = access::authorize(
        st,
        caller,
        Op::PostObject,
        Some(bucket),
        Some(&key),
        query,
        &headers,
    )
    .await?;
    let acl = access::new_object_acl(st, &a, &headers).await?;
    let mut metadata = object_metadata(&headers)?;
    // A bucket's default retention holds for form uploads too.
    crate::object_lock::new_version_lock(&a, &headers, false)?.store(&mut metadata.headers);
    cairn_objects::set_class(
        &mut metadata.headers,
        &crate::headers::storage_class(&headers, a.gate().storage_class.as_deref())?,
    );
    let put = PutObject {
        bucket: a.bucket()?.name.clone(),
        key: key.clone(),
        metadata,
        tags,
        acl,
        condition: WriteCondition::Always,
        size: None,
        protection: crate::sse::protection(st, &headers, a.gate().encryption.as_deref())?,
    };
    let expect = BodyExpectations::from_headers(&headers, PayloadMode::Unsigned, None)?;
    let failure = Arc::new(Mutex::new(None));
    let file_body = FileBody {
        reader,
        state: FileState::Data,
        seen: 0,
        min,
        max,
        trailing: 0,
        failure: failure.clone(),
    };
    let (body, verified) = verify_body(file_body, expect);
    let checksum = move || {
        verified
            .get()
            .and_then(|v| v.checksum)
            .map(|(alg, value)| StoredChecksum {
                algorithm: alg.name().to_string(),
                value,
            })
    };
    let stored = match st.objects.put_object(put, body, checksum).await {
        Ok(stored) => stored,
        Err(e) => {
            let why = failure.lock().unwrap_or_else(|p| p.into_inner()).take();
            return Err(why.unwrap_or_else(|| e.into()));
        }
    };
    Ok(respond(
        &fields,
        &request_headers,
        st.secure_transport,
        bucket,
        &key,
        &stored.etag,
        stored.version_id.as_deref(),
    ))
}

/// Reads the fields up to the file part; returns them and the file part's head.
async fn read_fields(reader: &mut FormReader<Body>) -> Result<(FormFields, PartHead), S3Error> {
    let mut fields = FormFields::new();
    let (mut total, mut count) = (0usize, 0usize);
    let too_large = || {
        S3Error::new(
            S3ErrorCode::MaxPostPreDataLengthExceededError,
            format!(
                "Your POST request fields preceding the upload file were too large (at most \
                 {MAX_FIELDS_BYTES} bytes in at most {MAX_FIELDS} fields)."
            ),
        )
    };
    loop {
        let head = match reader.event().await.map_err(read_error)? {
            FormEvent::Part(head) => head,
            FormEvent::End => {
                return Err(S3Error::new(
                    S3ErrorCode::InvalidArgument,
                    "POST requires exactly one file upload per request.",
                )
                .with("ArgumentName", "file"))
            }
            FormEvent::Data(_) | FormEvent::PartEnd => {
                return Err(malformed(&FormError::Malformed(
                    "data outside a part".into(),
                )))
            }
        };
        if head.name.eq_ignore_ascii_case("file") {
            return Ok((fields, head));
        }
        count += 1;
        total += head.name.len();
        if count > MAX_FIELDS || total > MAX_FIELDS_BYTES {
            return Err(too_large());
        }
        let mut value = Vec::new();
        loop {
            match reader.event().await.map_err(read_error)? {
                FormEvent::Data(b) => {
                    total += b.len();
                    if total > MAX_FIELDS_BYTES {
                        return Err(too_large());
                    }
                    value.extend_from_slice(&b);
                }
                FormEvent::PartEnd => break,
                FormEvent::Part(_) | FormEvent::End => {
                    return Err(malformed(&FormError::Malformed(
                        "a part without an end".into(),
                    )))
                }
            }
        }
        let value = String::from_utf8(value).map_err(|_| {
            S3Error::new(
                S3ErrorCode::InvalidArgument,
                format!("The form field '{}' is not UTF-8 text.", head.name),
            )
        })?;
        fields.insert(head.name, value)?;
    }
}

/// Who the form is from: the key that signed its policy (with the policy), or, for a form
/// without a signature, the request's own caller.
fn form_caller(
    st: &ApiState,
    caller: Caller,
    fields: &FormFields,
) -> Result<(Caller, Option<Policy>), S3Error> {
    let has = |n: &str| fields.get(n).is_some();
    let need = |n: &'static str| fields.get(n).ok_or_else(|| missing_field(n));
    let sig = if has("x-amz-algorithm") || has("x-amz-credential") || has("x-amz-signature") {
        Some(PostSignature::V4 {
            algorithm: need("x-amz-algorithm")?,
            credential: need("x-amz-credential")?,
            date: need("x-amz-date")?,
            signature: need("x-amz-signature")?,
        })
    } else if has("awsaccesskeyid") || has("signature") {
        Some(PostSignature::V2 {
            access_key: need("AWSAccessKeyId")?,
            signature: need("signature")?,
        })
    } else {
        None
    };
    match (sig, fields.get("policy")) {
        (None, None) => Ok((caller, None)),
        (None, Some(_)) => Err(missing_field("AWSAccessKeyId")),
        (Some(_), None) => Err(missing_field("policy")),
        (Some(sig), Some(policy_b64)) => {
            let v4 = matches!(sig, PostSignature::V4 { .. });
            let ak = cairn_sigv4::verify_post_policy(policy_b64, &sig, &st.keys)?;
            let policy = post_policy::parse(policy_b64)?;
            let via = Via {
                auth_type: Some("POST"),
                signature_version: Some(if v4 { "AWS4-HMAC-SHA256" } else { "AWS" }),
                ..caller.via
            };
            Ok((Caller::form(Some(ak), via), Some(policy)))
        }
    }
}

/// The headers a PutObject of the same object would carry, from the form's fields.
fn put_headers(fields: &FormFields, tags: &TagSet) -> Result<HeaderMap, S3Error> {
    let mut h = HeaderMap::new();
    let mut add = |name: &str, value: &str| -> Result<(), S3Error> {
        let n = HeaderName::from_bytes(name.as_bytes());
        let v = HeaderValue::from_str(value);
        match (n, v) {
            (Ok(n), Ok(v)) => {
                h.insert(n, v);
                Ok(())
            }
            _ => Err(S3Error::new(
                S3ErrorCode::InvalidArgument,
                format!("The form field '{name}' has a value that cannot be a header."),
            )
            .with("ArgumentName", name.to_string())),
        }
    };
    for (name, value) in fields.iter() {
        let lower = name.to_ascii_lowercase();
        if lower == "acl" {
            add("x-amz-acl", value)?;
        } else if lower == "x-amz-checksum-algorithm" {
            add("x-amz-sdk-checksum-algorithm", value)?;
        } else if HEADER_FIELDS.contains(&lower.as_str())
            || AMZ_FIELD_PREFIXES.iter().any(|p| lower.starts_with(p))
        {
            add(&lower, value)?;
        }
    }
    if !tags.is_empty() {
        let encoded: Vec<String> = tags
            .iter()
            .map(|(k, v)| format!("{}={}", url_encode(k), url_encode(v)))
            .collect();
        add("x-amz-tagging", &encoded.join("&"))?;
    }
    Ok(h)
}

/// The answer to a stored upload: a redirect (`success_action_redirect` or `redirect`, an
/// http(s) URL), else `success_action_status` 200 (empty), 201 (a `PostResponse`
/// document) or, for anything else, 204.
fn respond(
    fields: &FormFields,
    request: &HeaderMap,
    tls: bool,
    bucket: &BucketName,
    key: &ObjectKey,
    etag: &str,
    version_id: Option<&str>,
) -> Response {
    let quoted = format!("\"{etag}\"");
    let location = object_url(request, tls, bucket, key);
    let redirect = fields
        .get("success_action_redirect")
        .or_else(|| fields.get("redirect"))
        .map(str::trim)
        .filter(|u| u.starts_with("http://") || u.starts_with("https://"));
    let mut resp = if let Some(url) = redirect {
        let sep = if url.contains('?') { '&' } else { '?' };
        let target = format!(
            "{url}{sep}bucket={}&key={}&etag={}",
            query_encode(bucket.as_str()),
            query_encode(key.as_str()),
            query_encode(&quoted)
        );
        let mut resp = StatusCode::SEE_OTHER.into_response();
        set(resp.headers_mut(), "location", &target);
        resp
    } else {
        match fields.get("success_action_status").map(str::trim) {
            Some("200") => StatusCode::OK.into_response(),
            Some("201") => {
                let mut w = XmlWriter::new();
                // As S3: a document without a namespace.
                w.open("PostResponse");
                w.elem("Location", &location);
                w.elem("Bucket", bucket.as_str());
                w.elem("Key", key.as_str());
                w.elem("ETag", &quoted);
                w.close("PostResponse");
                let mut resp = (StatusCode::CREATED, w.finish()).into_response();
                set(resp.headers_mut(), "content-type", "application/xml");
                resp
            }
            _ => StatusCode::NO_CONTENT.into_response(),
        }
    };
    let h = resp.headers_mut();
    set(h, "etag", &quoted);
    if !h.contains_key("location") {
        set(h, "location", &location);
    }
    if let Some(v) = version_id {
        set(h, "x-amz-version-id", v);
    }
    resp
}

/// The new object's URL, path style under the Host the form was posted to (`https` when
/// the listener serves TLS, or a proxy in front of it says it does).
fn object_url(request: &HeaderMap, tls: bool, bucket: &BucketName, key: &ObjectKey) -> String {
    let host = request
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    let https = tls
        || request
            .get("x-forwarded-proto")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
    let scheme = if https { "https" } else { "http" };
    format!(
        "{scheme}://{host}/{}/{}",
        url_encode(bucket.as_str()),
        url_encode(key.as_str())
    )
}

/// Percent-encodes a query parameter value (everything but the unreserved characters).
fn query_encode(s: &str) -> String {
    url_encode(s).replace('/', "%2F")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileState {
    /// In the file's data.
    Data,
    /// After it: fields that are ignored, up to the closing boundary.
    Trailing,
    /// After the form: the rest of the body.
    Epilogue,
    Done,
}

/// The file part's data as a body stream. It ends only once the whole form has been read
/// (fields after the file are ignored) and the request body has ended cleanly, so the
/// object is committed only for a complete, intact request. The length must be within
/// `min..=max`. Its own errors are kept in `failure` (the stream carries them as
/// [`AuthError`], as the body pipeline wants), so that the handler answers with them.
struct FileBody {
    reader: FormReader<Body>,
    state: FileState,
    seen: u64,
    min: u64,
    max: u64,
    trailing: u64,
    failure: Arc<Mutex<Option<S3Error>>>,
}

impl FileBody {
    fn fail(&mut self, e: S3Error) -> Poll<Option<Result<Bytes, AuthError>>> {
        let placeholder = AuthError::InvalidRequest(e.message.clone());
        *self.failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
        self.state = FileState::Done;
        Poll::Ready(Some(Err(placeholder)))
    }

    fn read_failed(&mut self, e: ReadError<AuthError>) -> Poll<Option<Result<Bytes, AuthError>>> {
        match e {
            ReadError::Body(e) => {
                self.state = FileState::Done;
                Poll::Ready(Some(Err(e)))
            }
            ReadError::Form(e) => self.fail(malformed(&e)),
        }
    }
}

impl Stream for FileBody {
    type Item = Result<Bytes, AuthError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            match this.state {
                FileState::Done => return Poll::Ready(None),
                FileState::Data => match futures::ready!(this.reader.poll_event(cx)) {
                    Ok(FormEvent::Data(b)) => {
                        this.seen += b.len() as u64;
                        if this.seen > this.max {
                            return this.fail(
                                S3Error::new(
                                    S3ErrorCode::EntityTooLarge,
                                    "Your proposed upload exceeds the maximum allowed size",
                                )
                                .with("MaxSizeAllowed", this.max.to_string()),
                            );
                        }
                        return Poll::Ready(Some(Ok(b)));
                    }
                    Ok(FormEvent::PartEnd) => {
                        if this.seen < this.min {
                            return this.fail(
                                S3Error::new(
                                    S3ErrorCode::EntityTooSmall,
                                    "Your proposed upload is smaller than the minimum allowed size",
                                )
                                .with("ProposedSize", this.seen.to_string())
                                .with("MinSizeAllowed", this.min.to_string()),
                            );
                        }
                        this.state = FileState::Trailing;
                    }
                    Ok(FormEvent::Part(_) | FormEvent::End) => {
                        return this.fail(malformed(&FormError::Malformed(
                            "the file part has no end".into(),
                        )))
                    }
                    Err(e) => return this.read_failed(e),
                },
                FileState::Trailing => match futures::ready!(this.reader.poll_event(cx)) {
                    Ok(FormEvent::Data(b)) => {
                        this.trailing += b.len() as u64;
                        if this.trailing > MAX_TRAILING {
                            return this.fail(malformed(&FormError::Malformed(format!(
                                "more than {MAX_TRAILING} bytes of fields after the file"
                            ))));
                        }
                    }
                    Ok(FormEvent::Part(_) | FormEvent::PartEnd) => {}
                    Ok(FormEvent::End) => this.state = FileState::Epilogue,
                    Err(e) => return this.read_failed(e),
                },
                FileState::Epilogue => {
                    match futures::ready!(this.reader.poll_body_end(cx, MAX_TRAILING)) {
                        Ok(()) => this.state = FileState::Done,
                        Err(e) => return this.read_failed(e),
                    }
                }
            }
        }
    }
}
