//! POST Object (browser form uploads) against a real server, as a browser or a page's
//! script would send them: `multipart/form-data` bodies over plain HTTP, signed with an
//! independent SigV4 implementation (aws-sigv4) or by `cairn presign-post`, and checked
//! with aws-sdk-s3; and in a real headless Chromium (`tests/console/post_form_test.py`).

use std::process::Command;
use std::time::{Duration, SystemTime};

use aws_sdk_s3::types::BucketCannedAcl;
use base64::Engine as _;

use crate::common::*;

const BOUNDARY: &str = "----cairnFormBoundary7MA4YWxkTrZu0gW";

/// Form fields, in order.
type Fields = Vec<(String, String)>;

/// A form body: the fields in order, then the file part.
fn form_body(fields: &[(&str, &str)], filename: &str, data: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    for (name, value) in fields {
        b.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    b.extend_from_slice(
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    b.extend_from_slice(data);
    b.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    b
}

/// POSTs a form to `/bucket` as a browser does (no credentials in the headers).
fn post_form(
    server: &Server,
    bucket: &str,
    fields: &[(&str, &str)],
    filename: &str,
    data: &[u8],
) -> RawResponse {
    let body = form_body(fields, filename, data);
    let mut req = format!(
        "POST /{bucket} HTTP/1.1\r\nHost: {}\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        server.s3,
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    raw_request(server.s3, &req).expect("POST the form")
}

/// ISO 8601 (`2030-01-01T00:00:00Z`) and SigV4 (`20300101T000000Z`) forms of a time.
fn times(t: SystemTime) -> (String, String) {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let (h, mi, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    (
        format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z"),
        format!("{y:04}{m:02}{d:02}T{h:02}{mi:02}{s:02}Z"),
    )
}

/// The SigV4 fields of a form whose policy has `conditions` (JSON, without the SigV4
/// fields' own conditions, which are added) and expires at `expires`: signed with the
/// aws-sigv4 crate, independently of Cairn's code. `secret` signs for `access_key`.
fn signed_fields(conditions: &str, expires: SystemTime, access_key: &str, secret: &str) -> Fields {
    let now = SystemTime::now();
    let (_, amz_date) = times(now);
    let date = &amz_date[..8];
    let credential = format!("{access_key}/{date}/us-east-1/s3/aws4_request");
    let (expiration, _) = times(expires);
    let sep = if conditions.trim().is_empty() {
        ""
    } else {
        ", "
    };
    let policy = format!(
        r#"{{"expiration": "{expiration}", "conditions": [{conditions}{sep}{{"x-amz-algorithm": "AWS4-HMAC-SHA256"}}, {{"x-amz-credential": "{credential}"}}, {{"x-amz-date": "{amz_date}"}}]}}"#
    );
    let policy = base64::engine::general_purpose::STANDARD.encode(policy);
    let key = aws_sigv4::sign::v4::generate_signing_key(secret, now, "us-east-1", "s3");
    let signature = aws_sigv4::sign::v4::calculate_signature(key, policy.as_bytes());
    vec![
        ("x-amz-algorithm".into(), "AWS4-HMAC-SHA256".into()),
        ("x-amz-credential".into(), credential),
        ("x-amz-date".into(), amz_date),
        ("policy".into(), policy),
        ("x-amz-signature".into(), signature),
    ]
}

fn root_fields(conditions: &str) -> Fields {
    let hour = SystemTime::now() + Duration::from_secs(3600);
    signed_fields(conditions, hour, ACCESS_KEY, SECRET_KEY)
}

fn with<'a>(
    signed: &'a [(String, String)],
    mut fields: Vec<(&'a str, &'a str)>,
) -> Vec<(&'a str, &'a str)> {
    fields.extend(signed.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    fields
}

async fn exists(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> bool {
    s3.head_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .is_ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_form_upload_stores_the_file_with_its_metadata() {
    let server = Server::start();
    let s3 = client(&server);
    s3.create_bucket().bucket("forms").send().await.unwrap();
    let signed = root_fields(
        r#"{"bucket": "forms"}, ["starts-with", "$key", "docs/"], ["starts-with", "$Content-Type", "text/"],
           {"x-amz-meta-color": "blue"}, ["eq", "$Cache-Control", "max-age=60"], {"acl": "private"},
           ["content-length-range", 1, 1024]"#,
    );
    let fields = with(
        &signed,
        vec![
            ("Key", "docs/note.txt"),
            ("Content-Type", "text/plain"),
            ("X-Amz-Meta-Color", "blue"),
            ("Cache-Control", "max-age=60"),
            ("acl", "private"),
            ("x-ignore-comment", "not in the policy, and ignored"),
        ],
    );
    let r = post_form(&server, "forms", &fields, "note.txt", b"hello, form");
    assert_eq!(r.status, 204, "{}", r.body_str());
    let etag = r.header("etag").expect("an ETag").to_string();
    assert_eq!(etag, format!("\"{}\"", md5_hex(b"hello, form")));

    let head = s3
        .head_object()
        .bucket("forms")
        .key("docs/note.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("text/plain"));
    assert_eq!(head.cache_control(), Some("max-age=60"));
    assert_eq!(head.e_tag(), Some(etag.as_str()));
    assert_eq!(
        head.metadata()
            .and_then(|m| m.get("color"))
            .map(String::as_str),
        Some("blue")
    );
    assert_eq!(
        get_bytes(&s3, "forms", "docs/note.txt").await,
        b"hello, form"
    );

    // A field no condition names is refused, and nothing is written.
    let extra = with(
        &signed,
        vec![
            ("key", "docs/extra.txt"),
            ("Content-Type", "text/plain"),
            ("x-amz-meta-color", "blue"),
            ("cache-control", "max-age=60"),
            ("acl", "private"),
            ("x-amz-meta-owner", "mallory"),
        ],
    );
    let r = post_form(&server, "forms", &extra, "x.txt", b"data");
    assert_eq!(r.status, 403);
    assert_eq!(r.error_code().as_deref(), Some("AccessDenied"));
    assert!(
        r.body_str()
            .contains("Extra input fields: x-amz-meta-owner"),
        "{}",
        r.body_str()
    );
    // A condition that does not hold: the key outside the allowed prefix.
    let outside = with(
        &signed,
        vec![
            ("key", "other/x.txt"),
            ("Content-Type", "text/plain"),
            ("x-amz-meta-color", "blue"),
            ("cache-control", "max-age=60"),
            ("acl", "private"),
        ],
    );
    let r = post_form(&server, "forms", &outside, "x.txt", b"data");
    assert_eq!(
        (r.status, r.error_code().as_deref()),
        (403, Some("AccessDenied"))
    );
    assert!(!exists(&s3, "forms", "docs/extra.txt").await);
    assert!(!exists(&s3, "forms", "other/x.txt").await);
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_signatures_and_policies_write_nothing() {
    let server = Server::start();
    let s3 = client(&server);
    s3.create_bucket().bucket("refusals").send().await.unwrap();
    let conditions = r#"{"bucket": "refusals"}, ["starts-with", "$key", ""]"#;
    let cases: Vec<(&str, Fields, u16, &str)> = vec![
        (
            "expired",
            signed_fields(
                conditions,
                SystemTime::now() - Duration::from_secs(60),
                ACCESS_KEY,
                SECRET_KEY,
            ),
            403,
            "AccessDenied",
        ),
        (
            "wrong secret",
            signed_fields(
                conditions,
                SystemTime::now() + Duration::from_secs(600),
                ACCESS_KEY,
                "not-the-secret",
            ),
            403,
            "SignatureDoesNotMatch",
        ),
        (
            "unknown key",
            signed_fields(
                conditions,
                SystemTime::now() + Duration::from_secs(600),
                "AKIDNOBODYKNOWS00000",
                SECRET_KEY,
            ),
            403,
            "InvalidAccessKeyId",
        ),
    ];
    for (what, signed, status, code) in cases {
        let fields = with(&signed, vec![("key", what)]);
        let r = post_form(&server, "refusals", &fields, "f", b"data");
        assert_eq!(r.status, status, "{what}: {}", r.body_str());
        assert_eq!(r.error_code().as_deref(), Some(code), "{what}");
        if what == "expired" {
            assert!(r.body_str().contains("Policy expired"), "{}", r.body_str());
        }
        assert!(!exists(&s3, "refusals", what).await, "{what}");
    }
    // A form without a file.
    let no_file = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nk\r\n--{BOUNDARY}--\r\n"
    );
    let req = format!(
        "POST /refusals HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{no_file}",
        no_file.len()
    );
    let r = raw_request(server.s3, req.as_bytes()).unwrap();
    assert_eq!(
        (r.status, r.error_code().as_deref()),
        (400, Some("InvalidArgument"))
    );
    // A body cut short in the file: nothing is stored.
    let body = form_body(&[("key", "cut")], "f", &[7u8; 5000]);
    let cut = &body[..body.len() - 100];
    let mut req = format!(
        "POST /refusals HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(cut);
    {
        use std::io::Write;
        let mut conn = std::net::TcpStream::connect(server.s3).unwrap();
        conn.write_all(&req).unwrap();
        conn.shutdown(std::net::Shutdown::Write).unwrap();
        let mut answer = Vec::new();
        let _ = std::io::Read::read_to_end(&mut conn, &mut answer);
    }
    assert!(!exists(&s3, "refusals", "cut").await);
}

#[tokio::test(flavor = "multi_thread")]
async fn content_length_range_is_enforced_before_anything_is_stored() {
    let server = Server::start();
    let s3 = client(&server);
    s3.create_bucket().bucket("sizes").send().await.unwrap();
    let signed = root_fields(
        r#"{"bucket": "sizes"}, ["starts-with", "$key", ""], ["content-length-range", 10, 100]"#,
    );
    let r = post_form(
        &server,
        "sizes",
        &with(&signed, vec![("key", "big")]),
        "f",
        &[1u8; 101],
    );
    assert_eq!(
        (r.status, r.error_code().as_deref()),
        (400, Some("EntityTooLarge"))
    );
    let r = post_form(
        &server,
        "sizes",
        &with(&signed, vec![("key", "small")]),
        "f",
        &[1u8; 9],
    );
    assert_eq!(
        (r.status, r.error_code().as_deref()),
        (400, Some("EntityTooSmall"))
    );
    assert!(!exists(&s3, "sizes", "big").await);
    assert!(!exists(&s3, "sizes", "small").await);
    for n in [10usize, 100] {
        let key = format!("ok-{n}");
        let r = post_form(
            &server,
            "sizes",
            &with(&signed, vec![("key", &key)]),
            "f",
            &vec![2u8; n],
        );
        assert_eq!(r.status, 204, "{}", r.body_str());
        assert_eq!(get_bytes(&s3, "sizes", &key).await.len(), n);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn anonymous_forms_need_a_bucket_that_anyone_may_write() {
    let server = Server::start();
    let s3 = client(&server);
    s3.create_bucket().bucket("private").send().await.unwrap();
    s3.create_bucket()
        .bucket("dropbox")
        .acl(BucketCannedAcl::PublicReadWrite)
        .send()
        .await
        .unwrap();
    let fields = [
        ("key", "drop.txt"),
        ("acl", "public-read"),
        ("Content-Type", "text/plain"),
    ];
    let r = post_form(&server, "private", &fields, "drop.txt", b"anonymous");
    assert_eq!(
        (r.status, r.error_code().as_deref()),
        (403, Some("AccessDenied"))
    );
    assert!(!exists(&s3, "private", "drop.txt").await);

    let r = post_form(&server, "dropbox", &fields, "drop.txt", b"anonymous");
    assert_eq!(r.status, 204, "{}", r.body_str());
    assert_eq!(get_bytes(&s3, "dropbox", "drop.txt").await, b"anonymous");
    // A policy without a signature is not an anonymous form.
    let policy = [("key", "p.txt"), ("policy", "e30=")];
    let r = post_form(&server, "dropbox", &policy, "p.txt", b"x");
    assert_eq!(
        (r.status, r.error_code().as_deref()),
        (400, Some("InvalidArgument"))
    );
}

/// Signs a form with `cairn presign-post` (JSON output), as an application would.
fn presign(server: &Server, args: &[&str]) -> serde_json::Value {
    let out = Command::new(cairn_bin())
        .arg("presign-post")
        .args(["--endpoint", &server.endpoint()])
        .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
        .args(args)
        .output()
        .expect("run cairn presign-post");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON from presign-post")
}

fn fields_of(form: &serde_json::Value) -> Fields {
    form["fields"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn presigned_forms_with_file_names_201_and_303_answers() {
    let server = Server::start();
    let s3 = client(&server);
    s3.create_bucket().bucket("answers").send().await.unwrap();

    let form = presign(
        &server,
        &[
            "answers",
            "--key",
            "uploads/${filename}",
            "--success-action-status",
            "201",
            "--field",
            "x-amz-meta-by=cli",
        ],
    );
    assert_eq!(form["url"], format!("{}/answers", server.endpoint()));
    let signed = fields_of(&form);
    let fields: Vec<(&str, &str)> = signed
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let r = post_form(&server, "answers", &fields, "report.pdf", b"%PDF-1.4");
    assert_eq!(r.status, 201, "{}", r.body_str());
    let xml = r.body_str();
    let etag = format!("\"{}\"", md5_hex(b"%PDF-1.4"));
    for part in [
        "<Bucket>answers</Bucket>".to_string(),
        "<Key>uploads/report.pdf</Key>".to_string(),
        format!("<ETag>{}</ETag>", etag.replace('"', "&quot;")),
        "/answers/uploads/report.pdf</Location>".to_string(),
    ] {
        assert!(xml.contains(&part), "{part} in {xml}");
    }
    let head = s3
        .head_object()
        .bucket("answers")
        .key("uploads/report.pdf")
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.metadata()
            .and_then(|m| m.get("by"))
            .map(String::as_str),
        Some("cli")
    );

    // A redirect: 303 to the URL with the object appended to its query.
    let form = presign(
        &server,
        &[
            "answers",
            "--key",
            "r/${filename}",
            "--redirect",
            "http://app.example/done?from=form",
            "--content-length-range",
            "0,100",
        ],
    );
    let signed = fields_of(&form);
    let fields: Vec<(&str, &str)> = signed
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let r = post_form(&server, "answers", &fields, "a b.txt", b"redirected");
    assert_eq!(r.status, 303, "{}", r.body_str());
    let etag = md5_hex(b"redirected");
    assert_eq!(
        r.header("location"),
        Some(
            format!(
                "http://app.example/done?from=form&bucket=answers&key=r%2Fa%20b.txt&etag=%22{etag}%22"
            )
            .as_str()
        )
    );
    assert_eq!(get_bytes(&s3, "answers", "r/a b.txt").await, b"redirected");
    // The same form, another file name, but too large for its range.
    let r = post_form(&server, "answers", &fields, "big.bin", &[0u8; 101]);
    assert_eq!(
        (r.status, r.error_code().as_deref()),
        (400, Some("EntityTooLarge"))
    );
    assert!(!exists(&s3, "answers", "r/big.bin").await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_file_is_streamed_through_several_stripes() {
    let server = Server::start();
    let s3 = client(&server);
    s3.create_bucket().bucket("large").send().await.unwrap();
    let data = random_bytes((10 << 20) + 12_345, 17);
    let signed = root_fields(r#"{"bucket": "large"}, {"key": "big.bin"}"#);
    let r = post_form(
        &server,
        "large",
        &with(&signed, vec![("key", "big.bin")]),
        "big.bin",
        &data,
    );
    assert_eq!(r.status, 204, "{}", r.body_str());
    assert_eq!(
        r.header("etag"),
        Some(format!("\"{}\"", md5_hex(&data)).as_str())
    );
    let got = get_bytes(&s3, "large", "big.bin").await;
    assert_eq!(got.len(), data.len());
    assert!(
        got == data,
        "the object read back differs from the file sent"
    );
}

/// A person's browser: Chromium opens a page with a form signed by `cairn presign-post`,
/// picks a file and submits; the server stores it and redirects the browser to the page's
/// own site. A second form whose size range excludes the file shows the browser the error
/// document, and stores nothing. Needs the venv's Playwright and Chromium (see
/// `console.rs`: a failure, not a skip, with `CAIRN_REQUIRE_BROWSER=1`).
#[tokio::test(flavor = "multi_thread")]
async fn a_browser_uploads_with_a_signed_form_and_follows_the_redirect() {
    let Some((python, chromium)) = crate::console::browser() else {
        return;
    };
    let server = Server::start();
    let s3 = client(&server);
    s3.create_bucket().bucket("browser").send().await.unwrap();
    let script = cairn_tests::repo_root().join("tests/console/post_form_test.py");
    let out = Command::new(python)
        .arg(script)
        .env("CAIRN_BIN", cairn_bin())
        .env("CAIRN_S3_URL", server.endpoint())
        .env("CAIRN_ACCESS_KEY", ACCESS_KEY)
        .env("CAIRN_SECRET_KEY", SECRET_KEY)
        .env("CAIRN_BUCKET", "browser")
        .env("CAIRN_SCREENSHOTS", crate::console::screenshots())
        .env("CHROMIUM", chromium)
        .output()
        .expect("run the browser test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "browser form test failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or("")).expect("the script's JSON");
    assert_eq!(seen["uploaded"]["key"], "uploads/hello.txt");

    let head = s3
        .head_object()
        .bucket("browser")
        .key("uploads/hello.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.metadata()
            .and_then(|m| m.get("origin"))
            .map(String::as_str),
        Some("browser")
    );
    assert_eq!(head.content_type(), Some("text/plain"));
    assert_eq!(head.e_tag(), seen["uploaded"]["etag"].as_str());
    let body = get_bytes(&s3, "browser", "uploads/hello.txt").await;
    assert_eq!(body, b"Hello from a browser form.\n".repeat(40));
    assert!(!exists(&s3, "browser", "small/big.txt").await);
    let listed = s3.list_objects_v2().bucket("browser").send().await.unwrap();
    assert_eq!(listed.key_count(), Some(1), "{listed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_upload_into_a_locked_bucket_gets_the_default_retention() {
    use aws_sdk_s3::types::{
        DefaultRetention, ObjectLockConfiguration, ObjectLockEnabled, ObjectLockMode,
        ObjectLockRetentionMode, ObjectLockRule,
    };
    let server = Server::start();
    let s3 = client(&server);
    s3.create_bucket()
        .bucket("vault")
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .unwrap();
    s3.put_object_lock_configuration()
        .bucket("vault")
        .object_lock_configuration(
            ObjectLockConfiguration::builder()
                .object_lock_enabled(ObjectLockEnabled::Enabled)
                .rule(
                    ObjectLockRule::builder()
                        .default_retention(
                            DefaultRetention::builder()
                                .mode(ObjectLockRetentionMode::Compliance)
                                .days(1)
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let signed = root_fields(r#"{"bucket": "vault"}, ["starts-with", "$key", ""]"#);
    let fields = with(&signed, vec![("key", "form.txt")]);
    let r = post_form(&server, "vault", &fields, "form.txt", b"kept a day");
    assert_eq!(r.status, 204, "{}", r.body_str());
    let head = s3
        .head_object()
        .bucket("vault")
        .key("form.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(head.object_lock_mode(), Some(&ObjectLockMode::Compliance));
    let v = head.version_id().unwrap();
    let del = s3
        .delete_object()
        .bucket("vault")
        .key("form.txt")
        .version_id(v)
        .send()
        .await;
    assert_eq!(code_of(&del.unwrap_err()).as_deref(), Some("AccessDenied"));
}
