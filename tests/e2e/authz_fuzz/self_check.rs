//! The oracle can fail: checks, before the run, that its judgement flags what it must and
//! that the owner's own requests through the same path are accepted.

use super::*;

/// The oracle can fail: synthetic answers the model forbids are flagged, the one it allows
/// is not; and through the same client, signer and checks, the owner's own (allowed)
/// requests do get 2xx answers — which would be violations from anyone else — while X's
/// signatures are accepted and X is then refused by authorization.
pub(super) fn self_check(fx: &Fixture) {
    let ok = |status: u16, body: &str| -> Result<Resp, String> {
        Ok(Resp {
            status,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        })
    };
    let empty_list = "<ListAllMyBucketsResult><Buckets></Buckets></ListAllMyBucketsResult>";
    let secret_list = "<ListAllMyBucketsResult><Buckets><Bucket><Name>secret</Name></Bucket>\
                       </Buckets></ListAllMyBucketsResult>";
    use Caller::*;
    let get = Ok(Op::GetObject);
    let list = Ok(Op::ListBuckets);
    assert!(judge(Anonymous, &get, "/secret/k", &ok(200, "data")).is_some());
    assert!(judge(XSigned, &get, "/secret/k", &ok(206, "da")).is_some());
    assert!(judge(XSigned, &Ok(Op::DeleteObject), "/secret/k", &ok(204, "")).is_some());
    assert!(judge(Anonymous, &list, "/secret/k", &ok(200, empty_list)).is_some());
    assert!(judge(XPresignedUnsigned, &list, "/secret/k", &ok(200, empty_list)).is_some());
    assert!(judge(XSigned, &list, "/secret/k", &ok(200, secret_list)).is_some());
    assert!(judge(XSigned, &list, "/secret/k", &ok(200, empty_list)).is_none());
    assert!(judge(XPresigned, &list, "/secret/k", &ok(200, empty_list)).is_none());
    assert!(judge(
        XSigned,
        &get,
        "/secret/k",
        &ok(403, "<Code>AccessDenied</Code>")
    )
    .is_none());
    assert!(judge(
        XSigned,
        &get,
        "/secret/k",
        &ok(500, "<Code>InternalError</Code>")
    )
    .is_some());
    assert!(judge(
        XSigned,
        &get,
        "/secret/k",
        &ok(501, "<Code>NotImplemented</Code>")
    )
    .is_none());
    assert!(judge(
        XSigned,
        &get,
        "/secret/k",
        &ok(403, "<Code>SignatureDoesNotMatch</Code>")
    )
    .is_some());
    assert!(judge(
        XPresignedUnsigned,
        &get,
        "/secret/k",
        &ok(404, "<Code>NoSuchKey</Code>")
    )
    .is_some());
    let preflight = Ok(Op::PreflightRequest);
    let bad = ok(400, "<Code>BadRequest</Code>");
    assert!(judge(XPresignedUnsigned, &preflight, "/secret/k", &bad).is_none());
    assert!(judge(XPresignedUnsigned, &preflight, "/secret/k", &ok(200, "")).is_some());
    assert!(judge(Anonymous, &get, "/secret/k", &Err("reset".into())).is_some());
    let no_such_key = ok(404, "<Code>NoSuchKey</Code>");
    assert!(judge(Anonymous, &get, "/secret/k", &no_such_key).is_some());
    let no_such_bucket = ok(404, "<Code>NoSuchBucket</Code>");
    assert!(judge(Anonymous, &get, "/otherbucket/x", &no_such_bucket).is_none());

    let mut conn = Conn::new(fx.addr);
    let mut send = |caller: Caller,
                    signer: (&str, &str),
                    method: &'static str,
                    path: &str,
                    query: &[&str],
                    unsigned: &[(&str, &str)]| {
        let s = Shape {
            caller,
            method,
            path: path.to_string(),
            query: query.iter().map(|q| q.to_string()).collect(),
            headers: Vec::new(),
            unsigned: unsigned
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: Vec::new(),
        };
        let w = wire(fx, &s, signer);
        let op = classify(&w);
        let r = conn
            .send(&w.bytes(), method == "HEAD")
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        (op, r)
    };
    let owner = (ACCESS_KEY, SECRET_KEY);
    let x = (X_KEY, X_SECRET);

    let (op, r) = send(XSigned, owner, "GET", "/secret/small", &[], &[]);
    assert_eq!(r.status, 200, "{}", excerpt(&r.body));
    assert_eq!(r.body, b"a small private object");
    assert_eq!(op, Ok(Op::GetObject));
    // The same answer to anyone else is a violation.
    let r = Ok(r);
    assert!(judge(Anonymous, &op, "/secret/k", &r).is_some());
    assert!(judge(XSigned, &op, "/secret/k", &r).is_some());

    let (op, r) = send(XSigned, owner, "GET", "/secret", &["versions"], &[]);
    assert_eq!((op, r.status), (Ok(Op::ListObjectVersions), 200));
    assert!(String::from_utf8_lossy(&r.body).contains("<Key>twice</Key>"));
    let (op, r) = send(XSigned, owner, "HEAD", "/secret/big", &[], &[]);
    assert_eq!((op, r.status), (Ok(Op::HeadObject), 200));
    assert_eq!(r.header("content-length"), Some("1536017"));
    assert!(r.body.is_empty());
    let (op, r) = send(
        XPresigned,
        owner,
        "GET",
        "/secret/big",
        &["x-id=GetObject"],
        &[],
    );
    assert_eq!((op, r.status), (Ok(Op::GetObject), 200));
    assert_eq!(md5_hex(&r.body), md5_hex(&random_bytes(1_536_017, 13)));
    assert!(judge(XPresigned, &Ok(Op::GetObject), "/secret/k", &Ok(r)).is_some());

    // X: its signatures are good (it is refused by authorization, not authentication).
    let (op, r) = send(XSigned, x, "GET", "/", &[], &[]);
    assert_eq!((op.clone(), r.status), (Ok(Op::ListBuckets), 200));
    assert!(judge(XSigned, &op, "/secret/k", &Ok(r)).is_none());
    let (op, r) = send(XPresigned, x, "GET", "/", &[], &[]);
    assert_eq!((op, r.status), (Ok(Op::ListBuckets), 200));
    for (caller, query) in [(XSigned, &["versions"][..]), (XPresigned, &["acl"][..])] {
        let (_, r) = send(caller, x, "GET", "/secret", query, &[]);
        assert_eq!(
            (r.status, r.code().as_deref()),
            (403, Some("AccessDenied")),
            "{caller:?} {query:?}: {}",
            excerpt(&r.body)
        );
    }
    let (_, r) = send(
        XPresignedUnsigned,
        x,
        "GET",
        "/",
        &[],
        &[("x-amz-meta-extra", "1")],
    );
    assert_eq!(r.status, 403, "{}", excerpt(&r.body));
    assert_eq!(
        conn.opened, 1,
        "the self-check's requests share one connection"
    );
}
