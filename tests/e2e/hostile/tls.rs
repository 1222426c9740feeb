//! `cairn server --tls-cert --tls-key`: aws-cli (`--ca-bundle`), boto3 (`verify=`) and the
//! console (whose own S3 calls go over HTTPS too) against a certificate from a test CA; then
//! the files are overwritten with a certificate from another CA and new connections get it
//! without a restart. The tools come as in [`crate::scripted`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;
use crate::scripted::{skip, tool};

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, name);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap()
}

/// A server certificate for 127.0.0.1 and localhost: (certificate PEM, key PEM).
fn server_cert(ca: &CertifiedIssuer<'static, KeyPair>) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut p =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    p.distinguished_name.push(DnType::CommonName, "cairn test");
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = p.signed_by(&key, ca).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// GET /health/ready over TLS, trusting only `ca_pem`: the status, or why it failed.
fn probe(addr: SocketAddr, ca_pem: &str) -> Result<u16, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
            .unwrap();
        let config = rustls::ClientConfig::builder_with_provider(cairn_net::crypto_provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        let name = ServerName::IpAddress(addr.ip().into());
        let mut s = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        s.write_all(b"GET /health/ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out).await;
        let text = String::from_utf8_lossy(&out);
        text.split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| format!("no status in {text:?}"))
    })
}

/// Waits until `addr` answers over TLS with a certificate from `ca_pem` (and, with
/// `status`, with that status); how long that took.
fn wait_served(addr: SocketAddr, ca_pem: &str, status: Option<u16>, within: Duration) -> Duration {
    let t = Instant::now();
    loop {
        match probe(addr, ca_pem) {
            Ok(s) if status.is_none_or(|want| want == s) => return t.elapsed(),
            other => assert!(
                t.elapsed() < within,
                "{addr} not served as expected after {within:?}: {other:?}"
            ),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_CA_BUNDLE")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .unwrap_or_else(|e| panic!("could not run {cmd:?}: {e} (or set CAIRN_SKIP_SCRIPTED=1)"));
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn aws(server: &Server, ca: &Path, args: &[&str]) -> (bool, String) {
    run(Command::new(tool("aws"))
        .args(["--endpoint-url", &server.endpoint(), "--ca-bundle"])
        .arg(ca)
        .args(["--cli-read-timeout", "10", "--cli-connect-timeout", "5"])
        .args(args))
}

const BOTO3: &str = r#"
import sys, boto3
from botocore.config import Config
endpoint, ca, bucket, key = sys.argv[1:5]
s3 = boto3.client("s3", endpoint_url=endpoint, verify=ca, region_name="us-east-1",
                  config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}))
body = ("boto3 over https " + key).encode()
s3.put_object(Bucket=bucket, Key=key, Body=body)
assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body
keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
assert key in keys, keys
print("BOTO3 OK")
"#;

/// Logs in to the console over HTTPS and lists buckets through it: the console's own S3
/// call goes to the HTTPS S3 listener.
const CONSOLE: &str = r#"
import json, ssl, sys, urllib.request
url, ca, access, secret, bucket = sys.argv[1:6]
ctx = ssl.create_default_context(cafile=ca)
login = urllib.request.Request(url + "/console/api/login", method="POST",
    data=json.dumps({"access_key": access, "secret_key": secret}).encode(),
    headers={"content-type": "application/json"})
with urllib.request.urlopen(login, context=ctx) as r:
    cookie = r.headers["set-cookie"].split(";")[0]
listing = urllib.request.Request(url + "/console/api/buckets", headers={"cookie": cookie})
with urllib.request.urlopen(listing, context=ctx) as r:
    body = r.read().decode()
assert bucket in body, body
print("CONSOLE OK")
"#;

fn python(script: &str, args: &[&str]) -> (bool, String) {
    run(Command::new(tool("python3"))
        .arg("-c")
        .arg(script)
        .args(args))
}

/// `cairn key list` over the HTTPS admin API, trusting `ca`.
fn cli_key_list(server: &Server, ca: &Path) -> (bool, String) {
    run(Command::new(cairn_bin())
        .args(["key", "list", "--admin-url"])
        .arg(format!("https://{}", server.admin))
        .arg("--ca-bundle")
        .arg(ca)
        .arg("--data")
        .arg(&server.data)
        .env_remove("CAIRN_ROOT_ACCESS_KEY")
        .env_remove("CAIRN_ROOT_SECRET_KEY"))
}

fn write_pair(dir: &Path, (cert, key): &(String, String)) -> (PathBuf, PathBuf) {
    let (c, k) = (dir.join("server.pem"), dir.join("server.key"));
    std::fs::write(&c, cert).unwrap();
    std::fs::write(&k, key).unwrap();
    (c, k)
}

#[test]
fn https_for_aws_cli_boto3_and_the_console_with_a_certificate_swapped_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let ca1 = ca("Cairn test CA one");
    let ca1_pem = ca1.pem();
    let ca1_file = dir.path().join("ca1.pem");
    std::fs::write(&ca1_file, &ca1_pem).unwrap();
    let (cert, key) = write_pair(dir.path(), &server_cert(&ca1));
    let server = Server::start_with(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    assert!(server.tls, "the server announced plain HTTP");
    assert!(server.endpoint().starts_with("https://"));
    wait_served(server.admin, &ca1_pem, Some(200), Duration::from_secs(60));
    wait_served(server.s3, &ca1_pem, None, Duration::from_secs(5));
    let pid = server.pid();

    let (ok, out) = cli_key_list(&server, &ca1_file);
    assert!(
        ok && out.contains(ACCESS_KEY),
        "cairn key list over https: {out}"
    );
    let scripted = !skip();
    let console_url = format!("https://{}", server.admin);
    if scripted {
        let upload = dir.path().join("upload.bin");
        let data = random_bytes(300 << 10, 7);
        std::fs::write(&upload, &data).unwrap();
        let (ok, out) = aws(&server, &ca1_file, &["s3", "mb", "s3://tls"]);
        assert!(ok, "aws s3 mb: {out}");
        let up = upload.to_str().unwrap();
        let (ok, out) = aws(&server, &ca1_file, &["s3", "cp", up, "s3://tls/cli.bin"]);
        assert!(ok, "aws s3 cp up: {out}");
        let down = dir.path().join("download.bin");
        let (ok, out) = aws(
            &server,
            &ca1_file,
            &["s3", "cp", "s3://tls/cli.bin", down.to_str().unwrap()],
        );
        assert!(ok, "aws s3 cp down: {out}");
        assert_eq!(std::fs::read(&down).unwrap(), data);
        let (ok, out) = aws(&server, &ca1_file, &["s3", "ls", "s3://tls"]);
        assert!(ok && out.contains("cli.bin"), "aws s3 ls: {out}");
        let (ok, out) = python(
            BOTO3,
            &[&server.endpoint(), ca1_file.to_str().unwrap(), "tls", "one"],
        );
        assert!(ok && out.contains("BOTO3 OK"), "boto3: {out}");
        let (ok, out) = python(
            CONSOLE,
            &[
                &console_url,
                ca1_file.to_str().unwrap(),
                ACCESS_KEY,
                SECRET_KEY,
                "tls",
            ],
        );
        assert!(ok && out.contains("CONSOLE OK"), "console: {out}");
    }

    // Renewal: a certificate from another CA, written over the same files.
    let ca2 = ca("Cairn test CA two");
    let ca2_pem = ca2.pem();
    let ca2_file = dir.path().join("ca2.pem");
    std::fs::write(&ca2_file, &ca2_pem).unwrap();
    write_pair(dir.path(), &server_cert(&ca2));
    let took = wait_served(server.s3, &ca2_pem, None, Duration::from_secs(10));
    println!(
        "new certificate served {:.2} s after the files changed",
        took.as_secs_f64()
    );
    wait_served(server.admin, &ca2_pem, Some(200), Duration::from_secs(5));
    let old = probe(server.s3, &ca1_pem);
    assert!(old.is_err(), "the old CA still verifies: {old:?}");
    assert_eq!(server.pid(), pid, "no restart");
    let (ok, out) = cli_key_list(&server, &ca1_file);
    assert!(!ok, "the CLI trusted the old CA after the swap: {out}");
    let (ok, out) = cli_key_list(&server, &ca2_file);
    assert!(
        ok && out.contains(ACCESS_KEY),
        "cairn key list with the new CA: {out}"
    );

    if scripted {
        let (ok, out) = aws(&server, &ca1_file, &["s3", "ls", "s3://tls"]);
        assert!(!ok, "aws-cli trusted the old CA after the swap: {out}");
        assert!(
            out.contains("SSL") || out.contains("certificate"),
            "not a certificate error: {out}"
        );
        let (ok, out) = aws(&server, &ca2_file, &["s3", "ls", "s3://tls"]);
        assert!(
            ok && out.contains("cli.bin"),
            "aws s3 ls with the new CA: {out}"
        );
        let (ok, out) = python(
            BOTO3,
            &[&server.endpoint(), ca2_file.to_str().unwrap(), "tls", "two"],
        );
        assert!(
            ok && out.contains("BOTO3 OK"),
            "boto3 with the new CA: {out}"
        );
        let (ok, out) = python(
            CONSOLE,
            &[
                &console_url,
                ca2_file.to_str().unwrap(),
                ACCESS_KEY,
                SECRET_KEY,
                "tls",
            ],
        );
        assert!(
            ok && out.contains("CONSOLE OK"),
            "console after the swap: {out}"
        );
    }
}

#[test]
fn a_key_that_does_not_match_the_certificate_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ca("Cairn test CA");
    let (cert, _) = write_pair(dir.path(), &server_cert(&ca));
    let other_key = dir.path().join("other.key");
    std::fs::write(&other_key, server_cert(&ca).1).unwrap();
    let out = Command::new(cairn_bin())
        .arg("server")
        .arg("--data")
        .arg(dir.path().join("data"))
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .args(["--cluster-listen", "127.0.0.1:0"])
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&other_key)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("TLS certificate") && stderr.contains("other.key"),
        "{stderr}"
    );
}
