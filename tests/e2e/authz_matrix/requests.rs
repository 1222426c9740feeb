//! The request that exercises each operation (an exhaustive `match` on `Op`) and the
//! fixture it runs against.

use super::*;

/// How one operation is exercised.
pub(super) struct Shape {
    pub(super) method: Method,
    /// Addresses `obj` (or `absent`) rather than the bucket.
    pub(super) on_key: bool,
    /// Addresses the service (`/`).
    pub(super) on_service: bool,
    pub(super) query: String,
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: Vec<u8>,
    pub(super) need: Need,
    /// Also needs READ on the copy source (`obj`).
    pub(super) reads_source: bool,
    /// Statuses of an allowed request on the existing resource.
    pub(super) ok: &'static [u16],
    /// Statuses of an allowed request on the missing key.
    pub(super) ok_missing_key: &'static [u16],
}

/// The fixture the request runs against.
pub(super) struct Fixture {
    pub(super) bucket: String,
    pub(super) upload_id: String,
    pub(super) part_etag: String,
}

pub(super) const OK: &[u16] = &[200];
pub(super) const NO_CONTENT: &[u16] = &[204];
pub(super) const NOT_FOUND: &[u16] = &[404];
pub(super) const CORS_XML: &str = "<CORSConfiguration><CORSRule><AllowedOrigin>https://app.example</AllowedOrigin><AllowedMethod>PUT</AllowedMethod></CORSRule></CORSConfiguration>";
pub(super) const TAGS_XML: &str =
    "<Tagging><TagSet><Tag><Key>changed</Key><Value>yes</Value></Tag></TagSet></Tagging>";

pub(super) const LIFECYCLE_XML: &str = "<LifecycleConfiguration><Rule><ID>old</ID><Prefix>never-written/</Prefix><Status>Enabled</Status><Expiration><Days>3650</Days></Expiration></Rule></LifecycleConfiguration>";
pub(super) const OBJECT_LOCK_XML: &str = "<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled></ObjectLockConfiguration>";
pub(super) const RETENTION_XML: &str =
    "<Retention><Mode>GOVERNANCE</Mode><RetainUntilDate>2100-01-01T00:00:00Z</RetainUntilDate></Retention>";
pub(super) const LEGAL_HOLD_XML: &str = "<LegalHold><Status>ON</Status></LegalHold>";

pub(super) const OWNERSHIP_XML: &str = "<OwnershipControls><Rule><ObjectOwnership>ObjectWriter</ObjectOwnership></Rule></OwnershipControls>";
pub(super) const PAB_XML: &str = "<PublicAccessBlockConfiguration><BlockPublicAcls>false</BlockPublicAcls></PublicAccessBlockConfiguration>";

/// A bucket policy that changes nothing the matrix looks at (it names a key that does not
/// exist).
pub(super) fn policy_json(bucket: &str) -> String {
    format!(
        r#"{{"Statement":[{{"Effect":"Allow","Principal":{{"AWS":"NOSUCHKEY00000000001"}},"Action":"s3:GetObject","Resource":"arn:aws:s3:::{bucket}/*"}}]}}"#
    )
}

pub(super) fn md5_b64(data: &[u8]) -> String {
    use aws_smithy_types::base64;
    use md5::{Digest, Md5};
    base64::encode(Md5::digest(data))
}

/// The request that exercises `op` against `f` (every operation has one: the match has no
/// wildcard arm).
pub(super) fn shape(op: Op, f: &Fixture) -> Shape {
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
            s(Method::GET, false, "lifecycle", BucketOwner, &[200, 404])
        }
        Op::PutBucketLifecycleConfiguration => Shape {
            body: LIFECYCLE_XML.as_bytes().to_vec(),
            ..s(Method::PUT, false, "lifecycle", BucketOwner, OK)
        },
        Op::DeleteBucketLifecycle => s(Method::DELETE, false, "lifecycle", BucketOwner, NO_CONTENT),
        Op::GetBucketEncryption => {
            s(Method::GET, false, "encryption", BucketOwner, &[200, 404])
        }
        Op::PutBucketEncryption => Shape {
            body: b"<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256</SSEAlgorithm></ApplyServerSideEncryptionByDefault></Rule></ServerSideEncryptionConfiguration>".to_vec(),
            ..s(Method::PUT, false, "encryption", BucketOwner, OK)
        },
        Op::DeleteBucketEncryption => {
            s(Method::DELETE, false, "encryption", BucketOwner, NO_CONTENT)
        }
        Op::GetObjectLockConfiguration => {
            s(Method::GET, false, "object-lock", BucketOwner, NOT_FOUND)
        }
        // The matrix bucket has no Object Lock (it is not versioned): an allowed request
        // reaches the handler, which refuses the bucket's state.
        Op::PutObjectLockConfiguration => Shape {
            body: OBJECT_LOCK_XML.as_bytes().to_vec(),
            headers: vec![("content-md5".into(), md5_b64(OBJECT_LOCK_XML.as_bytes()))],
            ..s(Method::PUT, false, "object-lock", BucketOwner, &[409])
        },
        Op::GetObjectRetention => Shape {
            ok_missing_key: &[400],
            ..s(Method::GET, true, "retention", BucketOwner, &[400])
        },
        Op::PutObjectRetention => Shape {
            body: RETENTION_XML.as_bytes().to_vec(),
            headers: vec![("content-md5".into(), md5_b64(RETENTION_XML.as_bytes()))],
            ok_missing_key: &[400],
            ..s(Method::PUT, true, "retention", BucketOwner, &[400])
        },
        Op::GetObjectLegalHold => Shape {
            ok_missing_key: &[400],
            ..s(Method::GET, true, "legal-hold", BucketOwner, &[400])
        },
        Op::PutObjectLegalHold => Shape {
            body: LEGAL_HOLD_XML.as_bytes().to_vec(),
            headers: vec![("content-md5".into(), md5_b64(LEGAL_HOLD_XML.as_bytes()))],
            ok_missing_key: &[400],
            ..s(Method::PUT, true, "legal-hold", BucketOwner, &[400])
        },
        Op::GetBucketOwnershipControls => s(
            Method::GET,
            false,
            "ownershipControls",
            BucketOwner,
            NOT_FOUND,
        ),
        Op::PutBucketOwnershipControls => Shape {
            body: OWNERSHIP_XML.as_bytes().to_vec(),
            ..s(Method::PUT, false, "ownershipControls", BucketOwner, OK)
        },
        Op::DeleteBucketOwnershipControls => s(
            Method::DELETE,
            false,
            "ownershipControls",
            BucketOwner,
            NO_CONTENT,
        ),
        Op::GetBucketPolicy => s(Method::GET, false, "policy", BucketOwner, NOT_FOUND),
        Op::PutBucketPolicy => Shape {
            body: policy_json(&f.bucket).into_bytes(),
            ..s(Method::PUT, false, "policy", BucketOwner, NO_CONTENT)
        },
        Op::DeleteBucketPolicy => s(Method::DELETE, false, "policy", BucketOwner, NO_CONTENT),
        Op::GetPublicAccessBlock => s(
            Method::GET,
            false,
            "publicAccessBlock",
            BucketOwner,
            NOT_FOUND,
        ),
        Op::PutPublicAccessBlock => Shape {
            body: PAB_XML.as_bytes().to_vec(),
            ..s(Method::PUT, false, "publicAccessBlock", BucketOwner, OK)
        },
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
            // A form without a policy: the request's own caller uploads `obj`.
            body: b"--x\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nobj\r\n\
                --x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\r\n\
                overwritten\r\n--x--\r\n"
                .to_vec(),
            ..s(Method::POST, false, "", Bucket(Write), &[204])
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
