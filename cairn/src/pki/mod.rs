//! The cluster's certificates, for mutual TLS between nodes (see `docs/security.md`,
//! "Between nodes"):
//!
//! - [`ClusterCa`]: the cluster CA (ECDSA P-256), made by the first node of a cluster. Its
//!   certificate and key live in metadata (`sys/cluster-ca`, kept by
//!   [`cairn_metadata::cluster_state`]), so that every
//!   replica can issue node certificates; every node already holds the cluster secret, which
//!   lets anyone join, so this is the same trust level.
//! - [`NodeMaterial`]: this node's certificate and key with the CA certificate, kept in
//!   `<data>/cluster-tls/` (directory 0700, files 0600). Node certificates name
//!   [`CLUSTER_SERVER_NAME`] (verified as the server name whatever address was dialled),
//!   allow client and server authentication, and are valid for ten years (the CA for twenty).
//! - [`join`]: the `POST /cluster/certificate` route and its client, by which a joining node
//!   proves the cluster secret (without sending it) and gets its certificate.
//! - [`setup`]: what a starting node does to have its material (load, issue locally, create
//!   the CA, or ask the cluster).

pub mod join;
pub mod setup;

use std::path::{Path, PathBuf};

use anyhow::Context;
use cairn_metadata::cluster_state::{self, ClusterCaRecord};
use cairn_metadata::{Command, MetadataStore};
use cairn_net::client::{ClusterTls, CLUSTER_SERVER_NAME};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, PublicKeyData,
    SerialNumber, PKCS_ECDSA_P256_SHA256,
};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

/// Directory of a node's TLS material under its data directory.
pub const DIR: &str = "cluster-tls";
const CA_FILE: &str = "ca.pem";
const CERT_FILE: &str = "node.pem";
const KEY_FILE: &str = "node.key";
/// The CA made at bootstrap, kept on disk only until it is stored in metadata.
const PENDING_CA_FILE: &str = "ca-pending.json";

const CA_DAYS: i64 = 20 * 365;
const NODE_DAYS: i64 = 10 * 365;
/// Certificates start a day early, for clocks that lag.
const BACKDATE_DAYS: i64 = 1;

/// The cluster CA: certificate and private key, PEM.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ClusterCa {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for ClusterCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterCa").finish_non_exhaustive()
    }
}

fn random_serial() -> SerialNumber {
    let mut b: [u8; 16] = rand::random();
    b[0] &= 0x7f; // positive
    b[0] |= 0x01; // and never shorter than 16 bytes
    SerialNumber::from_slice(&b)
}

impl ClusterCa {
    /// A new CA.
    pub fn generate() -> anyhow::Result<ClusterCa> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "Cairn");
        dn.push(
            DnType::CommonName,
            format!(
                "Cairn cluster CA {}",
                hex::encode(rand::random::<[u8; 6]>())
            ),
        );
        p.distinguished_name = dn;
        p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = OffsetDateTime::now_utc();
        p.not_before = now - Duration::days(BACKDATE_DAYS);
        p.not_after = now + Duration::days(CA_DAYS);
        p.serial_number = Some(random_serial());
        let cert = p.self_signed(&key)?;
        Ok(ClusterCa {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// The cluster CA stored in metadata, if any.
    pub async fn stored(meta: &dyn MetadataStore) -> anyhow::Result<Option<ClusterCa>> {
        let ca = cluster_state::cluster_ca(meta)
            .await
            .context("reading the cluster CA stored in metadata")?;
        Ok(ca.map(|r| ClusterCa {
            cert_pem: r.cert_pem,
            key_pem: r.key_pem,
        }))
    }

    /// The command that stores this CA in metadata (unless one is stored already).
    pub fn store_command(&self) -> Command {
        Command::SetClusterCa(ClusterCaRecord {
            cert_pem: self.cert_pem.clone(),
            key_pem: self.key_pem.clone(),
        })
    }

    /// A certificate (PEM) for node `node_id`'s `public_key`.
    pub fn issue(&self, node_id: u64, public_key: &impl PublicKeyData) -> anyhow::Result<String> {
        let key = KeyPair::from_pem(&self.key_pem).context("the cluster CA key")?;
        let issuer =
            Issuer::from_ca_cert_pem(&self.cert_pem, key).context("the cluster CA certificate")?;
        let mut p = CertificateParams::new(vec![CLUSTER_SERVER_NAME.to_string()])?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "Cairn");
        dn.push(DnType::CommonName, format!("cairn node {node_id}"));
        p.distinguished_name = dn;
        p.is_ca = IsCa::ExplicitNoCa;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        p.use_authority_key_identifier_extension = true;
        let now = OffsetDateTime::now_utc();
        p.not_before = now - Duration::days(BACKDATE_DAYS);
        p.not_after = now + Duration::days(NODE_DAYS);
        p.serial_number = Some(random_serial());
        Ok(p.signed_by(public_key, &issuer)?.pem())
    }

    /// Signs a certificate signing request (DER) from node `node_id`. Only the CSR's public
    /// key is used (its subject and extensions are ignored: the CA decides what a node
    /// certificate says); its signature must verify and its key must be ECDSA P-256.
    pub fn sign_csr(&self, node_id: u64, csr_der: &[u8]) -> Result<String, CsrRefused> {
        let csr = CertificateSigningRequestParams::from_der(&csr_der.to_vec().into())
            .map_err(|e| CsrRefused(format!("not a valid certificate signing request: {e}")))?;
        if csr.public_key.algorithm() != &PKCS_ECDSA_P256_SHA256 {
            return Err(CsrRefused("the key must be ECDSA P-256".into()));
        }
        self.issue(node_id, &csr.public_key)
            .map_err(|e| CsrRefused(format!("signing failed: {e:#}")))
    }
}

/// Why a certificate signing request was not signed.
#[derive(Debug)]
pub struct CsrRefused(pub String);

/// A new key pair and a certificate signing request for it (DER).
pub struct KeyAndCsr {
    pub key_pem: String,
    pub csr_der: Vec<u8>,
}

impl KeyAndCsr {
    pub fn generate(node_id: u64) -> anyhow::Result<KeyAndCsr> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut p = CertificateParams::default();
        p.distinguished_name
            .push(DnType::CommonName, format!("cairn node {node_id}"));
        let csr = p.serialize_request(&key)?;
        Ok(KeyAndCsr {
            key_pem: key.serialize_pem(),
            csr_der: csr.der().to_vec(),
        })
    }
}

/// This node's TLS material: the CA certificate, its own certificate and key (PEM).
#[derive(Clone, PartialEq, Eq)]
pub struct NodeMaterial {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for NodeMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeMaterial").finish_non_exhaustive()
    }
}

pub fn dir(data: &Path) -> PathBuf {
    data.join(DIR)
}

impl NodeMaterial {
    /// A new key and a certificate for it from `ca`, made locally.
    pub fn issue_locally(ca: &ClusterCa, node_id: u64) -> anyhow::Result<NodeMaterial> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        Ok(NodeMaterial {
            ca_pem: ca.cert_pem.clone(),
            cert_pem: ca.issue(node_id, &key)?,
            key_pem: key.serialize_pem(),
        })
    }

    /// The material saved in `data`, if there is any (all three files, or none).
    pub fn load(data: &Path) -> anyhow::Result<Option<NodeMaterial>> {
        let d = dir(data);
        let read = |name: &str| -> anyhow::Result<Option<String>> {
            let p = d.join(name);
            match std::fs::read_to_string(&p) {
                Ok(s) => Ok(Some(s)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e).with_context(|| format!("reading {}", p.display())),
            }
        };
        match (read(CA_FILE)?, read(CERT_FILE)?, read(KEY_FILE)?) {
            (Some(ca_pem), Some(cert_pem), Some(key_pem)) => {
                let m = NodeMaterial {
                    ca_pem,
                    cert_pem,
                    key_pem,
                };
                m.tls()
                    .with_context(|| format!("the TLS material in {}", d.display()))?;
                Ok(Some(m))
            }
            (None, None, None) => Ok(None),
            _ => anyhow::bail!(
                "{} holds only part of this node's TLS material ({CA_FILE}, {CERT_FILE}, \
                 {KEY_FILE}); remove the directory to get a new certificate",
                d.display()
            ),
        }
    }

    /// Saves the material in `data` (the key first, mode 0600 each, the directory 0700).
    pub fn save(&self, data: &Path) -> anyhow::Result<()> {
        let d = dir(data);
        crate::credentials::private_dir(&d)?;
        crate::credentials::write_private(&d, KEY_FILE, self.key_pem.as_bytes())?;
        crate::credentials::write_private(&d, CERT_FILE, self.cert_pem.as_bytes())?;
        crate::credentials::write_private(&d, CA_FILE, self.ca_pem.as_bytes())?;
        Ok(())
    }

    /// The rustls side: fails when the PEM is bad or the key is not the certificate's.
    pub fn tls(&self) -> anyhow::Result<ClusterTls> {
        ClusterTls::from_pem(&self.ca_pem, &self.cert_pem, &self.key_pem)
            .context("building the TLS configuration between nodes")
    }
}

/// The CA this node made at bootstrap and has not stored in metadata yet, if any.
pub fn load_pending_ca(data: &Path) -> anyhow::Result<Option<ClusterCa>> {
    let p = dir(data).join(PENDING_CA_FILE);
    match std::fs::read(&p) {
        Ok(raw) => Ok(Some(
            serde_json::from_slice(&raw).with_context(|| format!("reading {}", p.display()))?,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", p.display())),
    }
}

fn save_pending_ca(data: &Path, ca: &ClusterCa) -> anyhow::Result<()> {
    let d = dir(data);
    crate::credentials::private_dir(&d)?;
    let json = serde_json::to_vec(ca).expect("two strings serialize");
    crate::credentials::write_private(&d, PENDING_CA_FILE, &json)
}

fn remove_pending_ca(data: &Path) -> anyhow::Result<()> {
    let p = dir(data).join(PENDING_CA_FILE);
    match std::fs::remove_file(&p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", p.display()))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
