//! The authorization matrix: every S3 operation Cairn serves (`cairn_api::op::Op::ALL`) ×
//! every kind of caller × every kind of resource, sent over HTTP with real signatures to a
//! real server, and compared with a reference model of S3's ACL rules written here, apart
//! from the server's table. A request the model denies must answer 403 and leave the
//! bucket exactly as it was (read back as the owner).
//!
//! The request for each operation is built by an exhaustive `match` on `Op`: an operation
//! added to the table without a request here does not compile, and the test checks that
//! the server classifies each built request as the operation it was built for.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketCannedAcl, CorsConfiguration, CorsRule, ObjectCannedAcl, Tag, Tagging,
};
use aws_sdk_s3::Client;
use cairn_api::op::{classify_path, Op};
use futures::StreamExt;
use http::{HeaderMap, HeaderName, HeaderValue, Method};

use crate::common::*;

/// The keys of the matrix: `(name, access key, secret)`. The root key owns every bucket.
const USERS: &[(&str, &str, &str)] = &[
    (
        "other",
        "MATRIXOTHER000000001",
        "matrix-other-secret-00000000000000001",
    ),
    (
        "reader",
        "MATRIXREAD0000000001",
        "matrix-read-secret-000000000000000001",
    ),
    (
        "writer",
        "MATRIXWRITE000000001",
        "matrix-write-secret-00000000000000001",
    ),
    (
        "acpreader",
        "MATRIXRACP0000000001",
        "matrix-racp-secret-000000000000000001",
    ),
    (
        "acpwriter",
        "MATRIXWACP0000000001",
        "matrix-wacp-secret-000000000000000001",
    ),
    (
        "full",
        "MATRIXFULL0000000001",
        "matrix-full-secret-000000000000000001",
    ),
];

/// ACL permissions, as the model knows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Perm {
    Read,
    Write,
    ReadAcp,
    WriteAcp,
    Full,
}

/// Who sends a request, and on what kind of bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Who {
    /// The bucket's (and the objects') owner, header-signed.
    Owner,
    /// Another key without any grant, header-signed.
    Other,
    /// A key granted `Perm` on the bucket and on its objects, header-signed.
    Grantee(Perm),
    /// Another key, on a bucket and objects with the `authenticated-read` canned ACL.
    OtherOnAuthenticatedRead,
    /// No credentials, private bucket.
    Anonymous,
    /// No credentials, bucket `public-read`, objects `public-read`.
    AnonymousOnPublicRead,
    /// No credentials, bucket `public-read-write`, objects `public-read`.
    AnonymousOnPublicReadWrite,
    /// A presigned URL by the key without grants, for exactly this request.
    PresignedByOther,
    /// The owner's presigned URL for GetObject of `obj`, replayed with this request's
    /// method, path and query.
    OwnerPresignedGetReplayed,
}

const CALLERS: &[Who] = &[
    Who::Owner,
    Who::Other,
    Who::Grantee(Perm::Read),
    Who::Grantee(Perm::Write),
    Who::Grantee(Perm::ReadAcp),
    Who::Grantee(Perm::WriteAcp),
    Who::Grantee(Perm::Full),
    Who::OtherOnAuthenticatedRead,
    Who::Anonymous,
    Who::AnonymousOnPublicRead,
    Who::AnonymousOnPublicReadWrite,
    Who::PresignedByOther,
    Who::OwnerPresignedGetReplayed,
];

/// What the request addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Resource {
    /// The bucket, its object `obj` (and, for object operations, `obj` itself).
    Existing,
    /// A bucket that does not exist.
    MissingBucket,
    /// An existing bucket, the key `absent` (object operations only).
    MissingKey,
}

/// What the model requires (its own reading of S3's ACL rules).
#[derive(Debug, Clone, Copy)]
enum Need {
    Public,
    AnyKey,
    BucketOwner,
    Bucket(Perm),
    Object(Perm),
}

/// How one operation is exercised.
struct Shape {
    method: Method,
    /// Addresses `obj` (or `absent`) rather than the bucket.
    on_key: bool,
    /// Addresses the service (`/`).
    on_service: bool,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    need: Need,
    /// Also needs READ on the copy source (`obj`).
    reads_source: bool,
    /// Statuses of an allowed request on the existing resource.
    ok: &'static [u16],
    /// Statuses of an allowed request on the missing key.
    ok_missing_key: &'static [u16],
}

/// The fixture the request runs against.
struct Fixture {
    bucket: String,
    upload_id: String,
    part_etag: String,
}

const OK: &[u16] = &[200];
const NO_CONTENT: &[u16] = &[204];
const NOT_FOUND: &[u16] = &[404];
const CORS_XML: &str = "<CORSConfiguration><CORSRule><AllowedOrigin>https://app.example</AllowedOrigin><AllowedMethod>PUT</AllowedMethod></CORSRule></CORSConfiguration>";
const TAGS_XML: &str =
    "<Tagging><TagSet><Tag><Key>changed</Key><Value>yes</Value></Tag></TagSet></Tagging>";

fn md5_b64(data: &[u8]) -> String {
    use aws_smithy_types::base64;
    use md5::{Digest, Md5};
    base64::encode(Md5::digest(data))
}

/// The request that exercises `op` against `f` (every operation has one: the match has no
/// wildcard arm).
fn shape(op: Op, f: &Fixture) -> Shape {
    use Need::*;
    use Perm::*;
    let upload = &f.upload_id;
    let s = |method: Method, on_key: bool, query: &str, need: Need, ok: &'static [u16]| Shape {
        method,
        on_key,
        on_service: false,
        query: query.to_string(),
        headers: Vec::new(),
        body: Vec::new(),
        need,
        reads_source: false,
        ok,
        ok_missing_key: &[],
    };
    let copy_source = vec![(
        "x-amz-copy-source".to_string(),
        format!("/{}/obj", f.bucket),
    )];
    let complete = format!(
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{}</ETag></Part></CompleteMultipartUpload>",
        f.part_etag
    );
    match op {
        Op::ListBuckets => Shape {
            on_service: true,
            ..s(Method::GET, false, "", AnyKey, OK)
        },
        // The bucket exists: its owner may repeat the request, anyone else gets a conflict.
        Op::CreateBucket => s(Method::PUT, false, "", AnyKey, &[200, 409]),
        Op::DeleteBucket => s(Method::DELETE, false, "", BucketOwner, &[409]),
        Op::HeadBucket => s(Method::HEAD, false, "", Bucket(Read), OK),
        Op::ListObjects => s(Method::GET, false, "", Bucket(Read), OK),
        Op::ListObjectsV2 => s(Method::GET, false, "list-type=2", Bucket(Read), OK),
        Op::ListObjectVersions => s(Method::GET, false, "versions", Bucket(Read), OK),
        Op::ListMultipartUploads => s(Method::GET, false, "uploads", Bucket(Read), OK),
        Op::GetBucketLocation => s(Method::GET, false, "location", BucketOwner, OK),
        Op::GetBucketVersioning => s(Method::GET, false, "versioning", BucketOwner, OK),
        Op::PutBucketVersioning => Shape {
            body: b"<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>"
                .to_vec(),
            ..s(Method::PUT, false, "versioning", BucketOwner, OK)
        },
        Op::GetBucketAcl => s(Method::GET, false, "acl", Bucket(ReadAcp), OK),
        Op::PutBucketAcl => Shape {
            headers: vec![("x-amz-acl".into(), "public-read-write".into())],
            ..s(Method::PUT, false, "acl", Bucket(WriteAcp), OK)
        },
        Op::GetBucketCors => s(Method::GET, false, "cors", BucketOwner, OK),
        Op::PutBucketCors => Shape {
            body: CORS_XML.replace("PUT", "DELETE").into_bytes(),
            ..s(Method::PUT, false, "cors", BucketOwner, OK)
        },
        Op::DeleteBucketCors => s(Method::DELETE, false, "cors", BucketOwner, NO_CONTENT),
        Op::GetBucketTagging => s(Method::GET, false, "tagging", BucketOwner, OK),
        Op::PutBucketTagging => Shape {
            body: TAGS_XML.as_bytes().to_vec(),
            ..s(Method::PUT, false, "tagging", BucketOwner, NO_CONTENT)
        },
        Op::DeleteBucketTagging => s(Method::DELETE, false, "tagging", BucketOwner, NO_CONTENT),
        Op::GetBucketPolicyStatus => s(Method::GET, false, "policyStatus", BucketOwner, OK),
        Op::GetBucketNotificationConfiguration => {
            s(Method::GET, false, "notification", BucketOwner, OK)
        }
        Op::GetBucketLogging => s(Method::GET, false, "logging", BucketOwner, OK),
        Op::GetBucketAccelerateConfiguration => {
            s(Method::GET, false, "accelerate", BucketOwner, OK)
        }
        Op::GetBucketRequestPayment => s(Method::GET, false, "requestPayment", BucketOwner, OK),
        Op::GetBucketLifecycleConfiguration => {
            s(Method::GET, false, "lifecycle", BucketOwner, NOT_FOUND)
        }
        Op::DeleteBucketLifecycle => s(Method::DELETE, false, "lifecycle", BucketOwner, NO_CONTENT),
        Op::GetBucketEncryption => s(Method::GET, false, "encryption", BucketOwner, NOT_FOUND),
        Op::DeleteBucketEncryption => {
            s(Method::DELETE, false, "encryption", BucketOwner, NO_CONTENT)
        }
        Op::GetObjectLockConfiguration => {
            s(Method::GET, false, "object-lock", BucketOwner, NOT_FOUND)
        }
        Op::GetBucketOwnershipControls => s(
            Method::GET,
            false,
            "ownershipControls",
            BucketOwner,
            NOT_FOUND,
        ),
        Op::DeleteBucketOwnershipControls => s(
            Method::DELETE,
            false,
            "ownershipControls",
            BucketOwner,
            NO_CONTENT,
        ),
        Op::GetBucketPolicy => s(Method::GET, false, "policy", BucketOwner, NOT_FOUND),
        Op::DeleteBucketPolicy => s(Method::DELETE, false, "policy", BucketOwner, NO_CONTENT),
        Op::GetPublicAccessBlock => s(
            Method::GET,
            false,
            "publicAccessBlock",
            BucketOwner,
            NOT_FOUND,
        ),
        Op::DeletePublicAccessBlock => s(
            Method::DELETE,
            false,
            "publicAccessBlock",
            BucketOwner,
            NO_CONTENT,
        ),
        Op::GetBucketWebsite => s(Method::GET, false, "website", BucketOwner, NOT_FOUND),
        Op::DeleteBucketWebsite => s(Method::DELETE, false, "website", BucketOwner, NO_CONTENT),
        Op::GetBucketReplication => s(Method::GET, false, "replication", BucketOwner, NOT_FOUND),
        Op::DeleteBucketReplication => s(
            Method::DELETE,
            false,
            "replication",
            BucketOwner,
            NO_CONTENT,
        ),
        Op::DeleteObjects => {
            let body = b"<Delete><Object><Key>obj</Key></Object></Delete>".to_vec();
            Shape {
                headers: vec![("content-md5".into(), md5_b64(&body))],
                body,
                ..s(Method::POST, false, "delete", Bucket(Write), OK)
            }
        }
        Op::PostObject => Shape {
            headers: vec![(
                "content-type".into(),
                "multipart/form-data; boundary=x".into(),
            )],
            body: b"--x\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nobj\r\n--x--\r\n"
                .to_vec(),
            ..s(Method::POST, false, "", BucketOwner, &[501])
        },
        Op::GetObject => Shape {
            ok_missing_key: NOT_FOUND,
            ..s(Method::GET, true, "", Object(Read), OK)
        },
        Op::HeadObject => Shape {
            ok_missing_key: NOT_FOUND,
            ..s(Method::HEAD, true, "", Object(Read), OK)
        },
        Op::GetObjectAttributes => Shape {
            headers: vec![("x-amz-object-attributes".into(), "ETag".into())],
            ok_missing_key: NOT_FOUND,
            ..s(Method::GET, true, "attributes", Object(Read), OK)
        },
        Op::PutObject => Shape {
            body: b"overwritten".to_vec(),
            ok_missing_key: OK,
            ..s(Method::PUT, true, "", Bucket(Write), OK)
        },
        Op::CopyObject => Shape {
            headers: [
                copy_source.clone(),
                vec![("x-amz-metadata-directive".into(), "REPLACE".into())],
            ]
            .concat(),
            reads_source: true,
            ok_missing_key: OK,
            ..s(Method::PUT, true, "", Bucket(Write), OK)
        },
        Op::DeleteObject => Shape {
            ok_missing_key: NO_CONTENT,
            ..s(Method::DELETE, true, "", Bucket(Write), NO_CONTENT)
        },
        Op::GetObjectAcl => Shape {
            ok_missing_key: NOT_FOUND,
            ..s(Method::GET, true, "acl", Object(ReadAcp), OK)
        },
        Op::PutObjectAcl => Shape {
            headers: vec![("x-amz-acl".into(), "public-read-write".into())],
            ok_missing_key: NOT_FOUND,
            ..s(Method::PUT, true, "acl", Object(WriteAcp), OK)
        },
        Op::GetObjectTagging => Shape {
            ok_missing_key: NOT_FOUND,
            ..s(Method::GET, true, "tagging", BucketOwner, OK)
        },
        Op::PutObjectTagging => Shape {
            body: TAGS_XML.as_bytes().to_vec(),
            ok_missing_key: NOT_FOUND,
            ..s(Method::PUT, true, "tagging", BucketOwner, OK)
        },
        Op::DeleteObjectTagging => Shape {
            ok_missing_key: NOT_FOUND,
            ..s(Method::DELETE, true, "tagging", BucketOwner, NO_CONTENT)
        },
        Op::CreateMultipartUpload => Shape {
            ok_missing_key: OK,
            ..s(Method::POST, true, "uploads", Bucket(Write), OK)
        },
        Op::UploadPart => Shape {
            body: b"part two".to_vec(),
            ok_missing_key: NOT_FOUND,
            ..s(
                Method::PUT,
                true,
                &format!("partNumber=2&uploadId={upload}"),
                Bucket(Write),
                OK,
            )
        },
        Op::UploadPartCopy => Shape {
            headers: copy_source,
            reads_source: true,
            ok_missing_key: NOT_FOUND,
            ..s(
                Method::PUT,
                true,
                &format!("partNumber=2&uploadId={upload}"),
                Bucket(Write),
                OK,
            )
        },
        Op::CompleteMultipartUpload => Shape {
            body: complete.into_bytes(),
            ok_missing_key: NOT_FOUND,
            ..s(
                Method::POST,
                true,
                &format!("uploadId={upload}"),
                Bucket(Write),
                OK,
            )
        },
        Op::AbortMultipartUpload => Shape {
            ok_missing_key: NOT_FOUND,
            ..s(
                Method::DELETE,
                true,
                &format!("uploadId={upload}"),
                Bucket(Write),
                NO_CONTENT,
            )
        },
        Op::ListParts => Shape {
            ok_missing_key: NOT_FOUND,
            ..s(
                Method::GET,
                true,
                &format!("uploadId={upload}"),
                Bucket(Write),
                OK,
            )
        },
        Op::PreflightRequest => Shape {
            headers: vec![
                ("origin".into(), "https://app.example".into()),
                ("access-control-request-method".into(), "PUT".into()),
            ],
            ok_missing_key: OK,
            ..s(Method::OPTIONS, true, "", Public, OK)
        },
    }
}

/// What the model says `who` holds on the bucket and on `obj`.
fn holds(who: Who, need: Need) -> bool {
    use Perm::*;
    let has = |granted: &[Perm], p: Perm| granted.contains(&p) || granted.contains(&Full);
    // (signed, owns the bucket and `obj`, bucket grants, `obj` grants)
    let (signed, owner, bucket, object): (bool, bool, Vec<Perm>, Vec<Perm>) = match who {
        Who::Owner => (true, true, vec![Full], vec![Full]),
        Who::Other | Who::PresignedByOther => (true, false, vec![], vec![]),
        // WRITE means nothing on an object.
        Who::Grantee(Write) => (true, false, vec![Write], vec![]),
        Who::Grantee(p) => (true, false, vec![p], vec![p]),
        Who::OtherOnAuthenticatedRead => (true, false, vec![Read], vec![Read]),
        Who::Anonymous => (false, false, vec![], vec![]),
        Who::AnonymousOnPublicRead => (false, false, vec![Read], vec![Read]),
        Who::AnonymousOnPublicReadWrite => (false, false, vec![Read, Write], vec![Read]),
        Who::OwnerPresignedGetReplayed => unreachable!("decided by the signature"),
    };
    match need {
        Need::Public => true,
        Need::AnyKey => signed,
        Need::BucketOwner => owner,
        Need::Bucket(p) => has(&bucket, p),
        Need::Object(p) => has(&object, p),
    }
}

/// The statuses the model expects; `Err(())` for "denied" (403, data unchanged).
fn expect(op: Op, sh: &Shape, who: Who, res: Resource) -> Result<Vec<u16>, ()> {
    if op == Op::PreflightRequest {
        // Browsers send preflights without credentials: whatever else the request carries
        // is not looked at, and only the bucket's CORS rules answer.
        return Ok(match res {
            Resource::MissingBucket => NOT_FOUND.to_vec(),
            _ => sh.ok.to_vec(),
        });
    }
    if who == Who::OwnerPresignedGetReplayed {
        // Only the very request that was signed passes, as the owner's.
        return if op == Op::GetObject && res != Resource::MissingKey {
            expect(op, sh, Who::Owner, res)
        } else {
            Err(())
        };
    }
    let anonymous = matches!(
        who,
        Who::Anonymous | Who::AnonymousOnPublicRead | Who::AnonymousOnPublicReadWrite
    );
    match (op, res) {
        (Op::ListBuckets, _) => return if anonymous { Err(()) } else { Ok(OK.to_vec()) },
        (Op::CreateBucket, Resource::MissingBucket) => {
            return if anonymous { Err(()) } else { Ok(OK.to_vec()) }
        }
        (Op::CreateBucket, _) if anonymous => return Err(()),
        (Op::CreateBucket, _) if who == Who::Owner => return Ok(sh.ok.to_vec()),
        (Op::CreateBucket, _) => return Ok(vec![409]),
        // Anyone learns that a bucket does not exist.
        (_, Resource::MissingBucket) => return Ok(NOT_FOUND.to_vec()),
        _ => {}
    }
    if res == Resource::MissingKey && matches!(sh.need, Need::Object(_)) {
        // There is no object whose ACL could decide: only a caller that may list the
        // bucket learns that the key is missing.
        return if holds(who, Need::Bucket(Perm::Read)) {
            Ok(sh.ok_missing_key.to_vec())
        } else {
            Err(())
        };
    }
    if !holds(who, sh.need) {
        return Err(());
    }
    if sh.reads_source && !holds(who, Need::Object(Perm::Read)) {
        return Err(());
    }
    match res {
        Resource::Existing => Ok(sh.ok.to_vec()),
        Resource::MissingKey => Ok(sh.ok_missing_key.to_vec()),
        Resource::MissingBucket => unreachable!(),
    }
}

/// A call's result as state: the value, or the error code (never request ids or times).
fn show<T: std::fmt::Debug, E: aws_sdk_s3::error::ProvideErrorMetadata, R>(
    r: Result<T, aws_sdk_s3::error::SdkError<E, R>>,
) -> String {
    match r {
        Ok(v) => format!("{v:?}"),
        Err(e) => format!("error {:?}", code_of(&e)),
    }
}

/// An owner's view of everything in a bucket a request could change.
async fn snapshot(s3: &Client, bucket: &str, upload_id: &str) -> BTreeMap<&'static str, String> {
    let mut out = BTreeMap::new();
    let exists = s3.head_bucket().bucket(bucket).send().await.is_ok();
    out.insert("exists", exists.to_string());
    if !exists {
        return out;
    }
    let versions = s3.list_object_versions().bucket(bucket).send().await;
    out.insert(
        "versions",
        show(versions.map(|v| {
            let mut all: Vec<String> = v
                .versions()
                .iter()
                .map(|v| format!("{:?} {:?} {:?}", v.key(), v.version_id(), v.e_tag()))
                .collect();
            all.extend(
                v.delete_markers()
                    .iter()
                    .map(|d| format!("marker {:?} {:?}", d.key(), d.version_id())),
            );
            all
        })),
    );
    let body = match s3.get_object().bucket(bucket).key("obj").send().await {
        Ok(o) => md5_hex(&o.body.collect().await.unwrap().into_bytes()),
        Err(e) => format!("error {:?}", code_of(&e)),
    };
    out.insert("obj", body);
    let r = s3.get_object_acl().bucket(bucket).key("obj").send().await;
    out.insert("obj acl", show(r.map(|a| a.grants().to_vec())));
    let r = s3
        .get_object_tagging()
        .bucket(bucket)
        .key("obj")
        .send()
        .await;
    out.insert("obj tags", show(r.map(|t| t.tag_set().to_vec())));
    let r = s3.get_bucket_acl().bucket(bucket).send().await;
    out.insert("bucket acl", show(r.map(|a| a.grants().to_vec())));
    let r = s3.get_bucket_tagging().bucket(bucket).send().await;
    out.insert("bucket tags", show(r.map(|t| t.tag_set().to_vec())));
    let r = s3.get_bucket_cors().bucket(bucket).send().await;
    out.insert("cors", show(r.map(|c| c.cors_rules().to_vec())));
    let r = s3.get_bucket_versioning().bucket(bucket).send().await;
    out.insert("versioning", show(r.map(|v| v.status().cloned())));
    let r = s3
        .list_parts()
        .bucket(bucket)
        .key("obj")
        .upload_id(upload_id)
        .send()
        .await;
    out.insert(
        "parts",
        show(r.map(|p| {
            p.parts()
                .iter()
                .map(|p| (p.part_number(), p.e_tag().map(str::to_string)))
                .collect::<Vec<_>>()
        })),
    );
    let r = s3.head_object().bucket(bucket).key("absent").send().await;
    out.insert("absent", show(r.map(|o| o.e_tag().map(str::to_string))));
    let r = s3.list_multipart_uploads().bucket(bucket).send().await;
    out.insert(
        "uploads",
        show(r.map(|u| {
            u.uploads()
                .iter()
                .map(|u| {
                    (
                        u.key().map(str::to_string),
                        u.upload_id().map(str::to_string),
                    )
                })
                .collect::<Vec<_>>()
        })),
    );
    out
}

/// Creates the bucket of one case: owned by the root key, with the ACLs `who` needs, an
/// object `obj` (tagged), bucket tags and CORS rules, and an upload of `obj` with one part.
async fn fixture(s3: &Client, ids: &BTreeMap<&str, String>, bucket: &str, who: Who) -> Fixture {
    let grant = |p: Perm| {
        let id = format!(
            "id={}",
            ids[match p {
                Perm::Read => "reader",
                Perm::Write => "writer",
                Perm::ReadAcp => "acpreader",
                Perm::WriteAcp => "acpwriter",
                Perm::Full => "full",
            }]
        );
        (p, id)
    };
    let mut create = s3.create_bucket().bucket(bucket);
    let mut put = s3
        .put_object()
        .bucket(bucket)
        .key("obj")
        .body(ByteStream::from(
            format!("matrix data of {bucket}").into_bytes(),
        ))
        .tagging("t=1");
    match who {
        Who::Grantee(p) => {
            let (p, id) = grant(p);
            create = match p {
                Perm::Read => create.grant_read(&id),
                Perm::Write => create.grant_write(&id),
                Perm::ReadAcp => create.grant_read_acp(&id),
                Perm::WriteAcp => create.grant_write_acp(&id),
                Perm::Full => create.grant_full_control(&id),
            };
            put = match p {
                Perm::Read => put.grant_read(&id),
                Perm::Write => put,
                Perm::ReadAcp => put.grant_read_acp(&id),
                Perm::WriteAcp => put.grant_write_acp(&id),
                Perm::Full => put.grant_full_control(&id),
            };
        }
        Who::OtherOnAuthenticatedRead => {
            create = create.acl(BucketCannedAcl::AuthenticatedRead);
            put = put.acl(ObjectCannedAcl::AuthenticatedRead);
        }
        Who::AnonymousOnPublicRead => {
            create = create.acl(BucketCannedAcl::PublicRead);
            put = put.acl(ObjectCannedAcl::PublicRead);
        }
        Who::AnonymousOnPublicReadWrite => {
            create = create.acl(BucketCannedAcl::PublicReadWrite);
            put = put.acl(ObjectCannedAcl::PublicRead);
        }
        _ => {}
    }
    create
        .send()
        .await
        .unwrap_or_else(|e| panic!("{bucket}: {e:?}"));
    put.send()
        .await
        .unwrap_or_else(|e| panic!("{bucket}: {e:?}"));
    s3.put_bucket_tagging()
        .bucket(bucket)
        .tagging(
            Tagging::builder()
                .tag_set(Tag::builder().key("b").value("1").build().unwrap())
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    s3.put_bucket_cors()
        .bucket(bucket)
        .cors_configuration(
            CorsConfiguration::builder()
                .cors_rules(
                    CorsRule::builder()
                        .allowed_origins("https://app.example")
                        .allowed_methods("PUT")
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let up = s3
        .create_multipart_upload()
        .bucket(bucket)
        .key("obj")
        .send()
        .await
        .unwrap();
    let upload_id = up.upload_id().unwrap().to_string();
    let part = s3
        .upload_part()
        .bucket(bucket)
        .key("obj")
        .upload_id(&upload_id)
        .part_number(1)
        .body(ByteStream::from_static(b"part one"))
        .send()
        .await
        .unwrap();
    Fixture {
        bucket: bucket.to_string(),
        upload_id,
        part_etag: part.e_tag().unwrap().to_string(),
    }
}

/// Sends a request as `key` (`None`: unsigned), header-signed or presigned, with the
/// independent aws-sigv4 signer; returns the response.
#[allow(clippy::too_many_arguments)]
fn send(
    server: &Server,
    key: Option<(&str, &str)>,
    presign: bool,
    method: &Method,
    path: &str,
    query: &str,
    extra: &[(String, String)],
    body: &[u8],
) -> RawResponse {
    let host = server.s3.to_string();
    let mut path_and_query = if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{query}")
    };
    let mut headers: Vec<(String, String)> = vec![("host".into(), host.clone())];
    headers.extend(extra.iter().cloned());
    if let Some((ak, sk)) = key {
        let added = sigv4(
            ak,
            sk,
            method.as_str(),
            &host,
            path,
            query,
            &headers,
            body,
            presign,
        );
        if presign {
            for (k, v) in added {
                path_and_query.push(if path_and_query.contains('?') {
                    '&'
                } else {
                    '?'
                });
                path_and_query.push_str(&format!("{}={}", query_encode(&k), query_encode(&v)));
            }
        } else {
            headers.extend(added);
        }
    }
    raw_send(server, method, &path_and_query, &headers, body)
}

fn raw_send(
    server: &Server,
    method: &Method,
    path_and_query: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> RawResponse {
    let mut req = format!("{method} {path_and_query} HTTP/1.1\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    ));
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    raw_request(server.s3, &bytes).expect("request")
}

/// The query of the owner's presigned GetObject URL of `bucket/obj`, to be replayed.
fn presigned_query(server: &Server, bucket: &str) -> String {
    presign(server, "GET", &format!("/{bucket}/obj"))
}

/// The query of the owner's presigned URL for `method path` (signed headers: `host`).
fn presign(server: &Server, method: &str, path: &str) -> String {
    let host = server.s3.to_string();
    let headers = [("host".to_string(), host.clone())];
    sigv4(
        ACCESS_KEY, SECRET_KEY, method, &host, path, "", &headers, b"", true,
    )
    .iter()
    .map(|(k, v)| format!("{}={}", query_encode(k), query_encode(v)))
    .collect::<Vec<_>>()
    .join("&")
}

/// One cell of the matrix, as run.
struct Cell {
    op: Op,
    who: Who,
    res: Resource,
    status: u16,
    code: Option<String>,
    expected: Result<Vec<u16>, ()>,
    unchanged: Option<bool>,
}

impl Cell {
    fn passed(&self) -> bool {
        match &self.expected {
            Ok(statuses) => statuses.contains(&self.status),
            Err(()) => {
                let refused = self.status == 403
                    && (self.op == Op::HeadObject
                        || self.op == Op::HeadBucket
                        || matches!(
                            self.code.as_deref(),
                            Some("AccessDenied") | Some("SignatureDoesNotMatch")
                        ));
                refused && self.unchanged == Some(true)
            }
        }
    }
}

async fn run_cell(
    server: Arc<Server>,
    s3: Client,
    ids: Arc<BTreeMap<&'static str, String>>,
    n: usize,
    op: Op,
    who: Who,
    res: Resource,
) -> Cell {
    let bucket = format!("mx{n:05}");
    let fx = match res {
        Resource::MissingBucket => Fixture {
            bucket: format!("nobucket{n:05}"),
            upload_id: "2f0000000000000000000000000000000000000000000000".into(),
            part_etag: "\"0\"".into(),
        },
        _ => fixture(&s3, &ids, &bucket, who).await,
    };
    let sh = shape(op, &fx);
    let key = if res == Resource::MissingKey {
        "absent"
    } else {
        "obj"
    };
    let path = if sh.on_service {
        "/".to_string()
    } else if sh.on_key {
        format!("/{}/{key}", fx.bucket)
    } else {
        format!("/{}", fx.bucket)
    };
    // The server must see the request as the operation it was built for.
    let mut h = HeaderMap::new();
    for (k, v) in &sh.headers {
        h.insert(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    let q = (!sh.query.is_empty()).then_some(sh.query.as_str());
    let classified = classify_path(&sh.method, &path, q, &h).map_err(|e| e.code);
    assert_eq!(
        classified,
        Ok(op),
        "{op:?}: {} {path}?{}",
        sh.method,
        sh.query
    );

    let before = match res {
        Resource::MissingBucket => None,
        _ => Some(snapshot(&s3, &fx.bucket, &fx.upload_id).await),
    };
    let expected = expect(op, &sh, who, res);
    let (m, b, hd, qy) = (
        sh.method.clone(),
        sh.body.clone(),
        sh.headers.clone(),
        sh.query.clone(),
    );
    let srv = server.clone();
    let (path2, bucket2) = (path.clone(), fx.bucket.clone());
    let resp = tokio::task::spawn_blocking(move || {
        let user = |name: &str| {
            let (_, ak, sk) = USERS.iter().find(|(n, _, _)| *n == name).unwrap();
            Some((*ak, *sk))
        };
        match who {
            Who::Owner => send(
                &srv,
                Some((ACCESS_KEY, SECRET_KEY)),
                false,
                &m,
                &path2,
                &qy,
                &hd,
                &b,
            ),
            Who::Other | Who::OtherOnAuthenticatedRead => {
                send(&srv, user("other"), false, &m, &path2, &qy, &hd, &b)
            }
            Who::PresignedByOther => send(&srv, user("other"), true, &m, &path2, &qy, &hd, &b),
            Who::Grantee(p) => {
                let name = match p {
                    Perm::Read => "reader",
                    Perm::Write => "writer",
                    Perm::ReadAcp => "acpreader",
                    Perm::WriteAcp => "acpwriter",
                    Perm::Full => "full",
                };
                send(&srv, user(name), false, &m, &path2, &qy, &hd, &b)
            }
            Who::Anonymous | Who::AnonymousOnPublicRead | Who::AnonymousOnPublicReadWrite => {
                send(&srv, None, false, &m, &path2, &qy, &hd, &b)
            }
            Who::OwnerPresignedGetReplayed => {
                let signed = presigned_query(&srv, &bucket2);
                let pq = if qy.is_empty() {
                    format!("{path2}?{signed}")
                } else {
                    format!("{path2}?{qy}&{signed}")
                };
                let mut headers = vec![("host".to_string(), srv.s3.to_string())];
                headers.extend(hd.iter().cloned());
                raw_send(&srv, &m, &pq, &headers, &b)
            }
        }
    })
    .await
    .unwrap();
    let unchanged = match (&expected, before) {
        (Err(()), Some(before)) => Some(snapshot(&s3, &fx.bucket, &fx.upload_id).await == before),
        (Err(()), None) => Some(true),
        _ => None,
    };
    Cell {
        op,
        who,
        res,
        status: resp.status,
        code: resp.error_code(),
        expected,
        unchanged,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_operation_by_every_caller_on_every_resource_matches_the_model() {
    let server = Arc::new(Server::start());
    let s3 = client(&server);
    let mut ids = BTreeMap::new();
    ids.insert("root", crate::acl::root_id(&server));
    for (name, ak, sk) in USERS {
        ids.insert(*name, crate::acl::new_user(&server, name, ak, sk).id);
    }
    let ids = Arc::new(ids);

    let mut cells = Vec::new();
    for &op in Op::ALL {
        for &who in CALLERS {
            let on_key = shape(
                op,
                &Fixture {
                    bucket: "b".into(),
                    upload_id: "u".into(),
                    part_etag: "e".into(),
                },
            )
            .on_key;
            let mut resources = vec![Resource::Existing];
            if op != Op::ListBuckets {
                resources.push(Resource::MissingBucket);
            }
            if on_key {
                resources.push(Resource::MissingKey);
            }
            for res in resources {
                cells.push((op, who, res));
            }
        }
    }
    let total = cells.len();
    let done = Arc::new(AtomicUsize::new(0));
    let results: Vec<Cell> = futures::stream::iter(cells.into_iter().enumerate())
        .map(|(n, (op, who, res))| {
            let (server, s3, ids, done) = (server.clone(), s3.clone(), ids.clone(), done.clone());
            async move {
                let c = run_cell(server, s3, ids, n, op, who, res).await;
                done.fetch_add(1, Ordering::Relaxed);
                c
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    assert_eq!(done.load(Ordering::Relaxed), total);

    let mut allowed = 0;
    let mut denied = 0;
    let mut failures = Vec::new();
    for c in &results {
        match c.expected {
            Ok(_) => allowed += 1,
            Err(()) => denied += 1,
        }
        if !c.passed() {
            failures.push(format!(
                "{:?} by {:?} on {:?}: got {} {:?}, model {:?}, data unchanged {:?}",
                c.op, c.who, c.res, c.status, c.code, c.expected, c.unchanged
            ));
        }
    }
    println!(
        "authorization matrix: {} operations x {} callers, {total} cells: {allowed} allowed, {denied} denied (each denied cell's bucket read back unchanged), {} failures",
        Op::ALL.len(),
        CALLERS.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {total} cells differ from the model:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The two attacks found in review (issue 13), as an attacker sends them.
#[tokio::test]
async fn the_review_attacks_are_refused_and_change_nothing() {
    let server = Server::start();
    let s3 = client(&server);
    for b in ["secret", "dropbox"] {
        s3.create_bucket().bucket(b).send().await.unwrap();
    }
    s3.put_bucket_versioning()
        .bucket("secret")
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
    put_bytes(&s3, "secret", "private.txt", b"the private data").await;
    let version = s3
        .head_object()
        .bucket("secret")
        .key("private.txt")
        .send()
        .await
        .unwrap()
        .version_id()
        .unwrap()
        .to_string();
    let up = s3
        .create_multipart_upload()
        .bucket("secret")
        .key("private.txt")
        .send()
        .await
        .unwrap();
    let upload = up.upload_id().unwrap().to_string();

    // 1. Unsigned requests carrying `acl` next to another operation's parameters.
    for (method, query) in [
        (Method::DELETE, "acl".to_string()),
        (Method::DELETE, format!("acl&versionId={version}")),
        (Method::DELETE, format!("acl&uploadId={upload}")),
        (Method::POST, "acl&uploads".to_string()),
        (Method::POST, format!("acl&uploadId={upload}")),
        (Method::PUT, "acl".to_string()),
    ] {
        let r = send(
            &server,
            None,
            false,
            &method,
            "/secret/private.txt",
            &query,
            &[],
            b"",
        );
        assert!(
            matches!(r.status, 400 | 403 | 405),
            "{method} ?{query}: {} {}",
            r.status,
            r.body_str()
        );
    }
    assert_eq!(
        get_bytes(&s3, "secret", "private.txt").await,
        b"the private data"
    );
    let versions = s3
        .list_object_versions()
        .bucket("secret")
        .send()
        .await
        .unwrap();
    assert_eq!(versions.versions().len(), 1);
    assert!(versions.delete_markers().is_empty());
    let uploads = s3
        .list_multipart_uploads()
        .bucket("secret")
        .send()
        .await
        .unwrap();
    assert_eq!(
        uploads.uploads().len(),
        1,
        "the upload was neither aborted nor completed"
    );

    // 2. A presigned PUT (signed headers: host) widened with unsigned headers into a copy of
    //    another bucket's object, made public.
    let query = presign(&server, "PUT", "/dropbox/upload.txt");
    let pq = format!("/dropbox/upload.txt?{query}");
    let host = vec![("host".to_string(), server.s3.to_string())];
    let widened = [
        host.clone(),
        vec![
            ("x-amz-copy-source".into(), "secret/private.txt".into()),
            ("x-amz-acl".into(), "public-read".into()),
        ],
    ]
    .concat();
    let r = raw_send(&server, &Method::PUT, &pq, &widened, b"");
    assert_eq!(r.status, 403, "{}", r.body_str());
    assert_eq!(r.error_code().as_deref(), Some("AccessDenied"));
    let r = send(
        &server,
        None,
        false,
        &Method::GET,
        "/dropbox/upload.txt",
        "",
        &[],
        b"",
    );
    assert_ne!(
        r.status,
        200,
        "anonymous read of the copy: {}",
        r.body_str()
    );
    assert!(!r.body_str().contains("the private data"));
    // The URL still does what it was signed for.
    let r = raw_send(&server, &Method::PUT, &pq, &host, b"an upload");
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert_eq!(get_bytes(&s3, "dropbox", "upload.txt").await, b"an upload");
    let r = send(
        &server,
        None,
        false,
        &Method::GET,
        "/dropbox/upload.txt",
        "",
        &[],
        b"",
    );
    assert_eq!(r.status, 403, "the upload stays private");
}
