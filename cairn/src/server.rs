//! `cairn server`: opens metadata and the datanode under the data directory, starts the S3
//! and admin listeners and the background workers, and shuts down cleanly on SIGINT/SIGTERM.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context;
use axum::serve::ListenerExt;
use cairn_api::{ApiMetrics, ApiState, KeyRing};
use std::time::Duration;

use cairn_datanode::{RemoteShardStore, ShardStore, StoreOptions};
use cairn_heal::{HealConfig, Healer};
use cairn_metadata::{AccessKeyRecord, Command, MetadataStore, RocksMetadataStore};
use cairn_objects::{ObjectService, ObjectsConfig};
use cairn_types::{EcScheme, NodeId};
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::admin;
use crate::cli::server::{mb_per_sec, ServerArgs};
use crate::credentials::{self, Source};
use crate::datanodes::LocalDatanodes;

pub async fn run(args: ServerArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data)
        .with_context(|| format!("creating data directory {}", args.data.display()))?;
    let (root, source) = credentials::load_or_create(&args.data)?;

    let meta = RocksMetadataStore::open(&args.data.join("meta"))
        .context("opening metadata (is another cairn server using this data directory?)")?;
    let meta: Arc<dyn MetadataStore> = Arc::new(meta);
    let layout = resolve_layout(meta.as_ref(), &args).await?;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let cluster_secret = credentials::cluster_secret(&args.data)?;
    let dirs = (0..layout.datanodes)
        .map(|i| args.data.join("datanodes").join(format!("dn{i}")))
        .collect();
    let options = StoreOptions {
        segment_size: args.segment_size,
        ..StoreOptions::default()
    };
    // Each datanode serves the internal shard protocol on its own port; the gateway reaches
    // it over the network exactly as it will reach datanodes on other hosts.
    let datanodes = Arc::new(
        LocalDatanodes::open(
            dirs,
            args.datanode_listen,
            options,
            cluster_secret.clone(),
            Duration::from_secs(args.compaction_interval.max(1)),
            shutdown_rx.clone(),
        )
        .await?,
    );
    let mut nodes: BTreeMap<NodeId, Arc<dyn ShardStore>> = BTreeMap::new();
    let mut datanode_addrs = Vec::new();
    for i in 0..datanodes.len() {
        let addr = datanodes.addr(i).context("datanode address")?;
        nodes.insert(
            NodeId(i as u32),
            Arc::new(RemoteShardStore::new(
                &format!("http://{addr}"),
                cluster_secret.clone(),
            )),
        );
        datanode_addrs.push(addr);
    }

    if meta
        .get_access_key(&root.access_key)
        .await?
        .map(|k| k.secret_key)
        != Some(root.secret_key.clone())
    {
        meta.apply(Command::PutAccessKey(AccessKeyRecord {
            access_key: root.access_key.clone(),
            secret_key: root.secret_key.clone(),
            name: "root".into(),
            created_ms: time_ms(),
        }))
        .await?;
    }
    let keys = KeyRing::default();
    for k in meta.list_access_keys().await? {
        keys.insert(k.access_key, k.secret_key);
    }
    keys.insert(root.access_key.clone(), root.secret_key.clone());

    let objects = ObjectService::new(
        meta.clone(),
        nodes,
        ObjectsConfig {
            stripe_size: args.stripe_size,
            inline_threshold: args.inline_threshold,
            ec: layout.ec(),
            write_quorum: args.write_quorum,
            ..ObjectsConfig::default()
        },
    )
    .context("configuring the data path")?;
    if let Some(raw) = meta.get_sys(admin::DRAINED_KEY).await? {
        let ids: Vec<u32> = serde_json::from_slice(&raw).context("reading drained datanodes")?;
        objects
            .set_drained(ids.into_iter().map(NodeId).collect())
            .context("applying the drained datanodes")?;
    }
    let gc = tokio::spawn(objects.gc_worker().run(shutdown_rx.clone()));
    let healer = Healer::new(
        objects.clone(),
        HealConfig {
            scrub_interval: Duration::from_secs(args.scrub_interval),
            deep_interval: Duration::from_secs(args.deep_scrub_interval),
            auto_repair: !args.no_auto_repair,
            repair_rate: mb_per_sec(args.repair_rate),
            deep_rate: mb_per_sec(args.deep_scrub_rate),
            orphan_grace: Duration::from_secs(args.orphan_grace),
        },
    );
    let heal_task = tokio::spawn(healer.clone().run(shutdown_rx.clone()));

    let api_metrics = ApiMetrics::default();
    let mut registry = Registry::default();
    api_metrics.register(&mut registry);
    objects.metrics().register(&mut registry);
    healer.metrics().register(&mut registry);
    let state = Arc::new(ApiState {
        objects: objects.clone(),
        keys,
        region: args.region.clone(),
        metrics: api_metrics,
        domains: args.domain.clone(),
    });
    let s3 = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding the S3 address {}", args.listen))?;
    let admin_l = TcpListener::bind(args.admin_listen)
        .await
        .with_context(|| format!("binding the admin address {}", args.admin_listen))?;
    let s3_addr = s3.local_addr()?;
    let admin_addr = admin_l.local_addr()?;

    match source {
        Source::Environment => println!(
            "Root access key: {} (from the environment)",
            root.access_key
        ),
        Source::File => println!(
            "Root access key: {} (secret in {})",
            root.access_key,
            args.data.join(credentials::FILE_NAME).display()
        ),
        Source::Generated => {
            println!(
                "Generated root credentials (saved in {}):",
                args.data.join(credentials::FILE_NAME).display()
            );
            println!("  Access key: {}", root.access_key);
            println!("  Secret key: {}", root.secret_key);
        }
    }
    println!("S3 API listening on http://{s3_addr}");
    println!("Admin API listening on http://{admin_addr}");
    println!("Region: {}", args.region);
    println!(
        "Datanodes: {} local, erasure coding {}+{}",
        layout.datanodes, layout.ec_data, layout.ec_parity
    );
    for (i, addr) in datanode_addrs.iter().enumerate() {
        println!("Datanode dn{i} listening on http://{addr}");
    }

    let keyring = state.keys.clone();
    let s3_app = cairn_api::s3_router(state);
    let admin_app = admin::router(admin::AdminState::new(
        objects.clone(),
        datanodes.clone(),
        registry,
        admin::AdminCredentials {
            cluster_secret: cluster_secret.clone(),
            root_access_key: root.access_key.clone(),
            root_secret: root.secret_key.clone(),
        },
        keyring,
        healer,
        admin::console::ConsoleConfig {
            s3_endpoint: format!("http://{}", loopback(s3_addr)),
            s3_port: s3_addr.port(),
            public_s3_url: args.public_s3_url.clone(),
            region: args.region.clone(),
            root_access_key: root.access_key.clone(),
            sessions: admin::console::Sessions::new(
                &cluster_secret,
                args.console_session_secs as i64,
            ),
        },
    ));
    let s3_srv = axum::serve(
        s3.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        }),
        s3_app,
    )
    .with_graceful_shutdown(wait_for(shutdown_rx.clone()));
    let admin_srv = axum::serve(
        admin_l.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        }),
        admin_app,
    )
    .with_graceful_shutdown(wait_for(shutdown_rx.clone()));

    let signals = async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        let _ = shutdown_tx.send(true);
    };
    let (a, b, ()) = tokio::join!(async { s3_srv.await }, async { admin_srv.await }, signals);
    a?;
    b?;
    let _ = gc.await;
    let _ = heal_task.await;
    datanodes.join().await;
    tracing::info!("stopped");
    Ok(())
}

/// How many local datanodes and which erasure coding the data directory uses; saved in
/// metadata so that a restart without flags reuses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct DataLayout {
    datanodes: u32,
    ec_data: u8,
    ec_parity: u8,
}

impl DataLayout {
    fn ec(&self) -> EcScheme {
        EcScheme {
            data: self.ec_data,
            parity: self.ec_parity,
        }
    }
}

const LAYOUT_KEY: &str = "data-layout";
const DEFAULT_DATANODES: u32 = 6;
const DEFAULT_EC: EcScheme = EcScheme { data: 4, parity: 2 };

/// Flags win over the saved layout, which wins over the defaults. Datanodes can be added
/// (new objects use them) but not removed: their shards would become unreachable.
async fn resolve_layout(meta: &dyn MetadataStore, args: &ServerArgs) -> anyhow::Result<DataLayout> {
    let saved: Option<DataLayout> = match meta.get_sys(LAYOUT_KEY).await? {
        Some(v) => Some(serde_json::from_slice(&v).context("reading the saved data layout")?),
        None => None,
    };
    let datanodes = args
        .datanodes
        .or(saved.map(|s| s.datanodes))
        .unwrap_or(DEFAULT_DATANODES);
    let ec = args.ec.or(saved.map(|s| s.ec())).unwrap_or(DEFAULT_EC);
    if ec.data == 0 || ec.total() > datanodes as usize {
        anyhow::bail!(
            "erasure coding {}+{} needs at least {} datanodes, there are {datanodes}",
            ec.data,
            ec.parity,
            ec.total()
        );
    }
    if let Some(s) = saved {
        if datanodes < s.datanodes {
            anyhow::bail!(
                "this data directory has {} datanodes; removing datanodes (to {datanodes}) is not supported yet",
                s.datanodes
            );
        }
        if s.ec() != ec {
            tracing::info!(
                from = %format!("{}+{}", s.ec_data, s.ec_parity),
                to = %format!("{}+{}", ec.data, ec.parity),
                "erasure coding changed: applies to new writes; existing objects keep theirs"
            );
        }
    }
    let layout = DataLayout {
        datanodes,
        ec_data: ec.data,
        ec_parity: ec.parity,
    };
    if saved != Some(layout) {
        meta.apply(Command::SetSys {
            key: LAYOUT_KEY.into(),
            value: serde_json::to_vec(&layout)?,
        })
        .await?;
    }
    Ok(layout)
}

/// `addr` with an unspecified IP (0.0.0.0, ::) replaced by loopback, for calling ourselves.
fn loopback(addr: std::net::SocketAddr) -> std::net::SocketAddr {
    let mut a = addr;
    if a.ip().is_unspecified() {
        a.set_ip(match a {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    a
}

pub(crate) fn time_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

async fn wait_for(mut rx: watch::Receiver<bool>) {
    while !*rx.borrow() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
