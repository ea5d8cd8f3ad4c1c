//! Replica file names and the file helpers the block store is built on.
//!
//! File names are built from numeric ids only: [`data_name`] and
//! [`meta_name`] format `u64`s, and [`parse_name`] accepts nothing but ASCII
//! digits between the fixed parts, so no name a request or a stray file
//! carries can reach a path outside the data directory.
//!
//! What each helper guarantees:
//! * [`fsync_dir`] makes the creations, renames and removals already done in
//!   a directory durable;
//! * [`remove_if_exists`] succeeds when the file is already gone;
//! * [`rename`] is a `rename(2)` (atomic within one file system) whose error
//!   names both paths; it does not sync the directory (callers do, with
//!   [`fsync_dir`]);
//! * [`open_rw`] opens an existing file for reading and writing, never
//!   creating one;
//! * [`truncate_files`] cuts a replica's data and checksum files to a shorter
//!   length (never a longer one), verifying a chunk it cuts into before
//!   checksumming the bytes kept, so corruption is never laundered;
//! * [`check_header`] fails with a corruption error (`BadMeta`) when a
//!   checksum file is shorter than its header or the header has the wrong
//!   magic, version or chunk size, and with an I/O error when it cannot read;
//! * [`clean_tmp`] empties `tmp/`, subdirectories included;
//! * [`load_or_create_node_id`] returns the node's UUID, refusing a malformed
//!   one, and creates a new one durably (written, synced, renamed into place)
//!   when there is none.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use dfs_proto::checksum::{self, CHECKSUM_SIZE};
use tracing::info;

use super::{CHUNK, CLUSTER_ID_FILE, NODE_ID_FILE, TMP_DIR};
use crate::error::{Error, Result};
use crate::meta;

pub(super) fn data_name(id: u64) -> String {
    format!("blk_{id}")
}

pub(super) fn meta_name(id: u64, gs: u64) -> String {
    format!("blk_{id}_{gs}.meta")
}

/// Parses `blk_<id>` and `blk_<id>_<gs>.meta`.
pub(super) fn parse_name(name: &str) -> Option<(u64, Option<u64>)> {
    let rest = name.strip_prefix("blk_")?;
    if let Some(stem) = rest.strip_suffix(".meta") {
        let (id, gs) = stem.split_once('_')?;
        if !id.bytes().all(|b| b.is_ascii_digit()) || !gs.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        return Some((id.parse().ok()?, Some(gs.parse().ok()?)));
    }
    if !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((rest.parse().ok()?, None))
}

pub(super) fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(format!("cannot sync directory {}", dir.display()), e))
}

pub(super) fn remove_if_exists(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(format!("cannot remove {}", path.display()), e)),
    }
}

pub(super) fn rename(from: &Path, to: &Path) -> Result<()> {
    fs::rename(from, to).map_err(|e| {
        Error::io(
            format!("cannot move {} to {}", from.display(), to.display()),
            e,
        )
    })
}

/// Empties `tmp/`: partial copies and spares of a previous run.
pub(super) fn clean_tmp(root: &Path) -> Result<()> {
    let tmp = root.join(TMP_DIR);
    let entries =
        fs::read_dir(&tmp).map_err(|e| Error::io(format!("cannot list {}", tmp.display()), e))?;
    let mut removed = 0;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(format!("cannot list {}", tmp.display()), e))?;
        let path = entry.path();
        let res = if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        match res {
            Ok(()) => removed += 1,
            // Gone already: a spare filler of a store on this folder that
            // is shutting down (tests open one folder twice) moved it.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(format!("cannot remove {}", path.display()), e)),
        }
    }
    if removed > 0 {
        info!(
            files = removed,
            "removed partial copies and spare replica files left in tmp/"
        );
    }
    Ok(())
}

pub(super) fn open_rw(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| Error::io(format!("cannot open {}", path.display()), e))
}

/// Cuts a replica's files to `new_len` bytes. When the new end falls inside a
/// chunk, the chunk is verified first and its checksum recomputed over the
/// bytes kept, so corruption is never laundered into a fresh checksum.
pub(super) fn truncate_files(
    id: u64,
    data: &File,
    meta_file: &File,
    old_len: u64,
    new_len: u64,
) -> Result<()> {
    if new_len == old_len {
        return Ok(());
    }
    if new_len > old_len {
        return Err(Error::invalid(
            id,
            format!("cannot truncate a {old_len}-byte replica to {new_len} bytes"),
        ));
    }
    let rem = new_len % CHUNK;
    let mut last_crc = None;
    if rem != 0 {
        let chunk_start = new_len - rem;
        let chunk_end = (chunk_start + CHUNK).min(old_len);
        let mut chunk = vec![0u8; (chunk_end - chunk_start) as usize];
        data.read_exact_at(&mut chunk, chunk_start)
            .map_err(|e| Error::io(format!("cannot read blk_{id} at {chunk_start}"), e))?;
        let mut stored = [0u8; CHECKSUM_SIZE];
        meta_file
            .read_exact_at(&mut stored, meta::checksum_offset(chunk_start))
            .map_err(|e| Error::io(format!("cannot read the checksums of blk_{id}"), e))?;
        if checksum::crc(&chunk) != u32::from_le_bytes(stored) {
            return Err(Error::ChecksumMismatch {
                block: id,
                offset: chunk_start,
            });
        }
        last_crc = Some(checksum::crc(&chunk[..rem as usize]));
    }
    // The new last checksum first, then the checksums, then the data: a
    // crash between any two leaves checksums that the start-up scan
    // matches at `new_len` (never a chunk whose checksum fits no prefix).
    let ctx = || format!("cannot truncate blk_{id} to {new_len} bytes");
    if let Some(c) = last_crc {
        meta_file
            .write_all_at(&c.to_le_bytes(), meta::checksum_offset(new_len - rem))
            .map_err(|e| Error::io(ctx(), e))?;
    }
    meta_file
        .set_len(meta::meta_len(new_len))
        .map_err(|e| Error::io(ctx(), e))?;
    data.set_len(new_len).map_err(|e| Error::io(ctx(), e))?;
    Ok(())
}

pub(super) fn check_header(id: u64, meta_file: &File) -> Result<()> {
    let mut header = [0u8; meta::HEADER_LEN];
    let len = meta_file
        .metadata()
        .map_err(|e| Error::io(format!("cannot stat the checksums of blk_{id}"), e))?
        .len();
    if len < meta::HEADER_LEN as u64 {
        return Err(Error::BadMeta {
            block: id,
            source: meta::MetaError::Truncated { len },
        });
    }
    meta_file
        .read_exact_at(&mut header, 0)
        .map_err(|e| Error::ReplicaUnreadable {
            block: id,
            what: "checksum header".into(),
            source: e,
        })?;
    meta::decode_header(&header).map_err(|source| Error::BadMeta { block: id, source })
}

pub(super) fn load_or_create_node_id(root: &Path) -> Result<String> {
    let path = root.join(NODE_ID_FILE);
    match fs::read_to_string(&path) {
        Ok(s) => {
            let id = s.trim();
            uuid::Uuid::parse_str(id).map_err(|e| Error::BadNodeId {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
            Ok(id.to_string())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let id = uuid::Uuid::new_v4().to_string();
            write_id_file(root, NODE_ID_FILE, &id)?;
            info!(node_id = %id, "created a new node id");
            Ok(id)
        }
        Err(e) => Err(Error::io(format!("cannot read {}", path.display()), e)),
    }
}

/// The cluster id recorded in `root` (`None` before the node first joined
/// a namenode).
pub(super) fn load_cluster_id(root: &Path) -> Result<Option<String>> {
    let path = root.join(CLUSTER_ID_FILE);
    match fs::read_to_string(&path) {
        Ok(s) if !s.trim().is_empty() => Ok(Some(s.trim().to_string())),
        Ok(_) => Err(Error::BadClusterId {
            path: path.display().to_string(),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(format!("cannot read {}", path.display()), e)),
    }
}

/// Writes `root/name` holding `id`, durably and atomically (a crash
/// leaves the old file or the new one).
pub(super) fn write_id_file(root: &Path, name: &str, id: &str) -> Result<()> {
    let tmp = root.join(format!("{name}.new"));
    let write = || -> io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(format!("{id}\n").as_bytes())?;
        f.sync_all()
    };
    write().map_err(|e| Error::io(format!("cannot write {}", tmp.display()), e))?;
    rename(&tmp, &root.join(name))?;
    fsync_dir(root)
}
