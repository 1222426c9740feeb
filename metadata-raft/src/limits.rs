//! How big the cluster listener's messages can be, and the caps that keep them so.
//!
//! Every route of [`super::service`] reads its body under a limit derived here from what
//! this node's peers can send it:
//!
//! - a command is at most [`MAX_COMMAND_BYTES`] encoded ([`check_command`] refuses bigger
//!   ones before they are proposed or forwarded);
//! - a Raft entry carries the commands that were waiting together, at most
//!   [`MAX_BATCH_BYTES`] of them (one bigger command goes alone); so does one forwarded
//!   write batch ([`take_batch`]);
//! - one append-entries message carries at most `max_payload_entries` entries and at most
//!   [`MAX_APPEND_BYTES`] of them (one bigger entry goes alone: see the log reader's
//!   `limited_get_log_entries`);
//! - a snapshot travels in chunks of [`SNAPSHOT_CHUNK_BYTES`] (openraft's chunked transport,
//!   `Config::snapshot_max_chunk_size`).
//!
//! Each route's limit is that payload plus [`ENVELOPE_BYTES`] for the rest of the message.

use serde::Serialize;

use cairn_metadata::command::Command;
use cairn_metadata::{MetadataError, Result};

/// The largest command, encoded. The biggest legitimate ones: an object or part record of a
/// 5 GiB body (one stripe location per stripe: about 100 KiB with 4 MiB stripes, 6.5 MiB
/// with 64 KiB stripes), a completion listing 10,000 parts (about 1 MiB), an inline body
/// (below the inline threshold, 64 KiB by default).
pub const MAX_COMMAND_BYTES: usize = 16 << 20;

/// Commands proposed as one entry, or forwarded to the leader in one call: at most this many
/// bytes together (a single command up to [`MAX_COMMAND_BYTES`] always goes, alone).
pub const MAX_BATCH_BYTES: usize = 16 << 20;

/// Entries sent in one append-entries message: at most this many bytes together (a single
/// bigger entry goes alone).
pub const MAX_APPEND_BYTES: usize = 16 << 20;

/// Snapshot bytes in one install-snapshot message (openraft's `snapshot_max_chunk_size`).
pub const SNAPSHOT_CHUNK_BYTES: usize = 4 << 20;

/// Room for what a message holds besides its entries, commands or snapshot chunk: vote, log
/// ids, offsets, and a snapshot's membership (node ids and addresses; about 300 bytes a node).
pub const ENVELOPE_BYTES: usize = 256 << 10;

/// A Raft entry's own encoding around its commands (log id, payload tag, length).
const ENTRY_OVERHEAD_BYTES: usize = 64;

/// Body limit of `/raft/append`.
pub const APPEND_LIMIT: usize =
    max(MAX_APPEND_BYTES, MAX_BATCH_BYTES + ENTRY_OVERHEAD_BYTES) + ENVELOPE_BYTES;
/// Body limit of `/raft/write-batch`.
pub const WRITE_BATCH_LIMIT: usize = MAX_BATCH_BYTES + ENVELOPE_BYTES;
/// Body limit of `/raft/snapshot`.
pub const SNAPSHOT_LIMIT: usize = SNAPSHOT_CHUNK_BYTES + ENVELOPE_BYTES;
/// Body limit of the small messages: a vote request (a vote and a log id), a read-index
/// request (empty), a join (an id and an address) or a removal (an id).
pub const SMALL_LIMIT: usize = 4 << 10;

// Every limit covers its largest message: an append of entries up to the cap or of one
// maximal entry alone; a command always fits in a batch.
const _: () = assert!(MAX_COMMAND_BYTES <= MAX_BATCH_BYTES);
const _: () = assert!(APPEND_LIMIT >= MAX_BATCH_BYTES + ENTRY_OVERHEAD_BYTES + ENVELOPE_BYTES);

const fn max(a: usize, b: usize) -> usize {
    if a > b {
        a
    } else {
        b
    }
}

/// The encoded size of `v` (postcard, as it travels and is stored).
pub(crate) fn encoded_len<T: Serialize>(v: &T) -> usize {
    // Counting cannot fail for the types given here; an error counts as too big.
    postcard::serialize_with_flavor(v, postcard::ser_flavors::Size::default()).unwrap_or(usize::MAX)
}

/// Refuses a command too big to be replicated (see [`MAX_COMMAND_BYTES`]).
pub(crate) fn check_command(cmd: &Command) -> Result<()> {
    let n = encoded_len(cmd);
    if n > MAX_COMMAND_BYTES {
        return Err(MetadataError::InvalidArgument(format!(
            "the metadata change is {n} bytes, more than the {MAX_COMMAND_BYTES} bytes one \
             change may have"
        )));
    }
    Ok(())
}

/// Takes commands from the front of `pending` while they fit in `max_bytes` together (always
/// at least one), leaving the rest in order.
pub(crate) fn take_batch<T>(
    pending: &mut Vec<(Command, T)>,
    max_bytes: usize,
) -> Vec<(Command, T)> {
    let mut total = 0usize;
    let mut n = 0;
    for (cmd, _) in pending.iter() {
        let len = encoded_len(cmd);
        if n > 0 && total.saturating_add(len) > max_bytes {
            break;
        }
        total = total.saturating_add(len);
        n += 1;
    }
    if n == pending.len() {
        std::mem::take(pending)
    } else {
        pending.drain(..n).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sys(len: usize) -> Command {
        Command::SetSys {
            key: "k".into(),
            value: vec![7; len],
        }
    }

    #[test]
    fn batches_stop_before_the_byte_cap_but_never_come_out_empty() {
        let one = encoded_len(&sys(1000));
        let mut pending: Vec<(Command, u32)> = (0..10).map(|i| (sys(1000), i)).collect();
        let first = take_batch(&mut pending, 3 * one + one / 2);
        assert_eq!(first.iter().map(|(_, i)| *i).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(pending.len(), 7);
        assert_eq!(pending[0].1, 3, "the rest stays in order");
        // A command bigger than the cap goes alone.
        let mut big = vec![(sys(10_000), 0u32), (sys(1), 1)];
        let alone = take_batch(&mut big, 100);
        assert_eq!(alone.len(), 1);
        assert_eq!(big.len(), 1);
        let rest = take_batch(&mut big, 100);
        assert_eq!(rest.len(), 1);
        assert!(big.is_empty());
        assert!(take_batch(&mut big, 100).is_empty());
    }

    #[test]
    fn oversized_commands_are_refused() {
        assert!(check_command(&sys(1 << 20)).is_ok());
        let err = check_command(&sys(MAX_COMMAND_BYTES)).unwrap_err();
        assert!(matches!(err, MetadataError::InvalidArgument(_)), "{err:?}");
    }
}
