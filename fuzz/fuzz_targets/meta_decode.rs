//! Fuzzes the datanode's on-disk `.meta` decoder and the checksum verifier:
//! any bytes must give `Ok` or a typed error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    if input.len() < 2 {
        return;
    }
    let data_len = u16::from_le_bytes([input[0], input[1]]) as u64;
    let bytes = &input[2..];
    let _ = dfs_datanode::meta::decode_header(bytes);
    let _ = dfs_datanode::meta::checksums_in(bytes.len() as u64);
    let _ = dfs_datanode::meta::check_lengths(data_len, bytes.len() as u64);
    if let Ok(sums) = dfs_datanode::meta::decode(bytes, data_len) {
        let data = vec![0u8; data_len as usize];
        let _ = dfs_proto::checksum::verify(&data, sums);
    }
    let half = bytes.len() / 2;
    let _ = dfs_proto::checksum::verify(&bytes[..half], &bytes[half..]);
});
