//! Drawing requests: the seeded generator of methods, paths, queries, headers and bodies,
//! and the skeletons that aim a share of them at each operation.

use super::*;

pub(super) fn documents(fx: &Fixture) -> Vec<String> {
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
pub(super) fn shape_rng(seed: u64, index: u64) -> StdRng {
    StdRng::seed_from_u64(seed ^ index.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// What decides which operation a request is: its method, whether it addresses the service,
/// a bucket or an object, the sub-resource it names, and whether it has `x-amz-copy-source`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Skeleton {
    pub(super) method: &'static str,
    pub(super) target: Target,
    pub(super) sub: Option<&'static str>,
    pub(super) copy: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Target {
    Service,
    Bucket,
    Object,
}

/// Query parameters that are no sub-resource: they modify an operation.
pub(super) const MODIFIERS: &[&str] = &["versionId", "partNumber", "list-type", "prefix", "x-id"];

/// For each operation, the skeletons Cairn classifies as it (found by asking the table about
/// every skeleton the shapes can have).
pub(super) fn aims() -> Vec<(Op, Vec<Skeleton>)> {
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
pub(super) fn shape(fx: &Fixture, docs: &[String], seed: u64, index: u64) -> Shape {
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
pub(super) fn param(fx: &Fixture, rng: &mut StdRng, p: &str) -> String {
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
pub(super) fn version(fx: &Fixture, rng: &mut StdRng) -> String {
    match rng.gen_range(0..4) {
        0 | 1 => fx.version_ids.choose(rng).unwrap().clone(),
        2 => "null".to_string(),
        _ => "junk".to_string(),
    }
}

/// One random shape; with a skeleton, one of that skeleton.
pub(super) fn draw(
    fx: &Fixture,
    docs: &[String],
    rng: &mut StdRng,
    aim: Option<&Skeleton>,
) -> Shape {
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
