//! The wire contract of dfs: the gRPC services and messages generated from
//! `proto/*.proto`, the block checksum format, and the defaults every
//! component shares.
//!
//! Generated code lives in the private `pb` modules and is re-exported on
//! purpose: [`namenode`] and [`datanode`] hold the service clients and
//! servers, [`image`] the namenode's persistent records.

pub mod accept;
pub mod call;
pub mod checksum;
pub mod defaults;
pub mod error_kind;
pub mod path;
pub mod principal;
pub mod xfer;

#[allow(clippy::all, missing_docs, clippy::unwrap_used)]
mod pb {
    tonic::include_proto!("dfs");
    pub mod image {
        tonic::include_proto!("dfs.image");
    }
}

/// Every message of the `dfs` package (shared, namenode and datanode).
pub use pb::*;

/// The namenode's persistent records (`fsimage.proto`).
pub mod image {
    pub use crate::pb::image::*;
}

/// Client and server of the namenode's services.
pub mod namenode {
    pub use crate::pb::client_protocol_client::ClientProtocolClient;
    pub use crate::pb::client_protocol_server::{ClientProtocol, ClientProtocolServer};
    pub use crate::pb::datanode_protocol_client::DatanodeProtocolClient;
    pub use crate::pb::datanode_protocol_server::{DatanodeProtocol, DatanodeProtocolServer};
}

/// Client and server of the datanode's data transfer service.
pub mod datanode {
    pub use crate::pb::data_transfer_client::DataTransferClient;
    pub use crate::pb::data_transfer_server::{DataTransfer, DataTransferServer};
}

impl ExtendedBlock {
    /// A block's display form, `blk_<id>_<genstamp>` as in HDFS logs.
    pub fn name(&self) -> String {
        format!("blk_{}_{}", self.id, self.generation_stamp)
    }
}

impl std::fmt::Display for ExtendedBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "blk_{}_{}", self.id, self.generation_stamp)
    }
}
