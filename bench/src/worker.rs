//! A worker of a benchmark: its connection (to the endpoint it is assigned), the prepared
//! objects it owns and the pool buffer each holds, and one operation of the workload.
//!
//! Worker `i` of `c` uses endpoint `i % n` of the `n` endpoints ([`endpoint_of`]) and owns
//! the prepared objects `i`, `i + c`, `i + 2c`... It uploads, reads, overwrites and deletes
//! them through its own connection, so GETs can be checked and mixed workloads never race on
//! a key.

use std::sync::Arc;
use std::time::Duration;

use crate::args::{Mix, Op};
use crate::payload::{Pool, Rng};
use crate::s3::{Conn, Done, OpError, Target};

/// The endpoint (an index into the `n` endpoints) that worker `worker` uses.
pub fn endpoint_of(worker: usize, n: usize) -> usize {
    worker % n.max(1)
}

/// How many of `concurrency` workers use each of `n` endpoints (`4` over `3`: `[2, 1, 1]`).
pub fn workers_per_endpoint(concurrency: usize, n: usize) -> Vec<usize> {
    let mut counts = vec![0; n.max(1)];
    for w in 0..concurrency {
        counts[endpoint_of(w, n)] += 1;
    }
    counts
}

/// `concurrency` workers over `targets` (worker `i` on `targets[endpoint_of(i, n)]`), each
/// owning every `concurrency`-th of the `objects` prepared objects from its own index on.
pub(crate) fn workers(targets: &[Arc<Target>], concurrency: usize, objects: usize) -> Vec<Worker> {
    (0..concurrency)
        .map(|id| Worker {
            id,
            conn: Conn::new(targets[endpoint_of(id, targets.len())].clone()),
            rng: Rng::new(Rng::from_entropy().next_u64() ^ ((id as u64 + 1) * 0x9E37)),
            slots: (id..objects)
                .step_by(concurrency)
                .map(|index| Slot { index, buf: None })
                .collect(),
            present: Vec::new(),
            puts: 0,
            list_token: None,
        })
        .collect()
}

/// What a benchmark needs that is the same for every worker.
pub(crate) struct Env {
    pub op: Op,
    pub mix: Mix,
    pub bucket: String,
    pub prefix: String,
    pub list_page: usize,
    /// `--list-prefix`: list this instead of the benchmark's own objects.
    pub list_prefix: Option<String>,
    pub timeout: Duration,
    pub pool: Pool,
}

/// The name of the operation a (non-mixed) workload runs.
fn kind_of(op: Op) -> &'static str {
    match op {
        Op::Put => "put",
        Op::Mixed => "mixed",
        Op::Get => "get",
        Op::List => "list",
        Op::Delete => "delete",
    }
}

impl Env {
    fn object_key(&self, index: usize) -> String {
        format!("{}obj/{index:08}", self.prefix)
    }
}

/// A prepared object a worker owns: its index and the pool buffer it holds (none: absent).
#[derive(Clone, Copy)]
struct Slot {
    index: usize,
    buf: Option<usize>,
}

pub(crate) struct Worker {
    id: usize,
    conn: Conn,
    rng: Rng,
    slots: Vec<Slot>,
    /// Positions in `slots` of the objects that exist.
    present: Vec<usize>,
    puts: u64,
    list_token: Option<String>,
}

impl Worker {
    /// Uploads every absent object of this worker (uncounted).
    pub async fn prepare(&mut self, env: &Env) -> Result<(), OpError> {
        for pos in 0..self.slots.len() {
            if self.slots[pos].buf.is_some() {
                continue;
            }
            let index = self.slots[pos].index;
            let buf = index % env.pool.len();
            let key = env.object_key(index);
            let mut tries = 0;
            loop {
                match self
                    .conn
                    .put(&env.bucket, &key, &env.pool.buffers[buf])
                    .await
                {
                    Ok(_) => break,
                    Err(e) if tries < 3 => {
                        tries += 1;
                        let _ = e;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(e) => return Err(OpError(format!("preparing {key}: {e}"))),
                }
            }
            self.slots[pos].buf = Some(buf);
            self.present.push(pos);
        }
        Ok(())
    }

    /// One operation of the workload and its kind, within `env.timeout`. `Ok(None)`:
    /// nothing left to do (delete ran out).
    pub async fn op(&mut self, env: &Env) -> (&'static str, Result<Option<Done>, OpError>) {
        match tokio::time::timeout(env.timeout, self.op_untimed(env)).await {
            Ok(r) => r,
            Err(_) => {
                self.conn.reset();
                (kind_of(env.op), Err(OpError("timeout".into())))
            }
        }
    }

    async fn op_untimed(&mut self, env: &Env) -> (&'static str, Result<Option<Done>, OpError>) {
        match env.op {
            Op::Put => ("put", self.put_new(env).await.map(Some)),
            Op::Get => ("get", self.get(env).await.map(Some)),
            Op::List => ("list", self.list(env).await.map(Some)),
            Op::Delete => ("delete", self.delete(env).await),
            Op::Mixed => {
                let roll = self.rng.below(100) as u32;
                if roll < env.mix.get && !self.present.is_empty() {
                    ("get", self.get(env).await.map(Some))
                } else if roll < env.mix.get + env.mix.delete && !self.present.is_empty() {
                    ("delete", self.delete(env).await)
                } else {
                    ("put", self.put_slot(env).await.map(Some))
                }
            }
        }
    }

    async fn put_new(&mut self, env: &Env) -> Result<Done, OpError> {
        self.puts += 1;
        let key = format!("{}put/{}-{}", env.prefix, self.id, self.puts);
        let buf = (self.puts as usize + self.id) % env.pool.len();
        self.conn
            .put(&env.bucket, &key, &env.pool.buffers[buf])
            .await
    }

    /// PUT over a random owned object (mixed), with a random buffer.
    async fn put_slot(&mut self, env: &Env) -> Result<Done, OpError> {
        if self.slots.is_empty() {
            return self.put_new(env).await;
        }
        let pos = self.rng.below(self.slots.len());
        let buf = self.rng.below(env.pool.len());
        let key = env.object_key(self.slots[pos].index);
        let was = self.slots[pos].buf;
        // Until the answer the object's content is unknown: forget it, then record it.
        if was.is_some() {
            self.present.retain(|p| *p != pos);
        }
        self.slots[pos].buf = None;
        let done = self
            .conn
            .put(&env.bucket, &key, &env.pool.buffers[buf])
            .await?;
        self.slots[pos].buf = Some(buf);
        self.present.push(pos);
        Ok(done)
    }

    async fn get(&mut self, env: &Env) -> Result<Done, OpError> {
        if self.present.is_empty() {
            return Err(OpError("no object to read".into()));
        }
        let pos = self.present[self.rng.below(self.present.len())];
        let slot = self.slots[pos];
        let buf = &env.pool.buffers[slot.buf.expect("present")];
        let key = env.object_key(slot.index);
        self.conn
            .get(&env.bucket, &key, buf.data.len() as u64, buf.crc32c)
            .await
    }

    async fn delete(&mut self, env: &Env) -> Result<Option<Done>, OpError> {
        if self.present.is_empty() {
            return Ok(None);
        }
        let i = self.rng.below(self.present.len());
        let pos = self.present.swap_remove(i);
        self.slots[pos].buf = None;
        let key = env.object_key(self.slots[pos].index);
        self.conn.delete(&env.bucket, &key).await.map(Some)
    }

    async fn list(&mut self, env: &Env) -> Result<Done, OpError> {
        let prefix = match &env.list_prefix {
            Some(p) => p.clone(),
            None => format!("{}obj/", env.prefix),
        };
        let token = self.list_token.take();
        let page = self
            .conn
            .list_page(&env.bucket, &prefix, env.list_page, token.as_deref())
            .await?;
        self.list_token = page.next;
        // An empty page means nothing is there to list: not a fast listing.
        if page.keys.is_empty() {
            return Err(OpError("empty listing".into()));
        }
        Ok(Done {
            bytes: 0,
            items: page.keys.len() as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::Payload;

    #[test]
    fn workers_spread_over_endpoints() {
        assert_eq!(workers_per_endpoint(4, 3), [2, 1, 1]);
        assert_eq!(workers_per_endpoint(8, 1), [8]);
        assert_eq!(workers_per_endpoint(2, 3), [1, 1, 0]);
        assert_eq!(workers_per_endpoint(6, 2), [3, 3]);

        let targets: Vec<Arc<Target>> = (0..3)
            .map(|i| {
                let endpoint = format!("http://127.0.0.1:{}", 9000 + 100 * i);
                let t = Target::new(&endpoint, false, None, "us-east-1", Payload::Unsigned);
                Arc::new(t.unwrap())
            })
            .collect();
        let ws = workers(&targets, 4, 10);
        let used: Vec<String> = ws.iter().map(|w| w.conn.target().endpoint()).collect();
        assert_eq!(
            used,
            [
                "http://127.0.0.1:9000",
                "http://127.0.0.1:9100",
                "http://127.0.0.1:9200",
                "http://127.0.0.1:9000",
            ]
        );
        assert!(ws
            .iter()
            .all(|w| Arc::ptr_eq(w.conn.target(), &targets[w.id % 3])));
        // Each object is owned by exactly one worker: object i by worker i % 4.
        let owned: Vec<Vec<usize>> = ws
            .iter()
            .map(|w| w.slots.iter().map(|s| s.index).collect())
            .collect();
        assert_eq!(
            owned,
            [vec![0, 4, 8], vec![1, 5, 9], vec![2, 6], vec![3, 7]]
        );
    }
}
