//! ACLs beyond buckets: refused ACL inputs and their S3 error codes, and the ACLs of
//! copies, multipart uploads and object versions.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ObjectCannedAcl;

use crate::acl::{anon, denied, new_user, root_id, ALT_KEY, ALT_SECRET};
use crate::common::*;

#[tokio::test(flavor = "multi_thread")]
async fn bad_acls_are_refused_with_s3_errors() {
    let server = Server::start();
    let root = client(&server);
    root.create_bucket()
        .bucket("bad-acls")
        .send()
        .await
        .unwrap();
    let code = |r: &RawResponse| (r.status, r.error_code());
    let put_acl = |h: &[(&str, &str)], body: &[u8]| {
        signed_raw_to(
            &server,
            &server.s3.to_string(),
            "PUT",
            "/bad-acls?acl",
            h,
            body,
            body,
            std::time::SystemTime::now(),
        )
    };
    let invalid = (400, Some("InvalidArgument".to_string()));
    assert_eq!(
        code(&put_acl(&[("x-amz-acl", "world-writable")], b"")),
        invalid
    );
    assert_eq!(
        code(&put_acl(&[("x-amz-grant-read", "id=nobody")], b"")),
        invalid
    );
    assert_eq!(
        code(&put_acl(
            &[("x-amz-grant-read", "uri=http://example.com/group")],
            b""
        )),
        invalid
    );
    assert_eq!(
        code(&put_acl(
            &[("x-amz-grant-read", "emailAddress=\"a@b.c\"")],
            b""
        )),
        (400, Some("UnresolvableGrantByEmailAddress".into()))
    );
    assert_eq!(
        code(&put_acl(
            &[("x-amz-acl", "private"), ("x-amz-grant-read", "uri=x")],
            b""
        )),
        (400, Some("InvalidRequest".into()))
    );
    assert_eq!(
        code(&put_acl(&[], b"")),
        (400, Some("MissingSecurityHeader".into()))
    );
    assert_eq!(
        code(&put_acl(&[], b"<AccessControlPolicy><AccessControl")),
        (400, Some("MalformedXML".into()))
    );
    let bad_perm = br#"<AccessControlPolicy><AccessControlList><Grant><Grantee><URI>http://acs.amazonaws.com/groups/global/AllUsers</URI></Grantee><Permission>EVERYTHING</Permission></Grant></AccessControlList></AccessControlPolicy>"#;
    assert_eq!(
        code(&put_acl(&[], bad_perm)),
        (400, Some("MalformedACLError".into()))
    );
    // A document without its Owner, or with a grant missing its Grantee or Permission, is
    // refused (it once went through and cleared every grant).
    let owner = root_id(&server);
    let all_users = "<Grantee><URI>http://acs.amazonaws.com/groups/global/AllUsers</URI></Grantee>";
    for body in [
        format!("<AccessControlPolicy><AccessControlList><Grant>{all_users}<Permission>READ</Permission></Grant></AccessControlList></AccessControlPolicy>"),
        "<AccessControlPolicy><Owner></Owner><AccessControlList/></AccessControlPolicy>".to_string(),
        format!("<AccessControlPolicy><Owner><ID>{owner}</ID></Owner><AccessControlList><Grant>{all_users}</Grant></AccessControlList></AccessControlPolicy>"),
        format!("<AccessControlPolicy><Owner><ID>{owner}</ID></Owner><AccessControlList><Grant><Permission>READ</Permission></Grant></AccessControlList></AccessControlPolicy>"),
    ] {
        assert_eq!(
            code(&put_acl(&[], body.as_bytes())),
            (400, Some("MalformedACLError".into())),
            "{body}"
        );
    }
    // Nothing of that changed the ACL.
    let acl = root
        .get_bucket_acl()
        .bucket("bad-acls")
        .send()
        .await
        .unwrap();
    assert_eq!(acl.grants().len(), 1);
    // Object writes check their ACL headers before storing anything.
    let err = root
        .put_object()
        .bucket("bad-acls")
        .key("k")
        .grant_read("id=unknown")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&err).as_deref(), Some("InvalidArgument"));
    let err = root
        .head_object()
        .bucket("bad-acls")
        .key("k")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(404));
}

#[tokio::test(flavor = "multi_thread")]
async fn acls_on_copies_uploads_and_versions() {
    let server = Server::start();
    let root = client(&server);
    let alt = new_user(&server, "alt", ALT_KEY, ALT_SECRET);
    root.create_bucket()
        .bucket("versioned")
        .send()
        .await
        .unwrap();
    root.put_bucket_versioning()
        .bucket("versioned")
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();

    // Multipart: the ACL given at creation is the completed object's.
    let up = root
        .create_multipart_upload()
        .bucket("versioned")
        .key("mp")
        .acl(ObjectCannedAcl::PublicRead)
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap();
    let part = root
        .upload_part()
        .bucket("versioned")
        .key("mp")
        .upload_id(id)
        .part_number(1)
        .body(ByteStream::from_static(b"multipart body"))
        .send()
        .await
        .unwrap();
    let done = aws_sdk_s3::types::CompletedMultipartUpload::builder()
        .parts(
            aws_sdk_s3::types::CompletedPart::builder()
                .part_number(1)
                .e_tag(part.e_tag().unwrap())
                .build(),
        )
        .build();
    root.complete_multipart_upload()
        .bucket("versioned")
        .key("mp")
        .upload_id(id)
        .multipart_upload(done)
        .send()
        .await
        .unwrap();
    assert_eq!(
        anon(&server, "GET", "/versioned/mp", b"").body,
        b"multipart body"
    );

    // A copy gets its own ACL, never the source's; reading the source needs READ on it.
    root.copy_object()
        .bucket("versioned")
        .key("copy")
        .copy_source("versioned/mp")
        .send()
        .await
        .unwrap();
    assert!(denied(&anon(&server, "GET", "/versioned/copy", b"")));
    root.copy_object()
        .bucket("versioned")
        .key("public-copy")
        .copy_source("versioned/mp")
        .acl(ObjectCannedAcl::PublicRead)
        .send()
        .await
        .unwrap();
    assert_eq!(
        anon(&server, "GET", "/versioned/public-copy", b"").status,
        200
    );
    alt.s3.create_bucket().bucket("alts").send().await.unwrap();
    let err = alt
        .s3
        .copy_object()
        .bucket("alts")
        .key("stolen")
        .copy_source("versioned/copy")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&err).as_deref(), Some("AccessDenied"));
    alt.s3
        .copy_object()
        .bucket("alts")
        .key("shared")
        .copy_source("versioned/public-copy")
        .send()
        .await
        .unwrap();
    assert_eq!(
        get_bytes(&alt.s3, "alts", "shared").await,
        b"multipart body"
    );

    // Versions carry their own ACLs; setting one changes nothing else about the version.
    let v1 = root
        .put_object()
        .bucket("versioned")
        .key("doc")
        .body(ByteStream::from_static(b"one"))
        .send()
        .await
        .unwrap()
        .version_id()
        .unwrap()
        .to_string();
    put_bytes(&root, "versioned", "doc", b"two").await;
    let before = root
        .head_object()
        .bucket("versioned")
        .key("doc")
        .version_id(&v1)
        .send()
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    root.put_object_acl()
        .bucket("versioned")
        .key("doc")
        .version_id(&v1)
        .acl(ObjectCannedAcl::PublicRead)
        .send()
        .await
        .unwrap();
    let after = root
        .head_object()
        .bucket("versioned")
        .key("doc")
        .version_id(&v1)
        .send()
        .await
        .unwrap();
    assert_eq!(before.last_modified(), after.last_modified());
    assert_eq!(before.e_tag(), after.e_tag());
    let r = anon(
        &server,
        "GET",
        &format!("/versioned/doc?versionId={v1}"),
        b"",
    );
    assert_eq!((r.status, r.body.as_slice()), (200, b"one".as_slice()));
    assert!(denied(&anon(&server, "GET", "/versioned/doc", b"")));
    let latest = root
        .get_object_acl()
        .bucket("versioned")
        .key("doc")
        .send()
        .await
        .unwrap();
    assert_eq!(latest.grants().len(), 1);
    let old = root
        .get_object_acl()
        .bucket("versioned")
        .key("doc")
        .version_id(&v1)
        .send()
        .await
        .unwrap();
    assert_eq!(old.grants().len(), 2);
}
