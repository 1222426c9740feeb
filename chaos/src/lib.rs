//! Fault campaigns against a real five-node Cairn cluster: each node in its own network
//! namespace, a nemesis that partitions, kills, pauses, skews clocks, loses packets, slows
//! links and changes membership while clients read and write through every gateway, and
//! checkers that judge the recorded history (linearizability per key, listings, byte-exact
//! reads, no lost acknowledged write, no write accepted by a minority, a clean deep scrub
//! after healing). `scripts/chaos.sh` runs it; `docs/chaos.md` explains it.

pub mod checks;
pub mod cluster;
pub mod history;
pub mod linear;
pub mod nemesis;
pub mod net;
pub mod run;
pub mod workload;
