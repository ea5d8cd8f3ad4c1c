//! Compiles the .proto files with protox (pure Rust, no system `protoc`).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/common.proto",
        "proto/namenode.proto",
        "proto/datanode.proto",
        "proto/fsimage.proto",
    ];
    for f in &files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure()
        .bytes(".dfs.Packet.data")
        .bytes(".dfs.Packet.checksums")
        .bytes(".dfs.ReadBlockResponse.data")
        .bytes(".dfs.ReadBlockResponse.checksums")
        .bytes(".dfs.SmallBlock.data")
        .bytes(".dfs.SmallBlock.checksums")
        .compile_fds(fds)?;
    Ok(())
}
