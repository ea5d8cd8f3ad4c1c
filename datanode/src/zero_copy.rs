//! Sending a range of a finalized replica straight from its file to a
//! block transfer connection: each frame's head (offset and the stored
//! checksums) is written, then its bytes with `sendfile`, which moves them
//! from the page cache to the socket without passing through this
//! process. A `dfs get` or a mount's read of a large file so costs the
//! datanode no read into memory, no copy to the socket and no checksum
//! pass; the reader verifies every chunk, as with HDFS's `transferTo`.
//!
//! It runs on a blocking thread: a `sendfile` of pages not yet in the
//! page cache waits for the disk.

use std::fs::File;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use dfs_proto::defaults::READ_CHUNK;
use dfs_proto::xfer::FrameWriter;
use dfs_proto::ReadBlockResponse;
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::runtime::Handle;
use tracing::{warn, Span};

use crate::accept::{refuse, within};
use crate::error::Error;
use crate::node::Node;
use crate::page_cache;
use crate::reader::{read_failed, FileRange};

/// Sends `range` on `out` in `READ_CHUNK` frames, then ends the
/// connection's side; a frame the peer takes no byte of within `timeout`
/// ends the call. Returns when the range is sent, refused (the replica's
/// checksums are damaged, the node shuts down) or the peer is gone.
pub async fn send(node: Arc<Node>, range: FileRange, out: FrameWriter, timeout: Duration) {
    let span = Span::current();
    let rt = Handle::current();
    let sent = tokio::task::spawn_blocking(move || {
        let _enter = span.enter();
        send_blocking(&node, range, out, timeout, &rt);
    })
    .await;
    if let Err(e) = sent {
        warn!(error = %e, "the task sending a read failed; the client reads another replica");
    }
}

fn send_blocking(
    node: &Node,
    range: FileRange,
    mut out: FrameWriter,
    timeout: Duration,
    rt: &Handle,
) {
    let FileRange {
        mut reader,
        start,
        stop,
    } = range;
    if stop - start >= page_cache::WINDOW {
        reader.stream_from(start);
    }
    let mut pos = start;
    while pos < stop {
        if node.shutdown.is_cancelled() {
            rt.block_on(refuse::<ReadBlockResponse>(
                &mut out,
                &Error::ShuttingDown.into(),
            ));
            return;
        }
        let end = (pos + READ_CHUNK as u64).min(stop);
        let sums = match reader.stored_checksums(pos, end) {
            Ok(sums) => sums,
            Err(e) => {
                read_failed(node, &reader, &e);
                rt.block_on(refuse::<ReadBlockResponse>(&mut out, &e.into()));
                return;
            }
        };
        let len = (end - pos) as usize;
        let frame = async {
            out.send_read_head(pos, sums, len).await?;
            send_file(out.get_mut().as_ref(), reader.data_file(), pos, len).await
        };
        if !rt.block_on(within(timeout, frame)) {
            return;
        }
        pos = end;
    }
    let _ = rt.block_on(out.finish());
}

/// Writes `len` bytes of `file` from `offset` to `sock` with `sendfile`.
async fn send_file(sock: &TcpStream, file: &File, mut offset: u64, len: usize) -> io::Result<()> {
    let end = offset + len as u64;
    while offset < end {
        sock.writable().await?;
        let want = (end - offset) as usize;
        let sent = sock.try_io(Interest::WRITABLE, || {
            rustix::fs::sendfile(sock, file, Some(&mut offset), want).map_err(io::Error::from)
        });
        match sent {
            Ok(0) => {
                warn!(
                    offset,
                    "the replica's data file ended before its recorded length; the read is cut and the client reads another replica"
                );
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
