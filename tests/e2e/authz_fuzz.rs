//! Randomized request shapes against a private bucket (issue 13): many random requests —
//! a method, a few sub-resource query parameters, headers that change what a request does,
//! a target and a body — sent anonymously and signed by a key that owns nothing and has no
//! grants, must never get a 2xx answer the access model forbids (the only one it allows is
//! that key listing its own, empty, set of buckets), never a server error or a dropped
//! connection, never a 404 that tells what the private bucket holds, and must leave the
//! bucket exactly as its owner made it (checked against a snapshot every [`CHECKPOINT`]
//! shapes). A presigned URL sent with `x-amz-*` headers its signature does not cover must be
//! refused with 403, and X's correctly signed requests must pass authentication (or the
//! fuzz would test nothing). See [`judge`].
//!
//! Every shape is derived from the seed and its index alone, whatever thread sends it, so a
//! failure replays with `CAIRN_FUZZ_SEED=<seed> CAIRN_FUZZ_ONLY=<index>`, which sends that
//! one shape and prints the exchange. `CAIRN_FUZZ_SHAPES` sets the number of shapes
//! (default 100,000). The figures (time, status and operation histograms) are printed at the
//! end: `cargo test -p cairn-tests --test e2e authz_fuzz -- --nocapture`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::ops::Range;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketVersioningStatus, Tag, Tagging, VersioningConfiguration};
use aws_sdk_s3::Client;
use cairn_api::op::{classify_path, Op};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::acl::new_user;
use crate::common::*;

/// The key that owns nothing and is granted nothing.
const X_KEY: &str = "FUZZUSERKEY000000001";
const X_SECRET: &str = "fuzz-user-secret-0000000000000000000000";
const BUCKET: &str = "secret";
/// The object key whose multipart upload is left in progress.
const UPLOAD_KEY: &str = "pending";
/// Shapes between two snapshots of the bucket.
const CHECKPOINT: u64 = 10_000;
/// Threads sending shapes, each over its own keep-alive connection.
const THREADS: u64 = 4;
/// Draws at most this many shapes when aiming at an operation.
const AIM_TRIES: usize = 20;
/// Violations printed in full when the test fails.
const SHOWN: usize = 20;

const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";

/// Who sends a shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Caller {
    /// No credentials at all.
    Anonymous,
    /// Key X, SigV4 in the `Authorization` header, every header sent signed.
    XSigned,
    /// Key X, a presigned URL (SigV4 in the query), every header sent signed.
    XPresigned,
    /// Key X, a presigned URL, plus `x-amz-*` headers the signature does not cover: refused
    /// with 403 whatever the request is.
    XPresignedUnsigned,
}

/// What the shapes draw from: the bucket's real keys, versions and upload, and the ids the
/// grant headers and documents name.
struct Fixture {
    addr: SocketAddr,
    host: String,
    /// Existing keys: current objects, the one behind a delete marker, the pending upload's.
    keys: Vec<String>,
    /// Every version id of the bucket, delete marker included.
    version_ids: Vec<String>,
    upload_id: String,
    part_etag: String,
    x_id: String,
    owner_id: String,
    /// Each operation and the skeletons of the requests Cairn classifies as it.
    aims: Vec<(Op, Vec<Skeleton>)>,
}

/// One random request.
#[derive(Debug)]
struct Shape {
    caller: Caller,
    method: &'static str,
    path: String,
    /// Query parameters (`name` or `name=value`), before any presigning parameters.
    query: Vec<String>,
    /// Headers sent (and, for X, signed), host and authentication aside.
    headers: Vec<(String, String)>,
    /// `x-amz-*` headers sent but left out of a presigned URL's signature.
    unsigned: Vec<(String, String)>,
    body: Vec<u8>,
}

const METHODS: &[&str] = &["GET", "HEAD", "PUT", "POST", "DELETE", "PATCH", "OPTIONS"];

const PARAMS: &[&str] = &[
    "acl",
    "tagging",
    "uploads",
    "uploadId",
    "partNumber",
    "versionId",
    "delete",
    "versioning",
    "versions",
    "location",
    "cors",
    "policy",
    "lifecycle",
    "attributes",
    "restore",
    "select",
    "torrent",
    "list-type",
    "prefix",
    "x-id",
    "object-lock",
    "retention",
    "legal-hold",
    "publicAccessBlock",
    "ownershipControls",
    "website",
    "encryption",
    "notification",
    // Sub-resources beyond the list, so that every operation of the table is reached.
    "policyStatus",
    "logging",
    "accelerate",
    "requestPayment",
    "replication",
    "analytics",
    "inventory",
    "metrics",
    "intelligent-tiering",
];

/// The target whose key has `..` segments (refused as a bad key before authentication).
const DOT_DOT: &str = "/secret/obj%2F..%2F..";

fn documents(fx: &Fixture) -> Vec<String> {
    vec![
        "<Delete><Object><Key>small</Key></Object><Object><Key>big</Key></Object></Delete>".into(),
        "<Tagging><TagSet><Tag><Key>a</Key><Value>b</Value></Tag></TagSet></Tagging>".into(),
        format!(
            "<AccessControlPolicy><Owner><ID>{}</ID></Owner><AccessControlList><Grant>\
             <Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"Group\">\
             <URI>{ALL_USERS}</URI></Grantee><Permission>FULL_CONTROL</Permission></Grant>\
             </AccessControlList></AccessControlPolicy>",
            fx.owner_id
        ),
        "<VersioningConfiguration><Status>Suspended</Status></VersioningConfiguration>".into(),
        "<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET\
         </AllowedMethod><AllowedMethod>PUT</AllowedMethod></CORSRule></CORSConfiguration>"
            .into(),
        format!(
            "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{}</ETag></Part>\
             </CompleteMultipartUpload>",
            fx.part_etag
        ),
    ]
}

/// The RNG of shape `index`: the same for a given seed whichever thread draws it.
fn shape_rng(seed: u64, index: u64) -> StdRng {
    StdRng::seed_from_u64(seed ^ index.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// What decides which operation a request is: its method, whether it addresses the service,
/// a bucket or an object, the sub-resource it names, and whether it has `x-amz-copy-source`.
#[derive(Debug, Clone, Copy)]
struct Skeleton {
    method: &'static str,
    target: Target,
    sub: Option<&'static str>,
    copy: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Service,
    Bucket,
    Object,
}

/// Query parameters that are no sub-resource: they modify an operation.
const MODIFIERS: &[&str] = &["versionId", "partNumber", "list-type", "prefix", "x-id"];

/// For each operation, the skeletons Cairn classifies as it (found by asking the table about
/// every skeleton the shapes can have).
fn aims() -> Vec<(Op, Vec<Skeleton>)> {
    let mut found: Vec<(Op, Vec<Skeleton>)> = Op::ALL.iter().map(|o| (*o, Vec::new())).collect();
    for method in METHODS {
        for (target, path) in [
            (Target::Service, "/"),
            (Target::Bucket, "/secret"),
            (Target::Object, "/secret/small"),
        ] {
            // `list-type` is no sub-resource, but makes ListObjectsV2 of ListObjects.
            let subs = PARAMS
                .iter()
                .filter(|p| !MODIFIERS.contains(p) || **p == "list-type");
            for sub in std::iter::once(None).chain(subs.map(|p| Some(*p))) {
                for copy in [false, true] {
                    let headers = if copy {
                        vec![("x-amz-copy-source".to_string(), "secret/small".to_string())]
                    } else {
                        Vec::new()
                    };
                    let query = match sub {
                        Some("list-type") => "list-type=2",
                        sub => sub.unwrap_or(""),
                    };
                    if let Ok(op) = classify_parts(method, path, query, &headers) {
                        let sk = Skeleton {
                            method,
                            target,
                            sub,
                            copy,
                        };
                        found.iter_mut().find(|(o, _)| *o == op).unwrap().1.push(sk);
                    }
                }
            }
        }
    }
    found
}

/// Shape `index` of the run with `seed`. Half the shapes are drawn as they come (most of
/// them are no operation Cairn knows: refused by classification). The other half aim at an
/// operation of the table picked at random: their method, target kind, sub-resource and
/// copy header are one of that operation's skeletons, the rest is drawn as for any shape;
/// a shape that then turns out to be another operation (a modifier such as `list-type=2`,
/// an unsigned copy header) is drawn again, up to [`AIM_TRIES`] times.
fn shape(fx: &Fixture, docs: &[String], seed: u64, index: u64) -> Shape {
    let mut rng = shape_rng(seed, index);
    if rng.gen_bool(0.5) {
        let (op, skeletons) = fx.aims.choose(&mut rng).unwrap();
        for _ in 0..AIM_TRIES {
            let Some(sk) = skeletons.choose(&mut rng) else {
                break;
            };
            let s = draw(fx, docs, &mut rng, Some(sk));
            let mut headers = s.headers.clone();
            headers.extend(s.unsigned.iter().cloned());
            if classify_parts(s.method, &s.path, &s.query.join("&"), &headers) == Ok(*op) {
                return s;
            }
        }
    }
    draw(fx, docs, &mut rng, None)
}

/// A query parameter, with a value that makes sense for it.
fn param(fx: &Fixture, rng: &mut StdRng, p: &str) -> String {
    match p {
        "uploadId" if rng.gen_bool(0.7) => format!("uploadId={}", fx.upload_id),
        "uploadId" => "uploadId=junk".to_string(),
        "versionId" => format!("versionId={}", version(fx, rng)),
        "partNumber" => "partNumber=1".to_string(),
        "list-type" => "list-type=2".to_string(),
        "prefix" => "prefix=".to_string(),
        "x-id" => "x-id=DeleteObject".to_string(),
        p if rng.gen_bool(0.2) => format!("{p}="),
        p => p.to_string(),
    }
}

/// A real version id (or the delete marker's), `null`, or junk.
fn version(fx: &Fixture, rng: &mut StdRng) -> String {
    match rng.gen_range(0..4) {
        0 | 1 => fx.version_ids.choose(rng).unwrap().clone(),
        2 => "null".to_string(),
        _ => "junk".to_string(),
    }
}

/// One random shape; with a skeleton, one of that skeleton.
fn draw(fx: &Fixture, docs: &[String], rng: &mut StdRng, aim: Option<&Skeleton>) -> Shape {
    let caller = match rng.gen_range(0..20) {
        0..=8 => Caller::Anonymous,
        9..=16 => Caller::XSigned,
        17 | 18 => Caller::XPresigned,
        _ => Caller::XPresignedUnsigned,
    };
    let method = match aim {
        Some(sk) => sk.method,
        None => *METHODS.choose(rng).unwrap(),
    };
    let key = fx.keys.choose(rng).unwrap().clone();
    let pick = match aim.map(|sk| sk.target) {
        None => rng.gen_range(0..8),
        Some(Target::Service) => 0,
        Some(Target::Bucket) => rng.gen_range(1..3),
        Some(Target::Object) => rng.gen_range(3..8),
    };
    let path = match pick {
        0 => "/".to_string(),
        1 => "/secret".to_string(),
        2 => "/secret/".to_string(),
        3 => format!("/secret/{key}"),
        4 => "/secret/dir/nested.txt".to_string(),
        5 => "/secret/absent".to_string(),
        6 => DOT_DOT.to_string(),
        _ => "/otherbucket/x".to_string(),
    };

    let mut names: Vec<&str> = match aim {
        Some(sk) => {
            let n = rng.gen_range(0..=2);
            let mut v: Vec<&str> = MODIFIERS.choose_multiple(rng, n).copied().collect();
            v.extend(sk.sub.filter(|sub| !v.contains(sub)));
            v.shuffle(rng);
            v
        }
        None => {
            let n = match rng.gen_range(0..20) {
                0..=3 => 0,
                4..=12 => 1,
                13..=17 => 2,
                _ => 3,
            };
            PARAMS.choose_multiple(rng, n).copied().collect()
        }
    };
    let query = names.drain(..).map(|p| param(fx, rng, p)).collect();

    let body: Vec<u8> = match rng.gen_range(0..10) {
        0..=3 => Vec::new(),
        4..=6 => {
            let len = rng.gen_range(1..=200);
            (0..len).map(|_| rng.gen()).collect()
        }
        _ => docs.choose(rng).unwrap().as_bytes().to_vec(),
    };

    let mut headers: Vec<(String, String)> = Vec::new();
    let p = if method == "OPTIONS" { 0.7 } else { 0.12 };
    if rng.gen_bool(p) {
        add(&mut headers, "origin", "https://evil.example".into());
        let m = *["GET", "PUT", "DELETE", "POST"].choose(rng).unwrap();
        add(&mut headers, "access-control-request-method", m.into());
    }
    for family in 0..13 {
        let include = rng.gen_bool(0.12);
        let include = match (family, aim) {
            (0, Some(sk)) => sk.copy,
            _ => include,
        };
        if !include {
            continue;
        }
        match family {
            0 => {
                let src = fx.keys.choose(rng).unwrap();
                let lead = if rng.gen_bool(0.5) { "/" } else { "" };
                let v = if rng.gen_bool(0.4) {
                    format!("{lead}{BUCKET}/{src}?versionId={}", version(fx, rng))
                } else {
                    format!("{lead}{BUCKET}/{src}")
                };
                add(&mut headers, "x-amz-copy-source", v);
            }
            1 => {
                let acl = *["public-read", "public-read-write"].choose(rng).unwrap();
                add(&mut headers, "x-amz-acl", acl.into());
            }
            2 => add(
                &mut headers,
                "x-amz-grant-full-control",
                format!("id=\"{}\"", fx.x_id),
            ),
            3 => add(
                &mut headers,
                "x-amz-grant-read",
                format!("uri=\"{ALL_USERS}\""),
            ),
            4 => add(&mut headers, "x-amz-tagging", "a=b".into()),
            5 => {
                add(&mut headers, "x-amz-metadata-directive", "REPLACE".into());
                add(&mut headers, "x-amz-meta-fuzz", "1".into());
            }
            6 => add(&mut headers, "x-amz-tagging-directive", "REPLACE".into()),
            7 => add(
                &mut headers,
                "x-amz-bypass-governance-retention",
                "true".into(),
            ),
            8 => {
                let md5 = if rng.gen_bool(0.5) {
                    md5_raw(&body)
                } else {
                    md5_raw(b"something else")
                };
                add(&mut headers, "content-md5", base64(&md5));
            }
            9 => add(&mut headers, "x-amz-checksum-crc32", "junk".into()),
            10 => add(&mut headers, "range", "bytes=0-1".into()),
            11 => {
                let who = if rng.gen_bool(0.5) {
                    fx.owner_id.clone()
                } else {
                    "123456789012".into()
                };
                add(&mut headers, "x-amz-expected-bucket-owner", who);
            }
            _ => add(&mut headers, "content-type", "application/xml".into()),
        }
    }
    headers.shuffle(rng);

    let mut unsigned = Vec::new();
    if caller == Caller::XPresignedUnsigned {
        let extras: &[(&str, &str)] = &[
            ("x-amz-acl", "public-read-write"),
            ("x-amz-copy-source", "secret/small"),
            ("x-amz-meta-extra", "1"),
            ("x-amz-tagging-directive", "REPLACE"),
            (
                "x-amz-grant-read",
                "uri=\"http://acs.amazonaws.com/groups/global/AllUsers\"",
            ),
        ];
        let n = rng.gen_range(1..=2);
        for (k, v) in extras.choose_multiple(rng, n) {
            if !headers.iter().any(|(n, _)| n == k) {
                unsigned.push((k.to_string(), v.to_string()));
            }
        }
        if unsigned.is_empty() {
            unsigned.push(("x-amz-meta-extra".into(), "1".into()));
        }
    }
    Shape {
        caller,
        method,
        path,
        query,
        headers,
        unsigned,
        body,
    }
}

/// Adds a header unless one of that name is there already.
fn add(h: &mut Vec<(String, String)>, k: &str, v: String) {
    if !h.iter().any(|(n, _)| n == k) {
        h.push((k.to_string(), v));
    }
}

fn md5_raw(data: &[u8]) -> Vec<u8> {
    use md5::{Digest, Md5};
    Md5::digest(data).to_vec()
}

fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A request ready for the wire.
struct Wire {
    method: &'static str,
    path: String,
    /// The whole query, presigning parameters included.
    query: String,
    /// Every header sent, `content-length` aside.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Wire {
    fn target(&self) -> String {
        if self.query.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{}", self.path, self.query)
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let mut head = format!("{} {} HTTP/1.1\r\n", self.method, self.target());
        for (k, v) in &self.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str(&format!("content-length: {}\r\n\r\n", self.body.len()));
        let mut out = head.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

/// Puts `shape` on the wire as its caller would send it (`signer`: the key X signs with;
/// the self-check signs the same way with the owner's key).
fn wire(fx: &Fixture, s: &Shape, signer: (&str, &str)) -> Wire {
    let mut query = s.query.join("&");
    let mut headers = vec![("host".to_string(), fx.host.clone())];
    headers.extend(s.headers.iter().cloned());
    match s.caller {
        Caller::Anonymous => {}
        Caller::XSigned => {
            let added = sigv4(
                signer.0, signer.1, s.method, &fx.host, &s.path, &query, &headers, &s.body, false,
            );
            headers.extend(added);
        }
        Caller::XPresigned | Caller::XPresignedUnsigned => {
            let added = sigv4(
                signer.0, signer.1, s.method, &fx.host, &s.path, &query, &headers, &s.body, true,
            );
            for (k, v) in added {
                if !query.is_empty() {
                    query.push('&');
                }
                query.push_str(&format!("{k}={}", query_encode(&v)));
            }
            headers.extend(s.unsigned.iter().cloned());
        }
    }
    Wire {
        method: s.method,
        path: s.path.clone(),
        query,
        headers,
        body: s.body.clone(),
    }
}

/// An HTTP response.
#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn code(&self) -> Option<String> {
        let b = String::from_utf8_lossy(&self.body);
        let s = b.find("<Code>")? + 6;
        let e = b[s..].find("</Code>")? + s;
        Some(b[s..e].to_string())
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A keep-alive HTTP/1.1 connection that reconnects when the server closed it.
struct Conn {
    addr: SocketAddr,
    r: Option<BufReader<TcpStream>>,
    /// Connections opened so far.
    opened: u64,
    /// Requests sent again because the server had closed the connection without answering.
    resent: u64,
}

/// Why no response was read: whether nothing at all came back (the request may be sent
/// again on a new connection), and what happened.
struct ReadFail {
    nothing: bool,
    why: String,
}

impl Conn {
    fn new(addr: SocketAddr) -> Conn {
        Conn {
            addr,
            r: None,
            opened: 0,
            resent: 0,
        }
    }

    /// Sends `req` and reads the response; sends it once more on a fresh connection when
    /// the server had closed this one without answering.
    fn send(&mut self, req: &[u8], head: bool) -> Result<Resp, String> {
        for attempt in 0..2 {
            if self.r.is_none() {
                let s = TcpStream::connect(self.addr).map_err(|e| format!("connect: {e}"))?;
                s.set_read_timeout(Some(Duration::from_secs(60)))
                    .map_err(|e| e.to_string())?;
                let _ = s.set_nodelay(true);
                self.r = Some(BufReader::new(s));
                self.opened += 1;
            }
            let r = self.r.as_mut().unwrap();
            if let Err(e) = r.get_mut().write_all(req) {
                self.r = None;
                if attempt == 0 {
                    self.resent += 1;
                    continue;
                }
                return Err(format!("write: {e}"));
            }
            match read_response(r, head) {
                Ok((resp, keep)) => {
                    if !keep {
                        self.r = None;
                    }
                    return Ok(resp);
                }
                Err(f) => {
                    self.r = None;
                    if f.nothing && attempt == 0 {
                        self.resent += 1;
                        continue;
                    }
                    return Err(f.why);
                }
            }
        }
        unreachable!()
    }
}

fn read_line(r: &mut impl BufRead) -> std::io::Result<String> {
    let mut buf = Vec::new();
    r.read_until(b'\n', &mut buf)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Reads one response (skipping interim 1xx ones); also says whether the connection stays
/// open.
fn read_response(r: &mut BufReader<TcpStream>, head: bool) -> Result<(Resp, bool), ReadFail> {
    let mut got_any = false;
    let fail = |got_any: bool, e: std::io::Error| ReadFail {
        // A timeout is a hung server, not a closed connection: never resent.
        nothing: !got_any
            && !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        why: format!("read: {e}"),
    };
    loop {
        let line = read_line(r).map_err(|e| fail(got_any, e))?;
        if line.is_empty() {
            return Err(ReadFail {
                nothing: !got_any,
                why: "connection closed before a whole response".into(),
            });
        }
        got_any = true;
        let mut parts = line.split_whitespace();
        let version = parts.next().unwrap_or_default().to_string();
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| ReadFail {
                nothing: false,
                why: format!("bad status line {line:?}"),
            })?;
        let mut headers = Vec::new();
        loop {
            let l = read_line(r).map_err(|e| fail(true, e))?;
            if l.is_empty() {
                return Err(ReadFail {
                    nothing: false,
                    why: "connection closed in the headers".into(),
                });
            }
            let l = l.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((n, v)) = l.split_once(':') {
                headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        if (100..200).contains(&status) {
            continue;
        }
        let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        let connection = get("connection").unwrap_or_default().to_ascii_lowercase();
        let mut keep = if version == "HTTP/1.1" {
            !connection.contains("close")
        } else {
            connection.contains("keep-alive")
        };
        let mut body = Vec::new();
        let chunked = get("transfer-encoding").is_some_and(|v| v.contains("chunked"));
        let bodiless = head || status == 204 || status == 304;
        if bodiless {
            // No body follows.
        } else if chunked {
            loop {
                let size_line = read_line(r).map_err(|e| fail(true, e))?;
                let size =
                    usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
                        .map_err(|_| ReadFail {
                            nothing: false,
                            why: format!("bad chunk size {size_line:?}"),
                        })?;
                if size == 0 {
                    // Trailers, up to the empty line.
                    while !read_line(r)
                        .map_err(|e| fail(true, e))?
                        .trim_end()
                        .is_empty()
                    {}
                    break;
                }
                let start = body.len();
                body.resize(start + size, 0);
                r.read_exact(&mut body[start..])
                    .map_err(|e| fail(true, e))?;
                read_line(r).map_err(|e| fail(true, e))?;
            }
        } else if let Some(len) = get("content-length") {
            let len: usize = len.parse().map_err(|_| ReadFail {
                nothing: false,
                why: format!("bad content-length {len:?}"),
            })?;
            body.resize(len, 0);
            r.read_exact(&mut body).map_err(|e| fail(true, e))?;
        } else {
            r.read_to_end(&mut body).map_err(|e| fail(true, e))?;
            keep = false;
        }
        return Ok((
            Resp {
                status,
                headers,
                body,
            },
            keep,
        ));
    }
}

/// The operation Cairn's table makes of a request (what it sees: every header sent), or the
/// error code of a request it refuses to classify.
fn classify(w: &Wire) -> Result<Op, String> {
    classify_parts(w.method, &w.path, &w.query, &w.headers)
}

fn classify_parts(
    method: &str,
    path: &str,
    query: &str,
    headers: &[(String, String)],
) -> Result<Op, String> {
    let method = http::Method::from_bytes(method.as_bytes()).unwrap();
    let mut h = http::HeaderMap::new();
    for (k, v) in headers {
        h.append(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            http::HeaderValue::from_str(v).unwrap(),
        );
    }
    let q = (!query.is_empty()).then_some(query);
    classify_path(&method, path, q, &h).map_err(|e| e.code.as_str().to_string())
}

/// Error codes of a signature Cairn did not accept: a shape that got one never reached
/// authorization, so it tested nothing.
const AUTH_CODES: &[&str] = &[
    "SignatureDoesNotMatch",
    "InvalidAccessKeyId",
    "AuthorizationHeaderMalformed",
    "AuthorizationQueryParametersError",
    "RequestTimeTooSkewed",
    "XAmzContentSHA256Mismatch",
    "MissingSecurityHeader",
];

/// The access model: the only 2xx it allows is key X (validly signed) listing its own
/// buckets. Everything the fuzz sends other than that is the private bucket's, or is about
/// a bucket that does not exist.
fn model_allows_2xx(caller: Caller, op: &Result<Op, String>) -> bool {
    matches!(caller, Caller::XSigned | Caller::XPresigned) && *op == Ok(Op::ListBuckets)
}

/// What is wrong with the answer to a shape, if anything.
fn judge(
    caller: Caller,
    op: &Result<Op, String>,
    path: &str,
    r: &Result<Resp, String>,
) -> Option<String> {
    let dot_dot = path == DOT_DOT;
    let r = match r {
        Ok(r) => r,
        Err(e) => return Some(format!("no response: {e}")),
    };
    let code = r.code();
    if (200..300).contains(&r.status) {
        if !model_allows_2xx(caller, op) {
            return Some("a 2xx answer that the model forbids".into());
        }
        if String::from_utf8_lossy(&r.body).contains("<Bucket>") {
            return Some("X, which owns no bucket, was listed one".into());
        }
    }
    if r.status >= 500 && !(r.status == 501 && code.as_deref() == Some("NotImplemented")) {
        return Some("a server error".into());
    }
    // Refused for its unsigned headers, unless it is answered before authentication: a
    // request Cairn cannot classify or whose key is malformed, or a CORS preflight (which
    // is anonymous by nature: it is answered from the bucket's CORS rules alone).
    let authenticated = op.as_ref().is_ok_and(|op| *op != Op::PreflightRequest) && !dot_dot;
    if caller == Caller::XPresignedUnsigned && authenticated && r.status != 403 {
        return Some(
            "an x-amz-* header outside a presigned URL's signature, not refused with 403".into(),
        );
    }
    // A missing key, version or upload is AccessDenied for callers that may not list the
    // bucket (access.rs): a 404 would tell a stranger what the private bucket holds.
    if r.status == 404 && path.starts_with("/secret") {
        return Some("a 404 that tells a stranger what the private bucket holds".into());
    }
    if matches!(caller, Caller::XSigned | Caller::XPresigned)
        && code.as_deref().is_some_and(|c| AUTH_CODES.contains(&c))
    {
        return Some(
            "a correctly signed request refused by authentication: it never reached authorization"
                .into(),
        );
    }
    None
}

#[derive(Default)]
struct Stats {
    sent: u64,
    /// "status code" → count.
    statuses: BTreeMap<String, u64>,
    /// Operation (or classification refusal) → status → count.
    ops: BTreeMap<String, BTreeMap<u16, u64>>,
    /// Caller → status → count.
    callers: BTreeMap<String, BTreeMap<u16, u64>>,
    /// (index, description) of each violation.
    violations: Vec<(u64, String)>,
    x_list_buckets_ok: u64,
    connections: u64,
    resent: u64,
}

impl Stats {
    fn merge(&mut self, o: Stats) {
        self.sent += o.sent;
        for (k, v) in o.statuses {
            *self.statuses.entry(k).or_default() += v;
        }
        for (k, m) in o.ops {
            let e = self.ops.entry(k).or_default();
            for (s, v) in m {
                *e.entry(s).or_default() += v;
            }
        }
        for (k, m) in o.callers {
            let e = self.callers.entry(k).or_default();
            for (s, v) in m {
                *e.entry(s).or_default() += v;
            }
        }
        self.violations.extend(o.violations);
        self.x_list_buckets_ok += o.x_list_buckets_ok;
        self.connections += o.connections;
        self.resent += o.resent;
    }
}

fn op_label(op: &Result<Op, String>) -> String {
    match op {
        Ok(op) => op.name().to_string(),
        Err(code) => format!("(refused by classification: {code})"),
    }
}

fn excerpt(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(&b[..b.len().min(300)]).into_owned();
    s.replace(['\r', '\n'], " ")
}

/// Sends shape `index` and records what came back.
fn run_one(
    fx: &Fixture,
    docs: &[String],
    seed: u64,
    index: u64,
    conn: &mut Conn,
    st: &mut Stats,
    verbose: bool,
) {
    let s = shape(fx, docs, seed, index);
    let w = wire(fx, &s, (X_KEY, X_SECRET));
    let op = classify(&w);
    let bytes = w.bytes();
    if verbose {
        println!(
            "shape {index}: {:?} {} {} query {:?} headers {:?} unsigned {:?} body {} bytes",
            s.caller,
            s.method,
            s.path,
            s.query,
            s.headers,
            s.unsigned,
            s.body.len()
        );
        println!(
            "request:\n{}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(4000)])
        );
        println!("classified as {}", op_label(&op));
    }
    let r = conn.send(&bytes, s.method == "HEAD");
    if verbose {
        match &r {
            Ok(r) => println!(
                "response: {} {:?}\n{}",
                r.status,
                r.headers,
                excerpt(&r.body)
            ),
            Err(e) => println!("no response: {e}"),
        }
    }
    st.sent += 1;
    let status = r.as_ref().map_or(0, |r| r.status);
    let code = r.as_ref().ok().and_then(Resp::code);
    let label = match &code {
        Some(c) => format!("{status} {c}"),
        None => format!("{status}"),
    };
    *st.statuses.entry(label.clone()).or_default() += 1;
    *st.ops
        .entry(op_label(&op))
        .or_default()
        .entry(status)
        .or_default() += 1;
    *st.callers
        .entry(format!("{:?}", s.caller))
        .or_default()
        .entry(status)
        .or_default() += 1;
    if (200..300).contains(&status) && op == Ok(Op::ListBuckets) {
        st.x_list_buckets_ok += 1;
    }
    if let Some(why) = judge(s.caller, &op, &s.path, &r) {
        let body = r.as_ref().map(|r| excerpt(&r.body)).unwrap_or_default();
        let headers: Vec<String> = w
            .headers
            .iter()
            .filter(|(k, _)| k != "authorization")
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        st.violations.push((
            index,
            format!(
                "seed {seed} shape {index}: {why}\n  {:?} {} {}\n  classified as {}\n  \
                 headers: {headers:?}\n  body sent: {} bytes {:?}\n  answer: {label}: {body}",
                s.caller,
                w.method,
                w.target(),
                op_label(&op),
                s.body.len(),
                excerpt(&s.body),
            ),
        ));
    }
}

/// Sends the shapes of `range` on [`THREADS`] threads, each over its own connection.
fn run_range(fx: &Fixture, docs: &[String], seed: u64, range: Range<u64>, total: &Mutex<Stats>) {
    std::thread::scope(|sc| {
        for t in 0..THREADS {
            let range = range.clone();
            sc.spawn(move || {
                let mut conn = Conn::new(fx.addr);
                let mut st = Stats::default();
                let mut i = range.start + t;
                while i < range.end {
                    run_one(fx, docs, seed, i, &mut conn, &mut st, false);
                    i += THREADS;
                }
                st.connections = conn.opened;
                st.resent = conn.resent;
                total.lock().unwrap().merge(st);
            });
        }
    });
}

/// An answer as comparable text: `show` of the output, or the error's code.
fn text<T, E, R>(
    r: Result<T, aws_sdk_s3::error::SdkError<E, R>>,
    show: impl FnOnce(T) -> String,
) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    match r {
        Ok(out) => show(out),
        Err(e) => match code_of(&e) {
            Some(code) => format!("error {code}"),
            None => format!("error {e:?}"),
        },
    }
}

/// What the owner sees of the bucket (and both keys of their buckets), as comparable text:
/// every version (content MD5, metadata, ACL, tags), the delete marker, the bucket's ACL,
/// tags, versioning and CORS, the pending upload and its part, and the bucket lists. An
/// answer that is an error is recorded as its code (a change too, if it was not one).
async fn snapshot(owner: &Client, x: &Client, upload_id: &str) -> BTreeMap<String, String> {
    let mut s = BTreeMap::new();
    let listed = owner.list_object_versions().bucket(BUCKET).send().await;
    let v = match listed {
        Ok(v) => v,
        Err(e) => {
            s.insert("versions".into(), text(Err::<(), _>(e), |_| String::new()));
            return s;
        }
    };
    assert_ne!(
        v.is_truncated(),
        Some(true),
        "the bucket's versions fit a page"
    );
    for o in v.versions() {
        let (k, vid) = (
            o.key().unwrap_or_default(),
            o.version_id().unwrap_or_default(),
        );
        s.insert(format!("version {k} {vid}"), format!("{o:?}"));
        let got = owner
            .get_object()
            .bucket(BUCKET)
            .key(k)
            .version_id(vid)
            .send()
            .await;
        let object = match got {
            Ok(got) => {
                let meta = format!(
                    "type={:?} length={:?} etag={:?} metadata={:?} tags={:?} modified={:?}",
                    got.content_type(),
                    got.content_length(),
                    got.e_tag(),
                    got.metadata(),
                    got.tag_count(),
                    got.last_modified(),
                );
                match got.body.collect().await {
                    Ok(data) => format!("{meta} md5={}", md5_hex(&data.into_bytes())),
                    Err(e) => format!("{meta} body error {e}"),
                }
            }
            Err(e) => text(Err::<(), _>(e), |_| String::new()),
        };
        s.insert(format!("object {k} {vid}"), object);
        let acl = owner
            .get_object_acl()
            .bucket(BUCKET)
            .key(k)
            .version_id(vid)
            .send()
            .await;
        s.insert(
            format!("acl {k} {vid}"),
            text(acl, |a| format!("{:?} {:?}", a.owner(), a.grants())),
        );
        let tags = owner
            .get_object_tagging()
            .bucket(BUCKET)
            .key(k)
            .version_id(vid)
            .send()
            .await;
        s.insert(
            format!("tags {k} {vid}"),
            text(tags, |t| format!("{:?}", t.tag_set())),
        );
    }
    for m in v.delete_markers() {
        let (k, vid) = (
            m.key().unwrap_or_default(),
            m.version_id().unwrap_or_default(),
        );
        s.insert(format!("marker {k} {vid}"), format!("{m:?}"));
    }
    let acl = owner.get_bucket_acl().bucket(BUCKET).send().await;
    s.insert(
        "bucket acl".into(),
        text(acl, |a| format!("{:?} {:?}", a.owner(), a.grants())),
    );
    let tags = owner.get_bucket_tagging().bucket(BUCKET).send().await;
    s.insert(
        "bucket tags".into(),
        text(tags, |t| format!("{:?}", t.tag_set())),
    );
    let ver = owner.get_bucket_versioning().bucket(BUCKET).send().await;
    s.insert(
        "bucket versioning".into(),
        text(ver, |v| format!("{:?} {:?}", v.status(), v.mfa_delete())),
    );
    let cors = owner.get_bucket_cors().bucket(BUCKET).send().await;
    s.insert(
        "bucket cors".into(),
        text(cors, |c| format!("rules {:?}", c.cors_rules())),
    );
    let ups = owner.list_multipart_uploads().bucket(BUCKET).send().await;
    s.insert(
        "uploads".into(),
        text(ups, |u| {
            let v: Vec<String> = u.uploads().iter().map(|u| format!("{u:?}")).collect();
            format!("{v:?}")
        }),
    );
    let parts = owner
        .list_parts()
        .bucket(BUCKET)
        .key(UPLOAD_KEY)
        .upload_id(upload_id)
        .send()
        .await;
    s.insert(
        "parts".into(),
        text(parts, |p| {
            let v: Vec<String> = p.parts().iter().map(|p| format!("{p:?}")).collect();
            format!("{v:?}")
        }),
    );
    for (who, c) in [("owner", owner), ("X", x)] {
        let b = c.list_buckets().send().await;
        s.insert(
            format!("buckets of {who}"),
            text(b, |b| {
                let names: Vec<&str> = b.buckets().iter().filter_map(|b| b.name()).collect();
                format!("{names:?}")
            }),
        );
    }
    // A bucket X made would not be in the owner's list: asking for its ACL tells.
    let other = owner.get_bucket_acl().bucket("otherbucket").send().await;
    s.insert("otherbucket".into(), text(other, |_| "exists".into()));
    s
}

fn diff(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in before {
        match after.get(k) {
            None => out.push(format!("gone: {k}: {v}")),
            Some(w) if w != v => out.push(format!("changed: {k}:\n    was {v}\n    now {w}")),
            _ => {}
        }
    }
    for (k, v) in after {
        if !before.contains_key(k) {
            out.push(format!("new: {k}: {v}"));
        }
    }
    out
}

/// The owner makes the private bucket: versioned, small and striped objects, one with tags,
/// one with metadata, one overwritten, one deleted (behind a delete marker), bucket tags,
/// and a multipart upload left in progress with one part. Returns (keys, version ids,
/// upload id, part ETag).
async fn populate(s3: &Client) -> (Vec<String>, Vec<String>, String, String) {
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    s3.put_bucket_versioning()
        .bucket(BUCKET)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
    put_bytes(s3, BUCKET, "small", b"a small private object").await;
    put_bytes(s3, BUCKET, "dir/nested.txt", b"nested private object").await;
    put_bytes(s3, BUCKET, "big", &random_bytes(1_536_017, 13)).await;
    s3.put_object()
        .bucket(BUCKET)
        .key("tagged")
        .tagging("team=blue&k=v")
        .body(ByteStream::from_static(b"tagged private object"))
        .send()
        .await
        .unwrap();
    s3.put_object()
        .bucket(BUCKET)
        .key("meta")
        .content_type("text/plain")
        .metadata("color", "green")
        .body(ByteStream::from_static(b"object with metadata"))
        .send()
        .await
        .unwrap();
    put_bytes(s3, BUCKET, "twice", b"first version").await;
    put_bytes(s3, BUCKET, "twice", b"second version").await;
    put_bytes(s3, BUCKET, "gone", b"deleted object").await;
    s3.delete_object()
        .bucket(BUCKET)
        .key("gone")
        .send()
        .await
        .unwrap();
    s3.put_bucket_tagging()
        .bucket(BUCKET)
        .tagging(
            Tagging::builder()
                .tag_set(Tag::builder().key("env").value("prod").build().unwrap())
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let upload_id = s3
        .create_multipart_upload()
        .bucket(BUCKET)
        .key(UPLOAD_KEY)
        .send()
        .await
        .unwrap()
        .upload_id()
        .unwrap()
        .to_string();
    let part = s3
        .upload_part()
        .bucket(BUCKET)
        .key(UPLOAD_KEY)
        .upload_id(&upload_id)
        .part_number(1)
        .body(ByteStream::from_static(b"the first part"))
        .send()
        .await
        .unwrap();
    let part_etag = part.e_tag().unwrap().to_string();
    let v = s3
        .list_object_versions()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    let mut ids: Vec<String> = v
        .versions()
        .iter()
        .filter_map(|o| o.version_id())
        .chain(v.delete_markers().iter().filter_map(|m| m.version_id()))
        .map(str::to_string)
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 9, "8 versions and a delete marker: {ids:?}");
    let keys = [
        "small",
        "dir/nested.txt",
        "big",
        "tagged",
        "meta",
        "twice",
        "gone",
        UPLOAD_KEY,
    ]
    .map(str::to_string)
    .to_vec();
    (keys, ids, upload_id, part_etag)
}

/// The oracle can fail: synthetic answers the model forbids are flagged, the one it allows
/// is not; and through the same client, signer and checks, the owner's own (allowed)
/// requests do get 2xx answers — which would be violations from anyone else — while X's
/// signatures are accepted and X is then refused by authorization.
fn self_check(fx: &Fixture) {
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

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.trim()
            .replace('_', "")
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a number"))
    })
}

fn print_stats(st: &Stats, elapsed: Duration) {
    println!(
        "authz_fuzz: {} shapes in {:.1}s ({:.0} shapes/s) over {} connections",
        st.sent,
        elapsed.as_secs_f64(),
        st.sent as f64 / elapsed.as_secs_f64().max(1e-9),
        st.connections
    );
    println!(
        "requests sent again after the server closed a kept-alive connection: {}",
        st.resent
    );
    println!("status histogram (status, error code):");
    for (k, v) in &st.statuses {
        println!("  {k:<45} {v:>7}");
    }
    println!("callers (status: count):");
    for (k, m) in &st.callers {
        println!("  {k:<20} {m:?}");
    }
    println!("operations reached (as Cairn classifies them; status: count):");
    let mut ops: Vec<_> = st.ops.iter().collect();
    ops.sort_by_key(|(k, m)| (std::cmp::Reverse(m.values().sum::<u64>()), (*k).clone()));
    for (k, m) in &ops {
        println!("  {k:<50} {:>6}  {m:?}", m.values().sum::<u64>());
    }
    let reached: Vec<&str> = Op::ALL
        .iter()
        .filter(|o| st.ops.contains_key(o.name()))
        .map(|o| o.name())
        .collect();
    let missed: Vec<&str> = Op::ALL
        .iter()
        .filter(|o| !st.ops.contains_key(o.name()))
        .map(|o| o.name())
        .collect();
    println!(
        "{} of {} operations reached; not reached: {missed:?}",
        reached.len(),
        Op::ALL.len()
    );
    println!("X's ListBuckets answered 2xx: {}", st.x_list_buckets_ok);
    println!("violations: {}", st.violations.len());
}

#[test]
fn random_requests_by_strangers_get_nothing_and_change_nothing() {
    let server = Server::start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let owner = client(&server);
    let x = new_user(&server, "fuzz-x", X_KEY, X_SECRET);
    println!("key X canonical user id: {}", x.id);
    let (keys, version_ids, upload_id, part_etag) = rt.block_on(populate(&owner));
    let acl = rt
        .block_on(owner.get_bucket_acl().bucket(BUCKET).send())
        .unwrap();
    let owner_id = acl.owner().and_then(|o| o.id()).unwrap().to_string();
    assert_ne!(owner_id, x.id);
    let fx = Fixture {
        addr: server.s3,
        host: server.s3.to_string(),
        keys,
        version_ids,
        upload_id,
        part_etag,
        x_id: x.id.clone(),
        owner_id,
        aims: aims(),
    };
    let aimless: Vec<&str> = fx
        .aims
        .iter()
        .filter(|(_, sk)| sk.is_empty())
        .map(|(op, _)| op.name())
        .collect();
    assert!(aimless.is_empty(), "no skeleton for {aimless:?}");
    let docs = documents(&fx);
    self_check(&fx);

    let seed = env_u64("CAIRN_FUZZ_SEED").unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    });
    let shapes = env_u64("CAIRN_FUZZ_SHAPES").unwrap_or(100_000);
    let only = env_u64("CAIRN_FUZZ_ONLY");
    println!(
        "authz_fuzz: seed {seed} ({} shapes; replay with CAIRN_FUZZ_SEED={seed}, one shape \
         with CAIRN_FUZZ_ONLY=<index>)",
        only.map_or(shapes, |_| 1)
    );

    let before = rt.block_on(snapshot(&owner, &x.s3, &fx.upload_id));
    // The baseline is what populate() made: every answer but two is a success.
    assert_eq!(before["bucket cors"], "error NoSuchCORSConfiguration");
    assert_eq!(before["otherbucket"], "error NoSuchBucket");
    let errors: Vec<_> = before
        .iter()
        .filter(|(k, v)| {
            v.starts_with("error") && !["bucket cors", "otherbucket"].contains(&k.as_str())
        })
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    let count = |prefix: &str| before.keys().filter(|k| k.starts_with(prefix)).count();
    assert_eq!((count("object "), count("marker ")), (8, 1), "{before:#?}");
    assert!(before["uploads"].contains(&fx.upload_id), "{before:#?}");
    assert!(
        before["parts"].contains("part_number: Some(1)"),
        "{before:#?}"
    );
    let total = Mutex::new(Stats::default());
    let mut changes = Vec::new();
    let started = Instant::now();
    if let Some(i) = only {
        let mut conn = Conn::new(fx.addr);
        let mut st = Stats::default();
        run_one(&fx, &docs, seed, i, &mut conn, &mut st, true);
        st.connections = conn.opened;
        total.lock().unwrap().merge(st);
        let now = rt.block_on(snapshot(&owner, &x.s3, &fx.upload_id));
        changes = diff(&before, &now);
    } else {
        let mut done = 0;
        while done < shapes {
            let end = (done + CHECKPOINT).min(shapes);
            run_range(&fx, &docs, seed, done..end, &total);
            let now = rt.block_on(snapshot(&owner, &x.s3, &fx.upload_id));
            let d = diff(&before, &now);
            println!(
                "  {end} shapes, {:.1}s, {} violations, bucket {}",
                started.elapsed().as_secs_f64(),
                total.lock().unwrap().violations.len(),
                if d.is_empty() { "unchanged" } else { "CHANGED" }
            );
            if !d.is_empty() {
                changes.push(format!(
                    "the bucket changed between shapes {done} and {end} (seed {seed}):"
                ));
                changes.extend(d);
                break;
            }
            done = end;
        }
    }
    let elapsed = started.elapsed();
    let mut st = total.into_inner().unwrap();
    st.violations.sort_by_key(|(i, _)| *i);
    print_stats(&st, elapsed);

    let mut failures = Vec::new();
    if !st.violations.is_empty() {
        failures.push(format!(
            "{} answers the model forbids (seed {seed}); the first {}:",
            st.violations.len(),
            SHOWN.min(st.violations.len())
        ));
        failures.extend(st.violations.iter().take(SHOWN).map(|(_, v)| v.clone()));
    }
    failures.extend(changes);
    if only.is_none() && shapes >= CHECKPOINT && st.x_list_buckets_ok == 0 {
        failures.push("X never listed its buckets: the allowed path was not exercised".into());
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
