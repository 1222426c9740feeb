//! The authorization matrix: every S3 operation Cairn serves (`cairn_api::op::Op::ALL`) ×
//! every kind of caller × every kind of resource, sent over HTTP with real signatures to a
//! real server, and compared with a reference model of S3's ACL and policy rules written here, apart
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

mod fixture;
mod model;
mod requests;
mod wire;
use fixture::*;
use model::*;
use requests::*;
use wire::*;

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
                // Where policies take part, DeleteObjects decides each key as its own
                // DeleteObject: a refused one is an <Error> entry of a 200 answer.
                let refused_per_key = self.op == Op::DeleteObjects
                    && self.status == 200
                    && self.code.as_deref() == Some("AccessDenied");
                let refused = refused_per_key
                    || (self.status == 403
                        && (self.op == Op::HeadObject
                            || self.op == Op::HeadBucket
                            || matches!(
                                self.code.as_deref(),
                                Some("AccessDenied") | Some("SignatureDoesNotMatch")
                            )));
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
            Who::Other | Who::OtherOnAuthenticatedRead | Who::AllowedByPolicy => {
                send(&srv, user("other"), false, &m, &path2, &qy, &hd, &b)
            }
            Who::GrantedButDeniedByPolicy => {
                send(&srv, user("full"), false, &m, &path2, &qy, &hd, &b)
            }
            Who::Confined => send(&srv, user("confined"), false, &m, &path2, &qy, &hd, &b),
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
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("confined.json");
    std::fs::write(&file, CONFINED_POLICY).unwrap();
    let (_, confined, _) = USERS.iter().find(|(n, _, _)| *n == "confined").unwrap();
    let (ok, out) = server.cairn_key(&["set-policy", confined, file.to_str().unwrap()]);
    assert!(ok, "{out}");
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
