//! Reading many small files at once: [`Client::read_small_files`].
//!
//! A reader of thousands of small files pays a datanode round trip per file
//! when it opens them one by one. Files of one small block each can instead
//! be asked of a datanode that holds them all, in one `ReadSmallBlocks`
//! call. The client checks every chunk against its CRC as any read does;
//! a file that cannot be served this way (too large, still being written,
//! its replica missing or corrupt, the datanode down) comes back as `None`
//! for the caller to read the ordinary way, which fails over between
//! replicas and reports bad ones.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use dfs_proto::defaults::{SMALL_BLOCKS_PER_CALL, SMALL_BLOCK_MAX};
use dfs_proto::{checksum, ExtendedBlock, LocatedBlock, ReadSmallBlocksRequest};
use tracing::debug;

use crate::client::{Client, LocatedStatus};

/// The one block of a small complete file, if it is one.
fn small_block(file: &LocatedStatus) -> Option<&LocatedBlock> {
    let located = file.locations()?;
    if located.under_construction || located.file_length > SMALL_BLOCK_MAX {
        return None;
    }
    match located.blocks.as_slice() {
        [lb] if lb.offset == 0
            && !lb.corrupt
            && lb.block.as_ref()?.length == located.file_length =>
        {
            Some(lb)
        }
        _ => None,
    }
}

impl Client {
    /// The whole contents of each of `files` (from
    /// [`list_located_page`](Client::list_located_page) or
    /// [`located_status`](Client::located_status)), read with one call per
    /// datanode for many files at once. Entry `i` is `None` when file `i`
    /// could not be read this way (a directory, a file of more than one
    /// block or over 256 KiB, one being written, a replica missing or
    /// corrupt, a datanode unreachable): read it with
    /// [`open_located`](Client::open_located), which fails over. Empty files
    /// need no call. Every chunk is verified against its checksum.
    ///
    /// ```no_run
    /// # async fn run(client: dfs_client::Client) -> dfs_client::Result<()> {
    /// let (page, _more) = client.list_located_page("/images", "", 100).await?;
    /// for (file, bytes) in page.iter().zip(client.read_small_files(&page).await) {
    ///     match bytes {
    ///         Some(b) => println!("{}: {} bytes", file.path(), b.len()),
    ///         None => println!("{}: read it with open_located", file.path()),
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn read_small_files(&self, files: &[LocatedStatus]) -> Vec<Option<Bytes>> {
        let mut out: Vec<Option<Bytes>> = vec![None; files.len()];
        // The files to ask for, and the datanodes holding each.
        let mut left: Vec<(usize, &LocatedBlock)> = Vec::new();
        for (i, f) in files.iter().enumerate() {
            let empty = f
                .locations()
                .is_some_and(|l| l.file_length == 0 && !l.under_construction);
            if empty {
                out[i] = Some(Bytes::new());
            } else if let Some(lb) = small_block(f) {
                left.push((i, lb));
            }
        }
        let pool = &self.inner.datanodes;
        // A datanode whose call fails is not asked again: its files go to
        // another holder in the next round.
        let mut tried: HashSet<String> = HashSet::new();
        for _round in 0..3 {
            let mut calls = Vec::new();
            while !left.is_empty() {
                // The datanode holding the most of what is left (nearest
                // first on ties): one call for as many files as possible.
                let mut score: HashMap<&str, (usize, usize)> = HashMap::new();
                for (_, lb) in &left {
                    for (rank, node) in lb.locations.iter().enumerate() {
                        if tried.contains(&node.address) || pool.recently_failed(&node.address) {
                            continue;
                        }
                        let s = score.entry(node.address.as_str()).or_default();
                        s.0 += 1;
                        s.1 += rank;
                    }
                }
                let Some(addr) = score
                    .iter()
                    .max_by_key(|(addr, (n, ranks))| (*n, std::cmp::Reverse(*ranks), *addr))
                    .map(|(addr, _)| addr.to_string())
                else {
                    break;
                };
                let (mine, rest): (Vec<_>, Vec<_>) = left
                    .into_iter()
                    .partition(|(_, lb)| lb.locations.iter().any(|n| n.address == addr));
                left = rest;
                tried.insert(addr.clone());
                for chunk in mine.chunks(SMALL_BLOCKS_PER_CALL) {
                    calls.push(self.read_small_blocks(addr.clone(), chunk.to_vec()));
                }
            }
            if calls.is_empty() {
                break;
            }
            for answer in futures::future::join_all(calls).await {
                match answer {
                    Ok(files) => {
                        for (i, bytes) in files {
                            out[i] = Some(bytes);
                        }
                    }
                    Err(unread) => left.extend(unread),
                }
            }
        }
        out
    }

    /// One `ReadSmallBlocks` call to `addr`: the verified contents of the
    /// blocks it could serve, by file index; or, when the call itself
    /// failed (the datanode is marked failed), the blocks asked for.
    async fn read_small_blocks<'a>(
        &self,
        addr: String,
        blocks: Vec<(usize, &'a LocatedBlock)>,
    ) -> Result<Vec<(usize, Bytes)>, Vec<(usize, &'a LocatedBlock)>> {
        let asked: Vec<ExtendedBlock> = blocks
            .iter()
            .map(|(_, lb)| lb.block.unwrap_or_default())
            .collect();
        let req = ReadSmallBlocksRequest {
            blocks: asked.clone(),
            client_name: self.inner.client_name.clone(),
        };
        let timeout = self.inner.data_timeout();
        // Err((reason, the datanode itself is unreachable)).
        let answer = async {
            let mut dn = self
                .inner
                .datanodes
                .get(&addr)
                .await
                .map_err(|e| (e.to_string(), true))?;
            dn.read_small_blocks(req).await.map_err(|status| {
                let down = matches!(
                    status.code(),
                    tonic::Code::Unavailable | tonic::Code::Unknown
                );
                (status.message().to_string(), down)
            })
        };
        let outcome = match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(resp)) => Ok(resp.into_inner()),
            Ok(Err(e)) => Err(e),
            Err(_) => Err((format!("no answer within {timeout:?}"), true)),
        };
        let resp = match outcome {
            Ok(resp) => resp,
            Err((reason, down)) => {
                debug!(node = %addr, reason = %reason, "small reads failed; trying another datanode");
                if down {
                    // Other reads try its replicas last for a while.
                    self.inner.datanodes.mark_failed(&addr);
                }
                return Err(blocks);
            }
        };
        if resp.blocks.len() != asked.len() {
            // Answers are matched to blocks by position: a datanode that
            // answers another number of them is not believed.
            debug!(node = %addr, asked = asked.len(), answered = resp.blocks.len(),
                "small reads answered a different number of blocks; trying another datanode");
            return Err(blocks);
        }
        let mut got = Vec::with_capacity(blocks.len());
        for (((i, _), block), answer) in blocks.iter().zip(&asked).zip(resp.blocks) {
            if !answer.error.is_empty() {
                debug!(node = %addr, block = block.id, error = %answer.error, "small read refused");
                continue;
            }
            let len = usize::try_from(block.length).unwrap_or(usize::MAX);
            if answer.data.len() < len {
                debug!(node = %addr, block = block.id, "small read came short");
                continue;
            }
            if let Err(e) = checksum::verify(&answer.data, &answer.checksums) {
                debug!(node = %addr, block = block.id, error = %e, "small read failed its checksum");
                continue;
            }
            got.push((*i, answer.data.slice(..len)));
        }
        Ok(got)
    }
}
