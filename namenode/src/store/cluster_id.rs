//! The cluster id: made once, when a namenode's data directory is first
//! used, and kept in `DATA/cluster_id`. A datanode records the id of the
//! first namenode it joins and refuses any other (HDFS's clusterID): a
//! namenode started on an empty or wrong `--data` would otherwise take
//! every replica for an orphan and have it deleted.

use std::fs;
use std::io;
use std::path::Path;

use crate::edits;
use crate::error::{Error, Result};

/// The file, in the namenode's data directory.
pub const CLUSTER_ID_FILE: &str = "cluster_id";

/// Longest accepted id, in bytes.
const MAX_LEN: usize = 128;

/// Reads the cluster id of the data directory `dir`, making one if it has
/// none: a new namespace, or (`existing`) one made before cluster ids or
/// restored without its id file.
pub(crate) fn load_or_create(dir: &Path, existing: bool) -> Result<String> {
    let path = dir.join(CLUSTER_ID_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => {
            let id = text.trim();
            if id.is_empty() || id.len() > MAX_LEN || !id.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(Error::CorruptStore {
                    message: format!(
                        "{}: not a cluster id (1 to {MAX_LEN} printable ASCII bytes)",
                        path.display()
                    ),
                });
            }
            Ok(id.to_string())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let id = format!("CID-{:032x}", rand::random::<u128>());
            edits::replace_file(dir, CLUSTER_ID_FILE, format!("{id}\n").as_bytes())?;
            if existing {
                tracing::warn!(cluster_id = %id, file = %path.display(),
                    "this namespace had no cluster id (made before cluster ids, or restored without the file): a new one was made; datanodes that recorded another id refuse this namenode, and if this is their namespace, their id (in their DATA/cluster_id) belongs in this file");
            } else {
                tracing::info!(cluster_id = %id, "created the cluster id");
            }
            Ok(id)
        }
        Err(source) => Err(Error::Io {
            context: format!("cannot read {}", path.display()),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let id = load_or_create(dir.path(), false).unwrap();
        assert!(id.starts_with("CID-"), "{id}");
        assert_eq!(load_or_create(dir.path(), true).unwrap(), id);
        let other = tempfile::tempdir().unwrap();
        assert_ne!(load_or_create(other.path(), true).unwrap(), id);
        fs::write(dir.path().join(CLUSTER_ID_FILE), "\n").unwrap();
        let e = load_or_create(dir.path(), true).unwrap_err();
        assert!(e.to_string().contains("not a cluster id"), "{e}");
    }
}
