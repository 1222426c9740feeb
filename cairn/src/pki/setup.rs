//! What a starting node does to have its TLS material, and how its cluster traffic goes.
//!
//! [`prepare`] runs before the cluster listener serves (it reads only this node's own
//! metadata replica and data directory):
//!
//! - material in `<data>/cluster-tls/` is used as it is, unless the replica holds another
//!   cluster CA (the CA in metadata is the truth): then a new certificate is issued locally;
//! - no material, but the replica has the CA: issued locally (every replica can);
//! - a new data directory without `--join`: the first node of a cluster makes the CA (kept
//!   in `ca-pending.json` until [`finish`] stores it in metadata) and its certificate;
//! - a new data directory with `--join`: the join protocol ([`super::join::fetch`]);
//! - a data directory from before TLS between nodes (metadata but no CA): a node alone in
//!   its cluster makes the CA as the first node does; a member of a larger cluster asks the
//!   others for a certificate (with TLS), or, with `--insecure-cluster-transport`, leaves it
//!   to [`finish`]. So an older multi-node cluster moves to TLS by starting every node once
//!   with `--insecure-cluster-transport` (which makes the CA and every node's certificate),
//!   then again without.
//!
//! [`finish`] runs once metadata answers: it stores the CA if metadata has none yet and
//! makes sure this node's certificate is from the stored CA (effective at the next start
//! when it had to be replaced).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use cairn_metadata::{cluster_state, MetadataStore};
use cairn_metadata_rocks::RocksMetadataStore;
use cairn_net::client::ClusterTransport;

use super::join::{self, Issuer};
use super::{load_pending_ca, remove_pending_ca, save_pending_ca, ClusterCa, NodeMaterial};

/// How long a starting node keeps asking the cluster for a certificate.
const FETCH_FOR: Duration = Duration::from_secs(300);

/// What [`prepare`] and [`finish`] need from `cairn server`'s arguments.
#[derive(Debug, Clone)]
pub struct NodeSetup {
    /// The data directory (the node's certificate and a pending CA are kept in it).
    pub data: std::path::PathBuf,
    pub node_id: u64,
    /// A member to fetch a certificate from when this node is new (`--join`).
    pub join: Option<String>,
    /// `--insecure-cluster-transport`: plain HTTP with the cluster secret instead of TLS.
    pub insecure_cluster_transport: bool,
}

/// This node's transport and the issuer behind its certificate route.
pub struct Prepared {
    pub transport: ClusterTransport,
    pub issuer: Arc<Issuer>,
}

/// The CA in this node's own replica, if it has one.
async fn replica_ca(local: &RocksMetadataStore) -> anyhow::Result<Option<ClusterCa>> {
    ClusterCa::stored(local).await
}

/// Makes a new cluster CA on this node and its certificate from it.
fn new_ca(data: &Path, node_id: u64) -> anyhow::Result<(ClusterCa, NodeMaterial)> {
    let ca = ClusterCa::generate()?;
    save_pending_ca(data, &ca)?;
    let m = NodeMaterial::issue_locally(&ca, node_id)?;
    m.save(data)?;
    tracing::info!("made the cluster CA and this node's certificate");
    Ok((ca, m))
}

/// See the module docs.
pub async fn prepare(
    args: &NodeSetup,
    local: &RocksMetadataStore,
    secret: &str,
) -> anyhow::Result<Prepared> {
    let data = args.data.as_path();
    let id = args.node_id;
    let tls = !args.insecure_cluster_transport;
    let stored = replica_ca(local).await?;
    let mut pending = load_pending_ca(data)?;
    let material =
        match (NodeMaterial::load(data)?, &stored) {
            (Some(m), Some(ca)) if m.ca_pem != ca.cert_pem => {
                tracing::warn!(
                "this node's certificate is not from the cluster CA in metadata; issuing a new one"
            );
                let m = NodeMaterial::issue_locally(ca, id)?;
                m.save(data)?;
                Some(m)
            }
            (Some(m), _) => Some(m),
            (None, Some(ca)) => {
                let m = NodeMaterial::issue_locally(ca, id)?;
                m.save(data)?;
                tracing::info!("issued this node's certificate from the cluster CA in metadata");
                Some(m)
            }
            (None, None) => {
                if let Some(ca) = &pending {
                    let m = NodeMaterial::issue_locally(ca, id)?;
                    m.save(data)?;
                    Some(m)
                } else {
                    let fresh = cluster_state::root_key(local).await?.is_none()
                        && local
                            .scan_sys(crate::sys_records::NODE_PREFIX)
                            .await?
                            .is_empty();
                    let others = crate::sys_records::nodes(local)
                        .await?
                        .into_iter()
                        .filter(|r| r.id != id)
                        .map(|r| r.cluster_addr)
                        .collect::<Vec<_>>();
                    match (&args.join, fresh) {
                        (Some(seed), true) => {
                            let seeds = [seed.clone()];
                            let deadline = Instant::now() + FETCH_FOR;
                            let m = join::fetch(&seeds, id, secret, tls, deadline)
                                .await
                                .with_context(|| format!("getting a certificate from {seed}"))?;
                            m.save(data)?;
                            Some(m)
                        }
                        (None, true) => {
                            let (ca, m) = new_ca(data, id)?;
                            pending = Some(ca);
                            Some(m)
                        }
                        // A data directory from before TLS between nodes.
                        (_, false) if others.is_empty() => {
                            let (ca, m) = new_ca(data, id)?;
                            pending = Some(ca);
                            Some(m)
                        }
                        (_, false) if !tls => {
                            tracing::warn!(
                                "this cluster has no CA yet: it is made once metadata answers, so \
                             that the nodes can be restarted without --insecure-cluster-transport"
                            );
                            None
                        }
                        (join_addr, false) => {
                            let seeds: Vec<String> =
                                others.into_iter().chain(join_addr.clone()).collect();
                            let deadline = Instant::now() + FETCH_FOR;
                            let m = join::fetch(&seeds, id, secret, tls, deadline).await.context(
                            "this node belongs to a cluster made before TLS between nodes, which \
                             has no cluster CA: start every node once with \
                             --insecure-cluster-transport, then again without it (see \
                             docs/security.md)",
                        )?;
                            m.save(data)?;
                            Some(m)
                        }
                    }
                }
            }
        };
    let transport = if tls {
        let m = material.context("no TLS material for this node")?;
        ClusterTransport::Tls(Arc::new(m.tls()?))
    } else {
        tracing::warn!(
            "--insecure-cluster-transport: traffic between nodes is plain HTTP and carries the \
             cluster secret"
        );
        ClusterTransport::insecure(secret)
    };
    Ok(Prepared {
        transport,
        issuer: Arc::new(Issuer::new(local.clone(), pending, secret.to_string())),
    })
}

/// See the module docs. `meta` is the replicated metadata (reads are linearizable).
pub async fn finish(
    meta: &dyn MetadataStore,
    args: &NodeSetup,
    transport: &ClusterTransport,
) -> anyhow::Result<()> {
    let data = args.data.as_path();
    let read = || ClusterCa::stored(meta);
    let ca = match read().await? {
        Some(ca) => ca,
        None => {
            let ca = match load_pending_ca(data)? {
                Some(ca) => ca,
                // An older cluster moving to TLS, started with --insecure-cluster-transport.
                None => ClusterCa::generate()?,
            };
            meta.apply(ca.store_command())
                .await
                .context("storing the cluster CA")?;
            tracing::info!("stored the cluster CA in metadata");
            // Another node may have stored one first: the first one stored is the CA.
            read()
                .await?
                .context("the cluster CA vanished from metadata")?
        }
    };
    remove_pending_ca(data)?;
    let current = NodeMaterial::load(data)?;
    if current.as_ref().is_none_or(|m| m.ca_pem != ca.cert_pem) {
        NodeMaterial::issue_locally(&ca, args.node_id)?.save(data)?;
        if transport.is_tls() && current.is_some() {
            tracing::warn!(
                "this node's certificate was not from the cluster CA; a new one is saved and \
                 used from the next start"
            );
        } else {
            tracing::info!("issued this node's certificate from the cluster CA");
        }
    }
    Ok(())
}
