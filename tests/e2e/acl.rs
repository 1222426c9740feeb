//! Several users and ACLs: keys made with `cairn key create`, each with its canonical user id;
//! canned ACLs, `x-amz-grant-*` headers and AccessControlPolicy bodies on buckets and
//! objects; what other keys and unsigned (anonymous) HTTP requests may then do, and what
//! they may not.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    AccessControlPolicy, BucketCannedAcl, Grant, Grantee, ObjectCannedAcl, Owner, Permission, Type,
};
use aws_sdk_s3::Client;

use crate::common::*;

pub const ALT_KEY: &str = "ALTUSERKEY0000000001";
pub const ALT_SECRET: &str = "alt-user-secret-000000000000000000000";

/// A user made with `cairn key create`.
pub struct User {
    pub s3: Client,
    /// Its canonical user id, as `cairn key create` printed it.
    pub id: String,
}

/// The value of `label:` in `cairn key` output.
fn field(out: &str, label: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(label))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| panic!("no {label} in {out}"))
}

/// Creates the key `ak`/`sk` named `name` with `cairn key create`.
pub fn new_user(server: &Server, name: &str, ak: &str, sk: &str) -> User {
    let (ok, out) = server.cairn_key(&["create", name, "--access-key", ak, "--secret-key", sk]);
    assert!(ok, "{out}");
    assert_eq!(field(&out, "access key:"), ak);
    assert_eq!(field(&out, "secret key:"), sk);
    assert_eq!(field(&out, "display name:"), name);
    let id = field(&out, "canonical user id:");
    assert_eq!(id.len(), 64, "{out}");
    User {
        s3: client_with(server, ak, sk, "us-east-1"),
        id,
    }
}

/// The canonical user id of the root key, from `cairn key list`.
pub fn root_id(server: &Server) -> String {
    let (ok, out) = server.cairn_key(&["list"]);
    assert!(ok, "{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with(ACCESS_KEY))
        .unwrap_or_else(|| panic!("root key not listed: {out}"));
    let cols: Vec<&str> = line.split('\t').collect();
    // Access key, canonical user id, display name, state, requests and bytes per second.
    assert_eq!(cols.len(), 6, "{line}");
    assert_eq!(cols[2], "root");
    cols[1].to_string()
}

/// An unsigned HTTP request, as a browser or `curl` sends it.
pub fn anon(server: &Server, method: &str, path: &str, body: &[u8]) -> RawResponse {
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        server.s3,
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    raw_request(server.s3, &req).expect("anonymous request")
}

pub fn denied(r: &RawResponse) -> bool {
    r.status == 403 && r.error_code().as_deref() == Some("AccessDenied")
}

/// (permission, canonical id or group URI) of each grant, in the order the server gave.
fn grant_list(grants: &[Grant]) -> Vec<(String, String)> {
    grants
        .iter()
        .map(|g| {
            let e = g.grantee().expect("grantee");
            let who = e.id().or(e.uri()).unwrap_or_default().to_string();
            (g.permission().unwrap().as_str().to_string(), who)
        })
        .collect()
}

const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
const AUTHENTICATED: &str = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";

fn s(a: &str, b: &str) -> (String, String) {
    (a.to_string(), b.to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn grants_decide_what_other_keys_and_anonymous_requests_may_do() {
    let mut server = Server::start();
    let root = client(&server);
    let me = root_id(&server);
    let alt = new_user(&server, "alt", ALT_KEY, ALT_SECRET);
    assert_ne!(alt.id, me);

    root.create_bucket().bucket("shared").send().await.unwrap();
    put_bytes(&root, "shared", "doc", b"root's doc").await;
    // Private by default: nobody else may list, read or write.
    let acl = root.get_bucket_acl().bucket("shared").send().await.unwrap();
    assert_eq!(acl.owner().and_then(|o| o.id()), Some(me.as_str()));
    assert_eq!(acl.owner().and_then(|o| o.display_name()), Some("root"));
    assert_eq!(grant_list(acl.grants()), [s("FULL_CONTROL", &me)]);
    let err = alt
        .s3
        .list_objects_v2()
        .bucket("shared")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&err).as_deref(), Some("AccessDenied"));
    let err = alt
        .s3
        .get_object()
        .bucket("shared")
        .key("doc")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&err).as_deref(), Some("AccessDenied"));
    let err = alt
        .s3
        .put_object()
        .bucket("shared")
        .key("x")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&err).as_deref(), Some("AccessDenied"));
    let err = alt
        .s3
        .get_bucket_acl()
        .bucket("shared")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&err).as_deref(), Some("AccessDenied"));
    assert!(denied(&anon(&server, "GET", "/shared", b"")));
    assert!(denied(&anon(&server, "GET", "/shared/doc", b"")));
    // A missing key in a bucket one may not list is AccessDenied too (nothing leaks).
    assert!(denied(&anon(&server, "GET", "/shared/missing", b"")));
    assert!(denied(&anon(&server, "PUT", "/shared/anon", b"hi")));
    assert!(denied(&anon(&server, "GET", "/", b"")));
    // A missing bucket is still NoSuchBucket.
    let r = anon(&server, "GET", "/nope/doc", b"");
    assert_eq!(
        (r.status, r.error_code().as_deref()),
        (404, Some("NoSuchBucket"))
    );
    // Each key lists only its own buckets.
    assert!(alt
        .s3
        .list_buckets()
        .send()
        .await
        .unwrap()
        .buckets()
        .is_empty());

    // A public-read object is readable by anyone, over plain HTTP; the bucket stays closed.
    root.put_object_acl()
        .bucket("shared")
        .key("doc")
        .acl(ObjectCannedAcl::PublicRead)
        .send()
        .await
        .unwrap();
    let r = anon(&server, "GET", "/shared/doc", b"");
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert_eq!(r.body, b"root's doc");
    assert_eq!(anon(&server, "HEAD", "/shared/doc", b"").status, 200);
    assert_eq!(get_bytes(&alt.s3, "shared", "doc").await, b"root's doc");
    assert!(denied(&anon(&server, "GET", "/shared", b"")));
    let oacl = alt
        .s3
        .get_object_acl()
        .bucket("shared")
        .key("doc")
        .send()
        .await;
    assert_eq!(code_of(&oacl.unwrap_err()).as_deref(), Some("AccessDenied"));
    let oacl = root
        .get_object_acl()
        .bucket("shared")
        .key("doc")
        .send()
        .await
        .unwrap();
    assert_eq!(
        grant_list(oacl.grants()),
        [s("READ", ALL_USERS), s("FULL_CONTROL", &me)]
    );

    // A public-read bucket can be listed by anyone; a missing key is then NoSuchKey.
    root.put_bucket_acl()
        .bucket("shared")
        .acl(BucketCannedAcl::PublicRead)
        .send()
        .await
        .unwrap();
    let r = anon(&server, "GET", "/shared?list-type=2", b"");
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert!(r.body_str().contains("<Key>doc</Key>"));
    let r = anon(&server, "GET", "/shared/missing", b"");
    assert_eq!(
        (r.status, r.error_code().as_deref()),
        (404, Some("NoSuchKey"))
    );
    assert!(denied(&anon(&server, "PUT", "/shared/anon", b"hi")));
    alt.s3
        .list_objects_v2()
        .bucket("shared")
        .send()
        .await
        .unwrap();

    // A WRITE grant by canonical id lets alt write; what alt writes, alt owns.
    root.put_bucket_acl()
        .bucket("shared")
        .grant_write(format!("id=\"{}\"", alt.id))
        .grant_read_acp(format!("id={}", alt.id))
        .send()
        .await
        .unwrap();
    let acl = alt
        .s3
        .get_bucket_acl()
        .bucket("shared")
        .send()
        .await
        .unwrap();
    assert_eq!(
        grant_list(acl.grants()),
        [s("WRITE", &alt.id), s("READ_ACP", &alt.id)]
    );
    let names: Vec<_> = acl
        .grants()
        .iter()
        .filter_map(|g| g.grantee().and_then(|e| e.display_name()))
        .collect();
    assert_eq!(names, ["alt", "alt"]);
    // The grants replaced public-read; the owner keeps full control regardless.
    assert!(denied(&anon(&server, "GET", "/shared", b"")));
    root.list_objects_v2()
        .bucket("shared")
        .send()
        .await
        .unwrap();
    put_bytes(&alt.s3, "shared", "alts", b"alt's").await;
    let err = alt
        .s3
        .put_bucket_acl()
        .bucket("shared")
        .acl(BucketCannedAcl::PublicReadWrite)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&err).as_deref(), Some("AccessDenied"));
    // The bucket owner may not read alt's object unless alt grants it.
    let err = root
        .get_object()
        .bucket("shared")
        .key("alts")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&err).as_deref(), Some("AccessDenied"));
    let oacl = alt
        .s3
        .get_object_acl()
        .bucket("shared")
        .key("alts")
        .send()
        .await
        .unwrap();
    assert_eq!(oacl.owner().and_then(|o| o.id()), Some(alt.id.as_str()));
    assert_eq!(oacl.owner().and_then(|o| o.display_name()), Some("alt"));
    alt.s3
        .put_object()
        .bucket("shared")
        .key("alts")
        .acl(ObjectCannedAcl::BucketOwnerRead)
        .body(ByteStream::from_static(b"alt's, for root"))
        .send()
        .await
        .unwrap();
    assert_eq!(get_bytes(&root, "shared", "alts").await, b"alt's, for root");
    let oacl = alt
        .s3
        .get_object_acl()
        .bucket("shared")
        .key("alts")
        .send()
        .await
        .unwrap();
    assert_eq!(
        grant_list(oacl.grants()),
        [s("FULL_CONTROL", &alt.id), s("READ", &me)]
    );
    // ListObjects names each object's owner.
    let listed = root
        .list_objects_v2()
        .bucket("shared")
        .fetch_owner(true)
        .send()
        .await
        .unwrap();
    let owners: Vec<_> = listed
        .contents()
        .iter()
        .map(|o| {
            (
                o.key().unwrap(),
                o.owner().and_then(|w| w.display_name()).unwrap(),
            )
        })
        .collect();
    assert_eq!(owners, [("alts", "alt"), ("doc", "root")]);
    // The owner may delete what alt wrote; so may alt (WRITE on the bucket).
    alt.s3
        .delete_object()
        .bucket("shared")
        .key("alts")
        .send()
        .await
        .unwrap();

    // Grants survive a restart.
    server.restart();
    let root = client(&server);
    let alt_s3 = client_with(&server, ALT_KEY, ALT_SECRET, "us-east-1");
    put_bytes(&alt_s3, "shared", "after-restart", b"x").await;
    assert_eq!(anon(&server, "GET", "/shared/doc", b"").status, 200);
    root.put_bucket_acl()
        .bucket("shared")
        .acl(BucketCannedAcl::Private)
        .send()
        .await
        .unwrap();
    let err = alt_s3
        .put_object()
        .bucket("shared")
        .key("y")
        .body(ByteStream::from_static(b"y"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&err).as_deref(), Some("AccessDenied"));
}

#[tokio::test(flavor = "multi_thread")]
async fn public_write_buckets_policy_documents_and_revoking_everything() {
    let server = Server::start();
    let root = client(&server);
    let me = root_id(&server);
    let alt = new_user(&server, "alt", ALT_KEY, ALT_SECRET);
    root.create_bucket()
        .bucket("drop")
        .acl(BucketCannedAcl::PublicReadWrite)
        .send()
        .await
        .unwrap();
    let acl = root.get_bucket_acl().bucket("drop").send().await.unwrap();
    assert_eq!(
        grant_list(acl.grants()),
        [
            s("READ", ALL_USERS),
            s("WRITE", ALL_USERS),
            s("FULL_CONTROL", &me)
        ]
    );
    // Anyone may write; an anonymous writer owns its object, private to it.
    let r = anon(&server, "PUT", "/drop/anon.txt", b"from nobody");
    assert_eq!(r.status, 200, "{}", r.body_str());
    let r = anon(&server, "GET", "/drop?list-type=2&fetch-owner=true", b"");
    assert!(
        r.body_str()
            .contains("<DisplayName>anonymous</DisplayName>"),
        "{}",
        r.body_str()
    );
    let err = root
        .get_object()
        .bucket("drop")
        .key("anon.txt")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&err).as_deref(), Some("AccessDenied"));
    assert!(denied(&anon(&server, "GET", "/drop/anon.txt", b"")));
    // ... unless it says otherwise (x-amz-acl on an unsigned PUT).
    let req = format!(
        "PUT /drop/open.txt HTTP/1.1\r\nHost: {}\r\nx-amz-acl: public-read\r\nContent-Length: 4\r\nConnection: close\r\n\r\nopen",
        server.s3
    );
    assert_eq!(raw_request(server.s3, req.as_bytes()).unwrap().status, 200);
    assert_eq!(anon(&server, "GET", "/drop/open.txt", b"").body, b"open");
    assert_eq!(get_bytes(&root, "drop", "open.txt").await, b"open");
    // Anyone may delete, as WRITE on a bucket allows.
    assert_eq!(anon(&server, "DELETE", "/drop/anon.txt", b"").status, 204);

    // An AccessControlPolicy body: authenticated users may read, anonymous may not.
    let policy = AccessControlPolicy::builder()
        .owner(Owner::builder().id(&me).build())
        .grants(
            Grant::builder()
                .grantee(
                    Grantee::builder()
                        .r#type(Type::Group)
                        .uri(AUTHENTICATED)
                        .build()
                        .unwrap(),
                )
                .permission(Permission::Read)
                .build(),
        )
        .grants(
            Grant::builder()
                .grantee(
                    Grantee::builder()
                        .r#type(Type::CanonicalUser)
                        .id(&me)
                        .build()
                        .unwrap(),
                )
                .permission(Permission::FullControl)
                .build(),
        )
        .build();
    root.put_bucket_acl()
        .bucket("drop")
        .access_control_policy(policy)
        .send()
        .await
        .unwrap();
    let acl = root.get_bucket_acl().bucket("drop").send().await.unwrap();
    assert_eq!(
        grant_list(acl.grants()),
        [s("READ", AUTHENTICATED), s("FULL_CONTROL", &me)]
    );
    alt.s3
        .list_objects_v2()
        .bucket("drop")
        .send()
        .await
        .unwrap();
    assert!(denied(&anon(&server, "GET", "/drop", b"")));
    assert!(denied(&anon(&server, "PUT", "/drop/again", b"x")));

    // Revoking every grant leaves the owner in control of its bucket.
    let empty = AccessControlPolicy::builder()
        .owner(Owner::builder().id(&me).build())
        .build();
    root.put_bucket_acl()
        .bucket("drop")
        .access_control_policy(empty)
        .send()
        .await
        .unwrap();
    let acl = root.get_bucket_acl().bucket("drop").send().await.unwrap();
    assert!(acl.grants().is_empty());
    let err = alt
        .s3
        .list_objects_v2()
        .bucket("drop")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&err).as_deref(), Some("AccessDenied"));
    put_bytes(&root, "drop", "mine", b"still").await;
    root.put_bucket_acl()
        .bucket("drop")
        .acl(BucketCannedAcl::Private)
        .send()
        .await
        .unwrap();
}
