//! Fuzzes the wire and metadata-store decoders (prost messages a peer or a
//! damaged store can hand us), the block transfer protocol's frame reader
//! and the path parser.
#![no_main]

use std::sync::OnceLock;

use dfs_proto::xfer::FrameReader;
use libfuzzer_sys::fuzz_target;
use prost::Message;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime")
    })
}

fuzz_target!(|input: &[u8]| {
    let _ = dfs_proto::WriteBlockRequest::decode(input);
    let _ = dfs_proto::ReadBlockResponse::decode(input);
    let _ = dfs_proto::HeartbeatResponse::decode(input);
    let _ = dfs_proto::BlockReportRequest::decode(input);
    let _ = dfs_proto::image::InodeRecord::decode(input);
    if let Ok(s) = std::str::from_utf8(input) {
        let _ = dfs_proto::path::normalize(s);
    }
    // The same bytes as a connection's frames, read as either side does.
    runtime().block_on(async {
        let mut frames = FrameReader::new(input, "fuzz");
        while let Ok(Some(_)) = frames.message::<dfs_proto::WriteBlockRequest>().await {}
        let mut frames = FrameReader::new(input, "fuzz");
        while let Ok(Some(_)) = frames.message::<dfs_proto::WriteBlockResponse>().await {}
        let mut frames = FrameReader::new(input, "fuzz");
        while let Ok(Some(_)) = frames.message::<dfs_proto::ReadBlockResponse>().await {}
    });
});
