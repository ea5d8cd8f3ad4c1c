//! One block's `WriteBlock` stream to the first datanode of a pipeline,
//! over the block transfer protocol ([`dfs_proto::xfer`]): setup (header,
//! `PipelineReady`), packets, and acks matched in order.
//! Failures name the pipeline node that failed, as ARCHITECTURE.md
//! describes: the first non-`SUCCESS` status of an ack, or the first node
//! when the stream itself breaks.

use std::time::Duration;

use dfs_proto::defaults::{MAX_PACKETS_IN_FLIGHT, SETUP_ACK_SEQNO};
use dfs_proto::error_kind::ErrorKind;
use dfs_proto::xfer::{self, FrameReader, SendTask, WriteBlockStream};
use dfs_proto::{
    write_block_request, write_block_response, AckStatus, DatanodeInfo, ExtendedBlock, Packet,
    PacketAck, WriteBlockRequest, WriteBlockResponse, WriteHeader, WriteStage,
};
use tokio::sync::mpsc;

use crate::conn::DatanodePool;
use crate::packet::OutPacket;

/// A pipeline node failed; `index` is its position in the pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NodeFailure {
    /// Position of the failed node in the pipeline.
    pub(crate) index: usize,
    /// What happened.
    pub(crate) reason: String,
    /// The node refused for lack of space (error kind `storage_full`).
    pub(crate) no_space: bool,
}

impl NodeFailure {
    /// A failure of the first node (or of the stream to it).
    pub(crate) fn first(reason: impl Into<String>) -> Self {
        NodeFailure {
            index: 0,
            reason: reason.into(),
            no_space: false,
        }
    }

    /// Marks the failure as a lack of space when `kind` says so.
    fn of_kind(mut self, kind: Option<ErrorKind>) -> Self {
        self.no_space = kind == Some(ErrorKind::StorageFull);
        self
    }
}

/// The index of the first failed node in an ack's statuses, if any.
pub(crate) fn failed_index(ack: &PacketAck) -> Option<usize> {
    ack.statuses
        .iter()
        .position(|s| *s == AckStatus::Error as i32 || *s == AckStatus::ChecksumError as i32)
}

/// An open pipeline.
#[derive(Debug)]
pub(crate) struct Pipeline {
    requests: mpsc::Sender<WriteBlockRequest>,
    responses: FrameReader,
    /// Writes the requests; aborted when the pipeline is dropped.
    _sender: SendTask,
    next_seqno: u64,
    nodes: usize,
}

/// What to open a pipeline for.
#[derive(Debug, Clone)]
pub(crate) struct Setup<'a> {
    pub(crate) pool: &'a DatanodePool,
    pub(crate) nodes: &'a [DatanodeInfo],
    pub(crate) block: ExtendedBlock,
    pub(crate) stage: WriteStage,
    pub(crate) bytes_acked: u64,
    pub(crate) client_name: &'a str,
    pub(crate) timeout: Duration,
    /// The base of the pipeline's ack timeouts (`WriteHeader`).
    pub(crate) ack_timeout_base: Duration,
}

impl Pipeline {
    /// Opens a block write stream to the first node and waits until the
    /// whole pipeline is ready.
    pub(crate) async fn open(setup: Setup<'_>) -> Result<Pipeline, NodeFailure> {
        let first = setup
            .nodes
            .first()
            .ok_or_else(|| NodeFailure::first("empty pipeline"))?;
        // Room for every packet that may be in flight, so sending a packet
        // never waits on this queue: backpressure comes from the ack window.
        let opened = xfer::open_write_block(
            &first.address,
            MAX_PACKETS_IN_FLIGHT + 2,
            setup.pool.connect_timeout(),
        );
        let WriteBlockStream {
            requests: tx,
            mut responses,
            sender,
        } = match opened.await {
            Ok(c) => c,
            Err(e) => {
                setup.pool.evict(&first.address);
                return Err(NodeFailure::first(format!(
                    "cannot reach datanode at {}: {e}",
                    first.address
                )));
            }
        };
        let header = WriteBlockRequest {
            msg: Some(write_block_request::Msg::Header(WriteHeader {
                block: Some(setup.block),
                targets: setup.nodes[1..].to_vec(),
                stage: setup.stage as i32,
                client_name: setup.client_name.to_string(),
                bytes_acked: setup.bytes_acked,
                ack_timeout_base_ms: u64::try_from(setup.ack_timeout_base.as_millis())
                    .unwrap_or(u64::MAX),
            })),
        };
        tx.send(header)
            .await
            .map_err(|_| NodeFailure::first("request stream closed"))?;
        loop {
            let msg = match tokio::time::timeout(
                setup.timeout,
                responses.message::<WriteBlockResponse>(),
            )
            .await
            {
                Ok(Ok(Some(m))) => m,
                Ok(Ok(None)) => {
                    return Err(NodeFailure::first(format!(
                        "{} closed the stream during pipeline setup",
                        first.address
                    )))
                }
                Ok(Err(status)) => {
                    return Err(NodeFailure::first(format!(
                        "{}: {}",
                        first.address,
                        status.message()
                    ))
                    .of_kind(ErrorKind::of(&status)))
                }
                Err(_) => {
                    return Err(NodeFailure::first(format!(
                        "pipeline through {} was not ready within {:?}",
                        first.address, setup.timeout
                    )))
                }
            };
            match msg.msg {
                Some(write_block_response::Msg::Ready(_)) => break,
                Some(write_block_response::Msg::Ack(ack)) => {
                    let index = failed_index(&ack).unwrap_or(0);
                    let node = setup
                        .nodes
                        .get(index)
                        .map(|n| n.address.as_str())
                        .unwrap_or("?");
                    return Err(NodeFailure {
                        index: index.min(setup.nodes.len() - 1),
                        reason: format!(
                            "pipeline setup failed at {node}{}{}",
                            if ack.message.is_empty() { "" } else { ": " },
                            ack.message
                        ),
                        no_space: false,
                    }
                    .of_kind(ErrorKind::parse(&ack.kind)));
                }
                // The reader turns an error frame into an error; never
                // seen here.
                Some(write_block_response::Msg::Error(e)) => {
                    return Err(
                        NodeFailure::first(format!("{}: {}", first.address, e.message))
                            .of_kind(ErrorKind::parse(&e.kind)),
                    )
                }
                None => continue,
            }
        }
        Ok(Pipeline {
            requests: tx,
            responses,
            _sender: sender,
            next_seqno: 0,
            nodes: setup.nodes.len(),
        })
    }

    /// Sends one packet; returns its seqno. A closed stream is reported as
    /// an error to be resolved by [`Pipeline::failure`].
    pub(crate) async fn send(&mut self, p: &OutPacket) -> Result<u64, ()> {
        let seqno = self.next_seqno;
        self.next_seqno += 1;
        let req = WriteBlockRequest {
            msg: Some(write_block_request::Msg::Packet(Packet {
                seqno,
                offset_in_block: p.offset,
                data: p.data.clone(),
                checksums: p.checksums.clone(),
                last: p.last,
                sync: false,
            })),
        };
        self.requests.send(req).await.map_err(|_| ())?;
        Ok(seqno)
    }

    /// The next successful ack's seqno, or the failure it reports.
    /// Cancel-safe: no message is lost if the future is dropped.
    pub(crate) async fn next_ack(&mut self) -> Result<u64, NodeFailure> {
        loop {
            match self.responses.message::<WriteBlockResponse>().await {
                Ok(Some(WriteBlockResponse {
                    msg: Some(write_block_response::Msg::Ack(ack)),
                })) => {
                    if let Some(index) = failed_index(&ack) {
                        let kind = ErrorKind::parse(&ack.kind);
                        return Err(NodeFailure {
                            index: index.min(self.nodes.saturating_sub(1)),
                            reason: if ack.message.is_empty() {
                                format!("ack {} reports a failure", ack.seqno)
                            } else {
                                ack.message
                            },
                            no_space: false,
                        }
                        .of_kind(kind));
                    }
                    if ack.seqno == SETUP_ACK_SEQNO {
                        continue;
                    }
                    return Ok(ack.seqno);
                }
                Ok(Some(_)) => continue,
                Ok(None) => return Err(NodeFailure::first("the first datanode closed the stream")),
                Err(status) => {
                    return Err(NodeFailure::first(status.message().to_string())
                        .of_kind(ErrorKind::of(&status)))
                }
            }
        }
    }

    /// After a failed send: the failure the response stream reports
    /// (waiting at most `timeout`), or the first node's.
    pub(crate) async fn failure(&mut self, timeout: Duration) -> NodeFailure {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.next_ack()).await {
                Ok(Ok(_)) => continue,
                Ok(Err(f)) => return f,
                Err(_) => return NodeFailure::first("the stream to the first datanode broke"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_bad_status_names_the_node() {
        let ack = |s: &[AckStatus]| PacketAck {
            seqno: 1,
            statuses: s.iter().map(|x| *x as i32).collect(),
            message: String::new(),
            kind: String::new(),
        };
        assert_eq!(failed_index(&ack(&[AckStatus::Success; 3])), None);
        assert_eq!(
            failed_index(&ack(&[
                AckStatus::Success,
                AckStatus::Error,
                AckStatus::Error
            ])),
            Some(1)
        );
        assert_eq!(failed_index(&ack(&[AckStatus::ChecksumError])), Some(0));
        assert_eq!(failed_index(&ack(&[])), None);
    }
}
