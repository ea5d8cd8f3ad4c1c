//! Fuzzes the wire and metadata-store decoders (prost messages a peer or a
//! damaged store can hand us) and the path parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|input: &[u8]| {
    let _ = dfs_proto::WriteBlockRequest::decode(input);
    let _ = dfs_proto::ReadBlockResponse::decode(input);
    let _ = dfs_proto::HeartbeatResponse::decode(input);
    let _ = dfs_proto::BlockReportRequest::decode(input);
    let _ = dfs_proto::image::InodeRecord::decode(input);
    if let Ok(s) = std::str::from_utf8(input) {
        let _ = dfs_proto::path::normalize(s);
    }
});
