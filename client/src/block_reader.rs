//! Reading one byte range of one block: a `ReadBlock` stream from one
//! replica at a time, every chunk verified, trimmed to the range asked for,
//! and continued on the next replica from where the last one stopped.

use std::time::Duration;

use bytes::Bytes;
use dfs_proto::defaults::BYTES_PER_CHECKSUM;
use dfs_proto::error_kind::ErrorKind;
use dfs_proto::xfer::{self, FrameReader};
use dfs_proto::{
    checksum, BadReplica, LocatedBlock, ReadBlockRequest, ReadBlockResponse, ReportBadBlocksRequest,
};

use crate::error::{Error, Result};
use crate::reader::Shared;

/// Why a replica was left.
#[derive(Debug)]
struct Failure {
    address: String,
    reason: String,
    why: Why,
}

/// How a replica failed a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Why {
    /// Unreachable, or the stream broke: the node is marked failed for a while.
    Failed,
    /// Its data does not match its checksums: never asked again.
    Corrupt,
    /// The datanode refused for now (at its `--max-xceivers`): asked again
    /// after a wait.
    Busy,
}

/// Waits before asking busy datanodes again, one per round (HDFS waits a
/// random part of a 3 s window that grows each round).
const BUSY_BACKOFF: [Duration; 4] = [
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
];

/// Waits before asking the namenode again where a block is, when no
/// replica it named could be read or it named none (all holders dead, or a
/// restarted namenode still waiting for block reports): the first at once,
/// then after a random part of a growing window, as HDFS's
/// `dfs.client.max.block.acquire.failures` (3) with its 3 s windows.
const REFETCH_WAIT: [Duration; 3] = [
    Duration::ZERO,
    Duration::from_secs(3),
    Duration::from_secs(6),
];

/// Half to the whole of `window`, at random, so readers that failed
/// together do not come back together.
fn jittered(window: Duration) -> Duration {
    window.mul_f64(rand::random::<f64>() * 0.5 + 0.5)
}

/// Why a message was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Data does not match its checksum.
    Corrupt(String),
    /// The message does not fit the range asked for.
    Protocol(String),
}

/// A position in one block, reading towards `end`.
#[derive(Debug)]
pub(crate) struct BlockCursor {
    lb: LocatedBlock,
    /// Block offset of the next byte to hand out.
    next: u64,
    /// Block offset where the range ends.
    end: u64,
    stream: Option<(usize, FrameReader)>,
    failures: Vec<Failure>,
    /// Times the locations were asked for again.
    refreshes: usize,
    /// Why the last attempt to ask for them failed, if it did.
    refresh_failed: Option<String>,
    /// Rounds waited for busy datanodes so far.
    busy_rounds: usize,
}

impl BlockCursor {
    pub(crate) fn new(lb: LocatedBlock, start: u64, end: u64) -> Self {
        BlockCursor {
            lb,
            next: start,
            end,
            stream: None,
            failures: Vec::new(),
            refreshes: 0,
            refresh_failed: None,
            busy_rounds: 0,
        }
    }

    /// File offset of the next byte this cursor hands out.
    pub(crate) fn file_pos(&self) -> u64 {
        self.lb.offset + self.next
    }

    fn block_name(&self) -> String {
        self.lb
            .block
            .as_ref()
            .map_or_else(|| "blk_?".to_string(), |b| b.name())
    }

    /// The next verified bytes of the range, or `None` at its end.
    pub(crate) async fn next(&mut self, shared: &Shared) -> Result<Option<Bytes>> {
        loop {
            if self.next >= self.end {
                self.stream = None;
                return Ok(None);
            }
            if self.stream.is_none() {
                self.open(shared).await?;
            }
            let Some((idx, stream)) = self.stream.as_mut() else {
                continue;
            };
            let idx = *idx;
            let timeout = shared.ctx.data_timeout();
            let failure =
                match tokio::time::timeout(timeout, stream.message::<ReadBlockResponse>()).await {
                    Ok(Ok(Some(msg))) => match accept(&msg, self.next, self.end) {
                        Ok(piece) => {
                            self.next += piece.len() as u64;
                            // A replica serves: earlier busy refusals are
                            // old news for a later failure of this stream.
                            if self.failures.iter().any(|f| f.why == Why::Busy) {
                                self.failures.retain(|f| f.why != Why::Busy);
                            }
                            return Ok(Some(piece));
                        }
                        Err(Refused::Corrupt(reason)) => {
                            self.report_corrupt(shared, idx, &reason).await;
                            (reason, Why::Corrupt)
                        }
                        Err(Refused::Protocol(reason)) => (reason, Why::Failed),
                    },
                    Ok(Ok(None)) => (
                        format!("stream ended at block offset {}", self.next),
                        Why::Failed,
                    ),
                    Ok(Err(status)) => {
                        // A datanode that finds its own replica corrupt says so
                        // (and reports it itself); one at its transfer limit
                        // says it is busy.
                        let why = match ErrorKind::of(&status) {
                            Some(ErrorKind::Busy) => Why::Busy,
                            Some(ErrorKind::Corrupt) => Why::Corrupt,
                            _ if status.code() == tonic::Code::DataLoss => Why::Corrupt,
                            _ => Why::Failed,
                        };
                        (status.message().to_string(), why)
                    }
                    Err(_) => (format!("no data within {timeout:?}"), Why::Failed),
                };
            self.fail(shared, idx, failure.0, failure.1);
        }
    }

    fn fail(&mut self, shared: &Shared, idx: usize, reason: String, why: Why) {
        self.stream = None;
        let address = self
            .lb
            .locations
            .get(idx)
            .map(|n| n.address.clone())
            .unwrap_or_default();
        if why == Why::Busy {
            // Refused for now, not failed: the node keeps its connection
            // and its place for other reads; the wait is logged once a round.
            tracing::debug!(
                path = %shared.path, block = %self.block_name(), node = %address,
                reason = %reason, "replica busy; trying the next replica"
            );
        } else {
            tracing::warn!(
                path = %shared.path, block = %self.block_name(), node = %address,
                offset = self.next, reason = %reason, corrupt = why == Why::Corrupt,
                "replica read failed; trying the next replica"
            );
            if why == Why::Failed {
                shared.ctx.datanodes.mark_failed(&address);
            }
        }
        self.failures.push(Failure {
            address,
            reason,
            why,
        });
    }

    /// Tells the namenode that replica `idx` is corrupt, before the read
    /// goes on (as HDFS's `reportChecksumFailure`): a datanode sending a
    /// finalized replica from its file does not check it, so this report
    /// is how the namenode learns, even when the program exits right
    /// after. Bounded by the namenode call's timeout.
    async fn report_corrupt(&self, shared: &Shared, idx: usize, reason: &str) {
        let (Some(block), Some(node)) = (self.lb.block, self.lb.locations.get(idx)) else {
            return;
        };
        let req = ReportBadBlocksRequest {
            replicas: vec![BadReplica {
                block: Some(block),
                node_id: node.id.clone(),
                reason: reason.to_string(),
            }],
        };
        let path = &shared.path;
        let r = shared
            .ctx
            .namenode
            .call("ReportBadBlocks", path, |mut c| async move {
                c.report_bad_blocks(req).await
            })
            .await;
        if let Err(e) = r {
            tracing::warn!(path = %path, error = %e, "could not report a corrupt replica");
        }
    }

    /// Opens a stream at `next` on the first replica not tried yet.
    async fn open(&mut self, shared: &Shared) -> Result<()> {
        loop {
            // Replicas not tried yet, nearest first, and nodes that failed
            // lately (for any reader of this client) last.
            let untried = |n: &&dfs_proto::DatanodeInfo| {
                !self.failures.iter().any(|f| f.address == n.address)
            };
            let pool = &shared.ctx.datanodes;
            let candidate = self
                .lb
                .locations
                .iter()
                .position(|n| untried(&n) && !pool.recently_failed(&n.address))
                .or_else(|| self.lb.locations.iter().position(|n| untried(&n)));
            let Some(idx) = candidate else {
                if let Some(wait) = self.refetch_wait() {
                    // The namenode may know other replicas (or a new
                    // generation stamp): ask again, then try the ones that
                    // did not return bad data again.
                    if !wait.is_zero() {
                        tracing::warn!(
                            path = %shared.path, block = %self.block_name(), wait = ?wait,
                            "no replica of the block could be read; asking the namenode for its locations again after a wait"
                        );
                        tokio::time::sleep(wait).await;
                    }
                    match self.refresh(shared).await {
                        Ok(()) => self.failures.retain(|f| f.why == Why::Corrupt),
                        // The file was replaced: nothing more to read here.
                        Err(e @ Error::NotFound { .. }) => return Err(e),
                        // The replicas' failures stay the story; the next
                        // round (if any) asks the namenode again.
                        Err(e) => {
                            tracing::warn!(
                                path = %shared.path, block = %self.block_name(), error = %e,
                                "cannot ask the namenode where the block is now"
                            );
                            self.refresh_failed = Some(e.to_string());
                        }
                    }
                    continue;
                }
                if let Some(wait) = self.busy_wait() {
                    // Every replica left is at its transfer limit: wait a
                    // while, growing each round, and ask those again.
                    tracing::warn!(
                        path = %shared.path, block = %self.block_name(), wait = ?wait,
                        "every replica left is busy (datanodes at --max-xceivers); asking again after a wait"
                    );
                    tokio::time::sleep(wait).await;
                    self.failures.retain(|f| f.why != Why::Busy);
                    continue;
                }
                return Err(self.exhausted(shared));
            };
            let node = &self.lb.locations[idx];
            let req = ReadBlockRequest {
                block: self.lb.block,
                offset: self.next,
                length: self.end - self.next,
                client_name: shared.ctx.client_name.clone(),
            };
            // A refusal (no such replica, corrupt) comes as the first
            // answer, where `next` handles it like a failure mid-stream.
            let connect = shared.ctx.datanodes.connect_timeout();
            let opened = xfer::open_read_block(&node.address, &req, connect).await;
            match opened {
                Ok(stream) => {
                    self.stream = Some((idx, stream));
                    return Ok(());
                }
                Err(e) => self.fail(
                    shared,
                    idx,
                    format!("cannot reach datanode at {}: {e}", node.address),
                    Why::Failed,
                ),
            }
        }
    }

    /// How long to wait before asking the namenode for the block's
    /// locations again, if it is worth asking: once at once after any
    /// failure, and after waits while replicas were unreachable or there
    /// were none (not when they were only corrupt or busy).
    fn refetch_wait(&mut self) -> Option<Duration> {
        let base = *REFETCH_WAIT.get(self.refreshes)?;
        let worth = if self.refreshes == 0 {
            !self.failures.is_empty() || self.lb.locations.is_empty()
        } else {
            self.lb.locations.is_empty() || self.failures.iter().any(|f| f.why == Why::Failed)
        };
        if !worth {
            return None;
        }
        self.refreshes += 1;
        Some(jittered(base))
    }

    /// How long to wait before asking busy datanodes again, if any refused
    /// for that reason and the rounds are not used up.
    fn busy_wait(&mut self) -> Option<Duration> {
        if !self.failures.iter().any(|f| f.why == Why::Busy) {
            return None;
        }
        let base = *BUSY_BACKOFF.get(self.busy_rounds)?;
        self.busy_rounds += 1;
        Some(jittered(base))
    }

    /// Asks the namenode where the block is now; the reader's other reads
    /// of the file use the answer too.
    async fn refresh(&mut self, shared: &Shared) -> Result<()> {
        let id = self.lb.block.as_ref().map_or(0, |b| b.id);
        shared.refresh(self.lb.offset).await?;
        if let Some(lb) = shared.cached_block(id) {
            self.lb.locations = lb.locations;
            self.lb.corrupt = lb.corrupt;
            if let (Some(mine), Some(theirs)) = (self.lb.block.as_mut(), lb.block) {
                mine.generation_stamp = theirs.generation_stamp;
                mine.length = mine.length.max(theirs.length);
            }
        }
        Ok(())
    }

    fn exhausted(&self, shared: &Shared) -> Error {
        let what = format!(
            "block {} of {} (file offset {})",
            self.block_name(),
            shared.path,
            self.file_pos()
        );
        let asked = self
            .refresh_failed
            .as_ref()
            .map(|e| format!("; the namenode could not be asked again: {e}"))
            .unwrap_or_default();
        if self.lb.locations.is_empty() && self.failures.is_empty() {
            return Error::Corrupt {
                message: format!("{what} is missing: no datanode holds a replica{asked}"),
            };
        }
        let tried = self
            .failures
            .iter()
            .map(|f| format!("{}: {}", f.address, f.reason))
            .collect::<Vec<_>>()
            .join("; ")
            + &asked;
        if self.failures.iter().any(|f| f.why == Why::Corrupt) {
            Error::Corrupt {
                message: format!("{what}: no replica could be read intact ({tried})"),
            }
        } else {
            let mut addrs: Vec<&str> = self.failures.iter().map(|f| f.address.as_str()).collect();
            addrs.dedup();
            Error::Unreachable {
                addr: addrs.join(", "),
                message: format!("could not read {what} from any replica ({tried})"),
            }
        }
    }
}

/// Checks one message of a read stream against its checksums and the range
/// `[next, end)` (`next` below `end`), and returns the bytes it adds.
pub(crate) fn accept(
    msg: &ReadBlockResponse,
    next: u64,
    end: u64,
) -> std::result::Result<Bytes, Refused> {
    let off = msg.offset;
    if off % BYTES_PER_CHECKSUM as u64 != 0 {
        return Err(Refused::Protocol(format!(
            "data at block offset {off}, which is not a chunk boundary"
        )));
    }
    if off > next {
        return Err(Refused::Protocol(format!(
            "data at block offset {off} while {next} was expected"
        )));
    }
    let Some(data_end) = off.checked_add(msg.data.len() as u64) else {
        return Err(Refused::Protocol(format!(
            "{} bytes at block offset {off} end beyond 2^64",
            msg.data.len()
        )));
    };
    if let Err(e) = checksum::verify(&msg.data, &msg.checksums) {
        return Err(Refused::Corrupt(match e {
            checksum::ChecksumError::Mismatch { offset } => {
                format!(
                    "checksum mismatch in the chunk at block offset {}",
                    off.saturating_add(offset)
                )
            }
            other => format!("bad checksums at block offset {off}: {other}"),
        }));
    }
    // A stream moves forward with every message: one that adds nothing
    // (empty, or bytes already had) is refused, so a faulty datanode cannot
    // keep a read waiting, message after message, without a timeout.
    if data_end <= next {
        return Err(Refused::Protocol(format!(
            "data at block offset {off}..{data_end} adds nothing at {next}"
        )));
    }
    let start = (next - off) as usize;
    let stop = (data_end.min(end).max(next) - off) as usize;
    Ok(msg.data.slice(start..stop))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_replicas_are_waited_for_four_growing_jittered_rounds_then_not() {
        let mut cursor = BlockCursor::new(LocatedBlock::default(), 0, 10);
        assert_eq!(cursor.busy_wait(), None, "nothing busy: no wait");
        cursor.failures.push(Failure {
            address: "127.0.0.1:1".into(),
            reason: "busy".into(),
            why: Why::Busy,
        });
        for base in BUSY_BACKOFF {
            let wait = cursor.busy_wait().unwrap();
            assert!(
                wait >= base / 2 && wait <= base,
                "{wait:?} for a round of {base:?}"
            );
        }
        assert_eq!(cursor.busy_wait(), None, "the rounds are used up");
        // A corrupt replica is never waited for.
        let mut cursor = BlockCursor::new(LocatedBlock::default(), 0, 10);
        cursor.failures.push(Failure {
            address: "127.0.0.1:2".into(),
            reason: "bad checksum".into(),
            why: Why::Corrupt,
        });
        assert_eq!(cursor.busy_wait(), None);
    }

    #[test]
    fn locations_are_asked_for_again_three_times_while_no_replica_serves() {
        let failure = |why| Failure {
            address: "127.0.0.1:1".into(),
            reason: "reason".into(),
            why,
        };
        // No location at all: asked at once, then after two growing,
        // jittered waits, then given up.
        let mut cursor = BlockCursor::new(LocatedBlock::default(), 0, 10);
        for base in REFETCH_WAIT {
            let wait = cursor.refetch_wait().unwrap();
            assert!(wait >= base / 2 && wait <= base, "{wait:?} for {base:?}");
        }
        assert_eq!(cursor.refetch_wait(), None);
        // Replicas that could not be reached: the same.
        let mut located = LocatedBlock::default();
        located.locations.push(dfs_proto::DatanodeInfo::default());
        let mut cursor = BlockCursor::new(located.clone(), 0, 10);
        assert_eq!(cursor.refetch_wait(), None, "nothing failed yet");
        cursor.failures.push(failure(Why::Failed));
        assert_eq!(cursor.refetch_wait(), Some(Duration::ZERO));
        assert!(cursor
            .refetch_wait()
            .is_some_and(|w| w >= REFETCH_WAIT[1] / 2));
        // Only corrupt or busy replicas: asked once, no waits (a corrupt
        // replica stays corrupt; busy ones have their own rounds).
        for why in [Why::Corrupt, Why::Busy] {
            let mut cursor = BlockCursor::new(located.clone(), 0, 10);
            cursor.failures.push(failure(why));
            assert_eq!(cursor.refetch_wait(), Some(Duration::ZERO));
            assert_eq!(cursor.refetch_wait(), None, "{why:?}");
        }
    }

    fn msg(offset: u64, data: Vec<u8>) -> ReadBlockResponse {
        let checksums = Bytes::from(checksum::compute(&data));
        ReadBlockResponse {
            offset,
            data: Bytes::from(data),
            checksums,
            error: None,
        }
    }

    #[test]
    fn trims_to_the_range() {
        let data: Vec<u8> = (0..2048u32).map(|i| i as u8).collect();
        let m = msg(512, data.clone());
        // Asked from 700 to 1000 (block offsets).
        let got = accept(&m, 700, 1000).unwrap();
        assert_eq!(&got[..], &data[188..488]);
        let got = accept(&m, 512, 5000).unwrap();
        assert_eq!(&got[..], &data[..]);
    }

    #[test]
    fn a_message_that_adds_nothing_is_refused() {
        // Bytes already had, an empty message (a zero-length frame decodes
        // to one) and offsets that overflow: each would have been skipped,
        // letting a faulty datanode hold a read forever.
        let data: Vec<u8> = vec![7; 1024];
        for (m, next) in [
            (msg(512, data.clone()), 1536),
            (msg(512, data.clone()), 4000),
            (msg(0, vec![]), 512),
            (ReadBlockResponse::default(), 0),
            (msg(u64::MAX - 511, data.clone()), u64::MAX - 10),
        ] {
            match accept(&m, next, u64::MAX) {
                Err(Refused::Protocol(reason)) => {
                    assert!(
                        reason.contains("nothing") || reason.contains("2^64"),
                        "{reason}"
                    )
                }
                other => panic!("offset {} at {next}: {other:?}", m.offset),
            }
        }
    }

    #[test]
    fn refuses_corrupt_or_misplaced_data() {
        let mut m = msg(0, vec![1u8; 1500]);
        let mut bad = m.data.to_vec();
        bad[1100] ^= 0x40;
        m.data = Bytes::from(bad);
        match accept(&m, 0, 1500) {
            Err(Refused::Corrupt(reason)) => assert!(reason.contains("1024"), "{reason}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            accept(&msg(100, vec![0; 10]), 100, 200),
            Err(Refused::Protocol(_))
        ));
        assert!(matches!(
            accept(&msg(1024, vec![0; 10]), 100, 2000),
            Err(Refused::Protocol(_))
        ));
        let mut short = msg(0, vec![0; 1000]);
        short.checksums = short.checksums.slice(..4);
        assert!(matches!(accept(&short, 0, 1000), Err(Refused::Corrupt(_))));
    }
}
