//! The metadata conformance suite on Raft: a single-node group, and a three-node group whose
//! every command and read goes through a follower (forwarded writes, read-index reads).

use std::sync::Mutex;

use async_trait::async_trait;
use cairn_metadata::testing::{run_conformance, StoreFactory};

use super::*;

/// A running group and its directories.
type Running = Option<(Vec<TestNode>, Vec<tempfile::TempDir>)>;

/// Makes a fresh group of `size` nodes per case and stops the previous one.
struct Groups {
    size: usize,
    /// The running group and its directories.
    current: Arc<Mutex<Running>>,
}

impl Groups {
    async fn stop_current(current: &Mutex<Running>) {
        let old = current.lock().unwrap().take();
        if let Some((nodes, _dirs)) = old {
            for n in nodes {
                n.stop().await;
            }
        }
    }
}

#[async_trait]
impl StoreFactory for Groups {
    async fn fresh(&mut self) -> Arc<dyn MetadataStore> {
        Groups::stop_current(&self.current).await;
        let dirs = tempdirs(self.size);
        let nodes = if self.size == 1 {
            let n = start(1, dirs[0].path(), 0, 10_000).await;
            n.node.bootstrap().await.unwrap();
            assert!(n.node.wait_for_leader(Duration::from_secs(5)).await);
            vec![n]
        } else {
            three(&dirs, 10_000).await
        };
        let store: Arc<dyn MetadataStore> = if self.size == 1 {
            Arc::new(nodes[0].meta.clone())
        } else {
            // A follower that knows all three voters and the leader.
            let follower = &nodes[2];
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let st = follower.node.status();
                let voters = st.members.iter().filter(|m| m.voter).count();
                if voters == 3 && st.leader.is_some() && st.leader != Some(st.id) {
                    break;
                }
                assert!(Instant::now() < deadline, "{st:?}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Arc::new(follower.meta.clone())
        };
        *self.current.lock().unwrap() = Some((nodes, dirs));
        store
    }
}

async fn run(size: usize) {
    let current = Arc::new(Mutex::new(None));
    let cases = run_conformance(Groups {
        size,
        current: current.clone(),
    })
    .await;
    Groups::stop_current(&current).await;
    assert!(cases >= 50, "{cases} cases");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_single_node_passes_the_conformance_suite() {
    run(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_pass_the_conformance_suite_through_a_follower() {
    run(3).await;
}
