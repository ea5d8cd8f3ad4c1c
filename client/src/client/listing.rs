//! Directory listing for [`Client`]: whole listings, pages, and pages
//! with each file's block locations (HDFS's `listLocatedStatus`).

use dfs_proto::defaults;

use super::{path_of, Client, LocatedStatus};
use crate::error::Result;
use crate::types::FileStatus;

impl Client {
    /// Every entry of a directory in name order (all pages). For a file,
    /// its own status.
    ///
    /// ```no_run
    /// # async fn f(client: dfs_client::Client) -> dfs_client::Result<()> {
    /// for entry in client.list("/data").await? {
    ///     println!("{} {}", entry.name(), entry.length);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn list(&self, path: &str) -> Result<Vec<FileStatus>> {
        let mut out = Vec::new();
        let mut after = String::new();
        loop {
            let (page, more) = self.list_page(path, &after, defaults::LIST_PAGE).await?;
            let last = page.last().map(|s| s.name().to_string());
            out.extend(page);
            match last {
                Some(name) if more => after = name,
                _ => return Ok(out),
            }
        }
    }

    /// `ListStatus` of the normalized `path`, retried while the namenode is
    /// unreachable or in safe mode.
    async fn list_status(
        &self,
        path: &str,
        req: dfs_proto::ListStatusRequest,
    ) -> Result<dfs_proto::ListStatusResponse> {
        let budget = self.nn().rpc_timeout();
        self.nn()
            .call_retrying("ListStatus", path, budget, |mut c| {
                let req = req.clone();
                async move { c.list_status(req).await }
            })
            .await
    }

    /// One page of a directory listing: at most `limit` entries whose name
    /// sorts after `start_after` (empty = from the start), and whether more
    /// follow.
    pub async fn list_page(
        &self,
        path: &str,
        start_after: &str,
        limit: u32,
    ) -> Result<(Vec<FileStatus>, bool)> {
        let path = path_of(path)?;
        let req = dfs_proto::ListStatusRequest {
            path: path.clone(),
            start_after: start_after.to_string(),
            limit,
            ..Default::default()
        };
        let resp = self.list_status(&path, req).await?;
        Ok((
            resp.entries.into_iter().map(FileStatus::from).collect(),
            resp.has_more,
        ))
    }

    /// One page of the listing of `path` like [`list_page`](Self::list_page),
    /// each entry with the locations of a file's first blocks (HDFS's
    /// `listLocatedStatus`): [`open_located`](Self::open_located) opens any
    /// of them without a namenode call. A page holds at most
    /// [`LOCATED_LIST_PAGE`](dfs_proto::defaults::LOCATED_LIST_PAGE) entries.
    ///
    /// ```no_run
    /// # async fn run(client: dfs_client::Client) -> dfs_client::Result<()> {
    /// let (page, _more) = client.list_located_page("/logs", "", 100).await?;
    /// for entry in page.into_iter().filter(|e| !e.status().is_dir()) {
    ///     let mut reader = client.open_located(entry).await?;
    ///     let mut buf = vec![0u8; 4096];
    ///     let n = reader.read_at(0, &mut buf).await?;
    ///     println!("{} bytes", n);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn list_located_page(
        &self,
        path: &str,
        start_after: &str,
        limit: u32,
    ) -> Result<(Vec<LocatedStatus>, bool)> {
        let path = path_of(path)?;
        let req = dfs_proto::ListStatusRequest {
            path: path.clone(),
            start_after: start_after.to_string(),
            limit,
            with_locations: true,
            client_host: self.inner.client_host(),
        };
        let resp = self.list_status(&path, req).await?;
        let mut locations = resp.locations.into_iter();
        let page = resp
            .entries
            .into_iter()
            .map(|entry| {
                let located = locations.next().filter(|l| l.status.is_some());
                let status = FileStatus::from(entry);
                LocatedStatus {
                    path: status.path.clone(),
                    locations: located.filter(|_| !status.is_dir()),
                    status,
                }
            })
            .collect();
        Ok((page, resp.has_more))
    }
}
