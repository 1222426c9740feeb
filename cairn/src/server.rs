//! `cairn server`: opens metadata and the datanode under the data directory, starts the S3
//! and admin listeners and the background workers, and shuts down cleanly on SIGINT/SIGTERM.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context;
use cairn_api::{ApiMetrics, ApiState, KeyRing};
use std::time::Duration;

use cairn_datanode::{ShardStore, StoreOptions};
use cairn_heal::{HealConfig, Healer};
use cairn_metadata::{access_keys, cluster_state, AccessKeyRecord, Command, MetadataStore};
use cairn_metadata_raft::RaftMetadataStore;
use cairn_metadata_rocks::RocksMetadataStore;
use cairn_objects::{ObjectService, ObjectsConfig};
use cairn_types::clock::now_ms;
use cairn_types::{EcScheme, NodeId};
use cairn_worker::{Schedule, WorkerRegistry};
use prometheus_client::registry::Registry;
use tokio::sync::watch;

use crate::admin;
use crate::cli::server::{mb_per_sec, ServerArgs};
use crate::cluster;
use crate::credentials::{self, Source};
use crate::datanodes::LocalDatanodes;
use crate::in_flight;

pub async fn run(args: ServerArgs) -> anyhow::Result<()> {
    // Descriptors for every listener's connections, and the HTTPS certificate, first.
    crate::listeners::prepare_descriptors(&args);
    let https = crate::listeners::tls(&args)?;
    let scheme = if https.is_some() { "https" } else { "http" };
    // Mode 0700: the data directory holds the secrets, the metadata and the segment files.
    credentials::private_dir(&args.data)
        .with_context(|| format!("creating data directory {}", args.data.display()))?;
    let (root, source) = credentials::load_or_create(&args.data)?;
    let cluster_secret = credentials::cluster_secret(&args.data)?;

    // RocksDB makes its files with the process umask; the 0700 directories protect them.
    let meta_dir = args.data.join("meta");
    credentials::private_dir(&meta_dir)?;
    let local = RocksMetadataStore::open(&meta_dir).map_err(|e| {
        // RocksDB's LOCK file: the one failure that means another process has the directory.
        let hint = if e.to_string().contains("lock") {
            " (is another cairn server using this data directory?)"
        } else {
            ""
        };
        anyhow::Error::new(e).context(format!("opening metadata in {}{hint}", meta_dir.display()))
    })?;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    // Metadata is a Raft group (of one, unless nodes joined): start it, or join one.
    let cluster_config = args.cluster_config(crate::listeners::cluster(&args));
    let membership = cluster::start(
        &cluster_config,
        &local,
        &cluster_secret,
        shutdown_rx.clone(),
    )
    .await?;
    let raft = membership.node.clone();
    let meta: Arc<dyn MetadataStore> = Arc::new(RaftMetadataStore::new(raft.clone(), local));
    // The cluster CA in metadata, and this node's certificate from it.
    crate::retry::while_unavailable("setting up the cluster CA", || {
        crate::pki::setup::finish(meta.as_ref(), &cluster_config.setup, &membership.transport)
    })
    .await?;
    // One pool for the calls to every datanode of the cluster.
    let datanode_client = membership.transport.client(Default::default());
    let configured_root = root.access_key.clone();
    // A node restarted while the group has no quorum waits for one (up to the start
    // patience) instead of exiting: the fault campaign found such a node exit at once.
    let (root, source) = crate::retry::while_unavailable("reading the cluster's root key", || {
        cluster_root(meta.as_ref(), &args, root.clone(), source)
    })
    .await?;
    let ec = crate::retry::while_unavailable("reading the erasure-coding scheme", || {
        resolve_ec(meta.as_ref(), &args)
    })
    .await?;

    let registered: Vec<_> =
        crate::retry::while_unavailable("reading the datanode registry", || {
            cluster::datanodes(meta.as_ref())
        })
        .await?
        .into_iter()
        .filter(|r| r.node == args.node_id)
        .collect();
    // Slots of this node whose datanode was removed: their directories are left alone
    // until wiped.
    let removed: Vec<_> = crate::retry::while_unavailable("reading the removed datanodes", || {
        cluster::removed_datanodes(meta.as_ref())
    })
    .await?
    .into_iter()
    .filter(|r| r.node == args.node_id)
    .collect();
    let dirs: Vec<std::path::PathBuf> = if !args.roles.data {
        Vec::new()
    } else if !args.data_dirs.is_empty() {
        args.data_dirs.clone()
    } else {
        let slots = registered
            .iter()
            .map(|r| r.index)
            .chain(removed.iter().map(|r| r.index))
            .max();
        let n = args
            .datanodes
            .unwrap_or(slots.map_or(DEFAULT_DATANODES, |i| i + 1));
        (0..n)
            .map(|i| args.data.join("datanodes").join(format!("dn{i}")))
            .collect()
    };
    // Slots are positions in the directory list: a registered one past its end means a
    // directory was left out (and the later ones moved up into other datanodes' slots).
    if let Some(r) = registered.iter().find(|r| r.index as usize >= dirs.len()) {
        anyhow::bail!(
            "datanode {} of this node is directory number {} (from 0), but only {} directories are given; removing a datanode is `cairn admin drain-datanode`, `cairn repair`, then `cairn admin remove-datanode`, and its directory keeps its place in the list",
            r.id,
            r.index,
            dirs.len()
        );
    }
    if dirs.len() < registered.len() {
        anyhow::bail!(
            "this node has {} datanodes; removing datanodes (to {}) is not supported yet",
            registered.len(),
            dirs.len()
        );
    }
    // Which directories belong to removed datanodes: marked so, or not wiped since their
    // slot's datanode was removed (a wiped one registers as a new datanode).
    let retired: Vec<bool> = dirs
        .iter()
        .enumerate()
        .map(|(i, dir)| {
            crate::datanodes::is_marked_removed(dir)
                || (!crate::datanodes::is_fresh(dir) && removed.iter().any(|r| r.index == i as u32))
        })
        .collect();
    // Every background job is a worker listed here (for `cairn status` and the console).
    let workers = WorkerRegistry::new();
    let compaction = workers.register(
        "compaction",
        "frees the disk space of deleted shards in this node's datanodes",
    )?;
    let options = StoreOptions {
        segment_size: args.segment_size,
        ..StoreOptions::default()
    };
    // Each datanode serves the internal shard protocol on its own port; every gateway reaches
    // it over the network, from this host or another.
    let datanodes = Arc::new(
        LocalDatanodes::open(
            dirs,
            args.datanode_listen,
            options,
            membership.transport.clone(),
            crate::listeners::datanode(&args),
            crate::datanodes::CompactionJob {
                interval: Duration::from_secs(args.compaction_interval.max(1)),
                worker: compaction,
            },
            shutdown_rx.clone(),
        )
        .await?,
    );
    let datanode_host = if args.datanode_listen.is_unspecified() {
        cluster::advertise_host(&cluster_config)
    } else {
        args.datanode_listen.to_string()
    };
    let mut datanode_addrs = Vec::new();
    for i in (0..datanodes.len()).filter(|i| !retired[*i]) {
        let addr = datanodes.addr(i).context("datanode address")?;
        datanode_addrs.push((i as u32, format!("{datanode_host}:{}", addr.port())));
    }
    // Registering is idempotent (a datanode's slot keeps its id), so it is repeated after an
    // unknown outcome as well.
    let registered_ids = crate::retry::while_unsettled("registering the datanodes", || {
        cluster::register_datanodes(meta.as_ref(), args.node_id, &args.zone, &datanode_addrs)
    })
    .await?;
    let mut ids = vec![u32::MAX; datanodes.len()];
    for ((i, _), id) in datanode_addrs.iter().zip(&registered_ids) {
        ids[*i as usize] = *id;
    }
    datanodes.set_ids(ids.clone());
    for (i, _) in retired.iter().enumerate().filter(|(_, r)| **r) {
        datanodes.retire(i).await?;
    }

    let records = crate::retry::while_unavailable("reading the datanode registry", || {
        cluster::datanodes(meta.as_ref())
    })
    .await?;
    let alone = raft.status().members.len() == 1;
    if alone && args.data_dirs.is_empty() && ec.total() > records.len() {
        anyhow::bail!(
            "erasure coding {}+{} needs at least {} datanodes, there are {}",
            ec.data,
            ec.parity,
            ec.total(),
            records.len()
        );
    }
    if ec.total() > records.len() {
        tracing::warn!(
            "erasure coding {}+{} needs {} datanodes and {} are registered: objects over the inline size get 503 until more nodes join",
            ec.data,
            ec.parity,
            ec.total(),
            records.len()
        );
    }
    let connector = cluster::Connector {
        client: datanode_client,
        local: datanodes.clone(),
    };
    let nodes: BTreeMap<NodeId, Arc<dyn ShardStore>> = records
        .iter()
        .map(|r| (NodeId(r.id), connector.store(r)))
        .collect();
    let topology = cluster::topology(&records);

    // Every key, the disabled ones and the root key come from metadata (the root key was
    // stored there by `cluster_root`); the cluster watcher keeps the ring current.
    let keys = KeyRing::default();
    let started = keys.generation();
    let stored_keys = crate::retry::while_unavailable("reading the access keys", || {
        cluster::read_keys(meta.as_ref())
    })
    .await?;
    keys.sync(&stored_keys, started);

    let objects = ObjectService::new(
        meta.clone(),
        nodes.clone(),
        ObjectsConfig {
            stripe_size: args.stripe_size,
            inline_threshold: args.inline_threshold,
            ec,
            write_quorum: args.write_quorum,
            allow_fewer_datanodes: true,
            ..ObjectsConfig::default()
        },
    )
    .context("configuring the data path")?;
    objects.membership().set_nodes(nodes, topology);
    let _ = membership.in_flight.set(objects.clone());
    let drained = crate::retry::while_unavailable("reading the drained datanodes", || async {
        cluster_state::drained(meta.as_ref())
            .await
            .context("reading drained datanodes")
    })
    .await?;
    // Only datanodes still registered (a removal may have raced with a drain elsewhere).
    let drained: std::collections::BTreeSet<NodeId> = drained
        .into_iter()
        .filter(|n| records.iter().any(|r| r.id == n.0))
        .collect();
    if !drained.is_empty() {
        objects
            .membership()
            .set_drained(drained)
            .context("applying the drained datanodes")?;
    }
    let classes = crate::retry::while_unavailable("reading the storage classes", || async {
        cairn_metadata::storage_class::defined(meta.as_ref())
            .await
            .context("reading the storage classes")
    })
    .await?;
    objects.set_storage_classes(classes);
    let kek = master_kek(&args, &cluster_secret)?;
    let master_keys = crate::retry::while_unavailable("loading the master keys", || async {
        objects
            .load_keyring(kek.clone())
            .await
            .context("loading the master keys of encryption at rest")
    })
    .await?;
    tracing::info!(?master_keys, "encryption at rest: master keys loaded");
    // A rotation this or another node did not finish carries on.
    crate::admin::master_keys::spawn_rewrap(objects.clone());
    let view = Arc::new(cluster::ClusterView::default());
    let watcher = tokio::spawn(cluster::watch_cluster(
        objects.clone(),
        records.clone(),
        keys.clone(),
        view.clone(),
        connector.clone(),
        Duration::from_secs_f64(args.heartbeat_secs.max(0.05)),
        workers.register(
            "cluster-watcher",
            "keeps the ring, down datanodes, drained list and access keys current",
        )?,
        shutdown_rx.clone(),
    ));
    // Garbage collection and scheduled scrubs run once per cluster: on the leader.
    let leading = raft.leadership();
    let gc = tokio::spawn(objects.gc_worker().run(
        workers.register(
            "gc",
            "deletes the shards of deleted and overwritten objects",
        )?,
        Some(leading.clone()),
        shutdown_rx.clone(),
    ));
    // Lifecycle rules run once per cluster too: on the leader, continuing a run a previous
    // leader left unfinished.
    let lifecycle_period = match args.lifecycle_day_secs {
        0 => Duration::from_secs(args.lifecycle_interval.max(1)),
        day => Duration::from_millis((day * 1000 / 4).clamp(200, 1000)),
    };
    let lifecycle_job = cairn_lifecycle::LifecycleJob::new(
        objects.clone(),
        cairn_lifecycle::DayLength::secs(args.lifecycle_day_secs),
        args.lifecycle_rate,
    )
    .while_leading(leading.clone());
    let lifecycle_stats = lifecycle_job.stats();
    let lifecycle = tokio::spawn(
        workers
            .register(
                "lifecycle",
                "expires objects, removes noncurrent versions and aborts old uploads as bucket lifecycle rules say",
            )?
            .run(
                lifecycle_job,
                Schedule::every(lifecycle_period)
                    .at_start()
                    .gated(leading.clone(), "only the metadata leader runs lifecycle rules"),
                shutdown_rx.clone(),
            ),
    );
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
    healer.set_peer_in_flight(Arc::new(in_flight::ClusterInFlight::new(
        raft.clone(),
        meta.clone(),
        &membership.transport,
    )));
    for w in healer.workers() {
        workers.add(w)?;
    }
    let heal_task = tokio::spawn(healer.clone().run_while(leading, shutdown_rx.clone()));

    let api_metrics = ApiMetrics::default();
    let mut registry = Registry::default();
    api_metrics.register(&mut registry);
    objects.metrics().register(&mut registry);
    healer.metrics().register(&mut registry);
    lifecycle_stats.register(&mut registry);
    cairn_net::NetMetrics::global().register(&mut registry);
    let body_budget = cairn_api::budget::BodyBudget::new(
        args.max_inflight_bytes,
        objects.write_working_set(),
        api_metrics.body_budget_refused.clone(),
        api_metrics.body_budget_reserved.clone(),
    )
    .with_wait(
        std::time::Duration::from_secs_f64(args.max_inflight_wait),
        api_metrics.body_budget_waiting.clone(),
    );
    let limits = cairn_api::limits::RateLimiter::new(
        cairn_api::limits::RateLimitConfig {
            key_ops_per_sec: args.key_ops_per_sec,
            key_bytes_per_sec: args.key_bytes_per_sec,
            ip_ops_per_sec: args.ip_ops_per_sec,
            ip_bytes_per_sec: args.ip_bytes_per_sec,
        },
        keys.clone(),
    );
    let state = Arc::new(ApiState {
        objects: objects.clone(),
        keys,
        region: args.region.clone(),
        metrics: api_metrics,
        domains: args.domain.clone(),
        body_budget,
        limits,
        secure_transport: https.is_some(),
        policies: Default::default(),
        encryption: cairn_api::sse::EncryptionConfig {
            default_managed: args.default_encryption == "sse-s3",
            allow_insecure_sse_c: args.allow_insecure_sse_c,
        },
    });
    let s3 = if args.roles.gateway {
        Some(
            cairn_net::bind(args.listen)
                .with_context(|| format!("binding the S3 address {}", args.listen))?,
        )
    } else {
        None
    };
    let admin_l = cairn_net::bind(args.admin_listen)
        .with_context(|| format!("binding the admin address {}", args.admin_listen))?;
    let s3_addr = match &s3 {
        Some(l) => l.local_addr()?,
        None => args.listen,
    };
    let admin_addr = admin_l.local_addr()?;

    let node_record = cluster::NodeRecord {
        id: args.node_id,
        roles: args.roles.to_string(),
        cluster_addr: membership.addr.clone(),
        admin_addr: cluster::advertised(&cluster_config, admin_addr),
        s3_addr: s3
            .as_ref()
            .map(|_| cluster::advertised(&cluster_config, s3_addr)),
        zone: args.zone.clone(),
        started_ms: now_ms(),
    };
    // Recording this node overwrites its own record: idempotent.
    crate::retry::while_unsettled("recording this node", || {
        cluster::record_node(meta.as_ref(), &node_record)
    })
    .await?;

    match source {
        Source::Environment if configured_root == root.access_key => println!(
            "Root access key: {} (from the environment)",
            root.access_key
        ),
        Source::Environment => println!(
            "Root access key: {} (the cluster's; CAIRN_ROOT_ACCESS_KEY names {configured_root}, which is not the root key)",
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
    if s3.is_some() {
        println!("S3 API listening on {scheme}://{s3_addr}");
    }
    println!("Admin API listening on {scheme}://{admin_addr}");
    println!(
        "Cluster listener on {} (node {}, roles {})",
        membership.addr, args.node_id, args.roles
    );
    println!("Region: {}", args.region);
    println!(
        "Datanodes: {} local, {} in the cluster, erasure coding {}+{}",
        datanode_addrs.len(),
        records.len(),
        ec.data,
        ec.parity
    );
    for ((_, addr), id) in datanode_addrs.iter().zip(&registered_ids) {
        println!("Datanode dn{id} listening on http://{addr}");
    }
    if alone && args.join.is_none() {
        println!(
            "To add a node: CAIRN_CLUSTER_SECRET=$(cat {}) cairn server --node-id 2 --join {}",
            args.data.join("cluster-secret").display(),
            membership.addr
        );
    }

    let keyring = state.keys.clone();
    let s3_app = cairn_api::s3_router(state);
    let admin_app = admin::router(
        admin::AdminState::new(
            objects.clone(),
            datanodes.clone(),
            registry,
            admin::AdminCredentials {
                cluster_secret: cluster_secret.clone(),
            },
            keyring,
            healer,
            admin::console::ConsoleConfig {
                s3_endpoint: format!("{scheme}://{}", loopback(s3_addr)),
                s3_port: s3_addr.port(),
                public_s3_url: args.public_s3_url.clone(),
                region: args.region.clone(),
                sessions: admin::console::Sessions::new(
                    &cluster_secret,
                    i64::try_from(args.console_session_secs).unwrap_or(i64::MAX),
                )
                .secure(https.is_some()),
                s3_https: https
                    .as_ref()
                    .map(crate::loopback_tls::LoopbackHttps::client)
                    .transpose()?,
            },
        )
        .with_cluster(admin::ClusterInfo {
            raft: raft.clone(),
            view,
            roles: args.roles,
        })
        .with_workers(workers),
    );
    let s3_shutdown = shutdown_rx.clone();
    let https: Option<Arc<dyn cairn_net::TlsSource>> = https.map(|t| t as _);
    let (s3_limits, s3_tls) = (crate::listeners::s3(&args), https.clone());
    let s3_srv = async move {
        match s3 {
            Some(s3) => {
                let stop = wait_for(s3_shutdown);
                cairn_net::serve(s3, "s3", s3_app, s3_limits, s3_tls, stop).await
            }
            None => {
                wait_for(s3_shutdown).await;
                Ok(())
            }
        }
    };
    let admin_srv = cairn_net::serve(
        admin_l,
        "admin",
        admin_app,
        crate::listeners::admin(&args),
        https,
        wait_for(shutdown_rx.clone()),
    );

    let signals = async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        let _ = shutdown_tx.send(true);
    };
    let (a, b, ()) = tokio::join!(s3_srv, admin_srv, signals);
    a?;
    b?;
    let _ = gc.await;
    let _ = lifecycle.await;
    let _ = heal_task.await;
    let _ = watcher.await;
    datanodes.join().await;
    raft.shutdown().await;
    let _ = membership.listener.await;
    tracing::info!("stopped");
    Ok(())
}

const DEFAULT_DATANODES: u32 = 6;
const DEFAULT_EC: EcScheme = EcScheme { data: 4, parity: 2 };

/// The erasure coding of new writes, cluster-wide: the flag wins (and is saved for every
/// node), then the saved scheme, then 4+2.
async fn resolve_ec(meta: &dyn MetadataStore, args: &ServerArgs) -> anyhow::Result<EcScheme> {
    let saved = cluster_state::ec_scheme(meta)
        .await
        .context("reading the saved erasure coding")?;
    let ec = args.ec.or(saved).unwrap_or(DEFAULT_EC);
    if ec.data == 0 {
        anyhow::bail!("erasure coding needs at least one data shard");
    }
    if let Some(s) = saved {
        if s != ec {
            tracing::info!(
                from = %format!("{}+{}", s.data, s.parity),
                to = %format!("{}+{}", ec.data, ec.parity),
                "erasure coding changed: applies to new writes; existing objects keep theirs"
            );
        }
    }
    if saved != Some(ec) {
        meta.apply(Command::SetEcScheme(ec)).await?;
    }
    Ok(ec)
}

/// One root key per cluster, recorded in metadata (`sys/root-access-key`, see
/// [`access_keys`]): the first node records its configured key; after that metadata is what
/// says which key is the root, and `cairn key rotate-root` is what changes it. The configured
/// credentials (`CAIRN_ROOT_*`, else `root-credentials.json`, else generated) only matter
/// when they name the cluster's root key (their secret then replaces the stored one: the
/// operator changed it). Otherwise:
///
/// - generated ones (a node joining) are replaced by the cluster's root key, saved in the
///   data directory;
/// - a key the cluster deleted is never brought back (its id is dead for good): a node
///   restarted with the old root key in `CAIRN_ROOT_*` after a rotation and deletion says so
///   and runs with the cluster's root key; so does a key the cluster still has but that is
///   not the root any more (the old root key after a rotation) — it is left as it is, an
///   ordinary key. `root-credentials.json` is rewritten with the cluster's root key then (it
///   is Cairn's own copy);
/// - a key the cluster has never seen is added as an ordinary, extra key (as before
///   rotations existed), not as the root key.
async fn cluster_root(
    meta: &dyn MetadataStore,
    args: &ServerArgs,
    root: credentials::RootCredentials,
    source: Source,
) -> anyhow::Result<(credentials::RootCredentials, Source)> {
    let recorded = cluster_state::root_key(meta).await?;
    let Some(ak) = recorded else {
        // A new cluster: this node's key is its root key.
        store_key(meta, &root, "root").await?;
        meta.apply(Command::DesignateRootKey {
            access_key: root.access_key.clone(),
        })
        .await?;
        return Ok((root, source));
    };
    if ak == root.access_key {
        store_key(meta, &root, "root").await?;
        return Ok((root, source));
    }
    let rec = meta
        .get_access_key(&ak)
        .await?
        .context("the cluster's root key is missing from metadata")?;
    let cluster = credentials::RootCredentials {
        access_key: rec.access_key,
        secret_key: rec.secret_key,
    };
    let configured = root.access_key.as_str();
    let deleted = meta
        .get_sys(&access_keys::deleted_key(configured))
        .await?
        .is_some();
    let known = meta.get_access_key(configured).await?.is_some();
    let adopt = match source {
        Source::Generated => true,
        Source::File => deleted || known,
        Source::Environment => false,
    };
    if adopt {
        credentials::save(&args.data, &cluster)?;
        if !matches!(source, Source::Generated) {
            tracing::warn!(
                configured,
                root = %cluster.access_key,
                "the key in root-credentials.json is no longer the cluster's root key (it was \
                 rotated); the file now holds the cluster's root key"
            );
        }
        tracing::info!(access_key = %cluster.access_key, "adopted the cluster's root key");
        return Ok((cluster, Source::File));
    }
    if deleted {
        tracing::warn!(
            configured,
            root = %cluster.access_key,
            "CAIRN_ROOT_ACCESS_KEY names a key that was deleted from the cluster: it is not \
             brought back; update CAIRN_ROOT_ACCESS_KEY/CAIRN_ROOT_SECRET_KEY to the root key"
        );
    } else if known {
        tracing::warn!(
            configured,
            root = %cluster.access_key,
            "CAIRN_ROOT_ACCESS_KEY names a key that is not the cluster's root key any more \
             (rotated): it stays an ordinary key; update CAIRN_ROOT_ACCESS_KEY/CAIRN_ROOT_SECRET_KEY"
        );
    } else {
        store_key(meta, &root, "root").await?;
        tracing::warn!(
            configured,
            root = %cluster.access_key,
            "the configured root key is not the cluster's root key: added as an ordinary key"
        );
    }
    Ok((cluster, source))
}

/// Stores `creds` as an access key named `name` unless metadata has it with this secret.
async fn store_key(
    meta: &dyn MetadataStore,
    creds: &credentials::RootCredentials,
    name: &str,
) -> anyhow::Result<()> {
    let stored = meta.get_access_key(&creds.access_key).await?;
    if stored.map(|k| k.secret_key).as_deref() == Some(creds.secret_key.as_str()) {
        return Ok(());
    }
    meta.apply(Command::PutAccessKey(AccessKeyRecord {
        access_key: creds.access_key.clone(),
        secret_key: creds.secret_key.clone(),
        name: name.into(),
        created_ms: now_ms(),
    }))
    .await
    .with_context(|| format!("storing access key {}", creds.access_key))?;
    Ok(())
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

/// The key-encryption key of this node's master keys: `CAIRN_MASTER_KEY` (hex), the
/// `--master-key-file`, or one derived from the cluster secret.
fn master_kek(args: &ServerArgs, cluster_secret: &str) -> anyhow::Result<cairn_objects::Kek> {
    if let Ok(hex) = std::env::var("CAIRN_MASTER_KEY") {
        return cairn_objects::Kek::from_hex(&hex).context("CAIRN_MASTER_KEY");
    }
    match &args.master_key_file {
        Some(path) => cairn_objects::Kek::from_file(path).context("--master-key-file"),
        None => Ok(cairn_objects::Kek::derive(cluster_secret)),
    }
}
