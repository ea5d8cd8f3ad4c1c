//! Directory streams: a listing read page by page.
//!
//! Entries are numbered in listing order; the kernel's readdir offset is
//! that number (offsets 1 and 2 stand after `.` and `..`). A stream keeps one
//! page of the namenode's listing and pages on by the last name it holds,
//! so a directory of any size is listed with one page in memory and
//! entries added or removed meanwhile cannot make it skip or repeat a page.
//! A seek backwards (rewinddir) restarts from the first page.

use std::future::Future;

use dfs_client::FileStatus;

/// Offset of the first listing entry: `.` is 0, `..` is 1.
pub const FIRST_ENTRY: u64 = 2;

/// One open directory.
#[derive(Debug)]
pub struct DirStream {
    path: String,
    /// Listing index of `page[0]`.
    base: u64,
    page: Vec<FileStatus>,
    has_more: bool,
    loaded: bool,
}

impl DirStream {
    /// A stream over `path`; nothing is fetched until the first entry is asked for.
    pub fn new(path: String) -> DirStream {
        DirStream {
            path,
            base: 0,
            page: Vec::new(),
            has_more: true,
            loaded: false,
        }
    }

    /// The directory listed.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Listing entry `index` (0-based), fetching pages with `fetch(start_after)`
    /// as needed; `None` past the end.
    pub async fn entry<F, Fut, E>(
        &mut self,
        index: u64,
        mut fetch: F,
    ) -> Result<Option<&FileStatus>, E>
    where
        F: FnMut(String) -> Fut,
        Fut: Future<Output = Result<(Vec<FileStatus>, bool), E>>,
    {
        if !self.loaded || index < self.base {
            let (page, has_more) = fetch(String::new()).await?;
            self.base = 0;
            self.page = page;
            self.has_more = has_more;
            self.loaded = true;
        }
        while index >= self.base + self.page.len() as u64 {
            let Some(last) = self.page.last() else {
                return Ok(None);
            };
            if !self.has_more {
                return Ok(None);
            }
            let (page, has_more) = fetch(last.name().to_string()).await?;
            self.base += self.page.len() as u64;
            self.page = page;
            self.has_more = has_more && !self.page.is_empty();
        }
        let at = usize::try_from(index - self.base).unwrap_or(usize::MAX);
        Ok(self.page.get(at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dfs_client::FileType;

    fn status(name: &str) -> FileStatus {
        FileStatus {
            path: format!("/d/{name}"),
            file_type: FileType::File,
            length: 0,
            replication: 1,
            block_size: 4096,
            owner: "0".into(),
            group: "0".into(),
            mode: 0o644,
            mtime: 0,
            atime: 0,
            inode: 1,
            under_construction: false,
        }
    }

    /// A fake namenode listing of `n` names, `page` at a time.
    fn lister(
        names: Vec<String>,
        page: usize,
        calls: &std::cell::Cell<usize>,
    ) -> impl FnMut(String) -> std::future::Ready<Result<(Vec<FileStatus>, bool), ()>> + '_ {
        move |after: String| {
            calls.set(calls.get() + 1);
            let rest: Vec<&String> = names.iter().filter(|n| **n > after).collect();
            let out = rest.iter().take(page).map(|n| status(n)).collect();
            std::future::ready(Ok((out, rest.len() > page)))
        }
    }

    #[tokio::test]
    async fn pages_forward_and_restarts_on_rewind() {
        let names: Vec<String> = (0..25).map(|i| format!("f{i:03}")).collect();
        let calls = std::cell::Cell::new(0);
        let mut d = DirStream::new("/d".into());
        for i in 0..25u64 {
            let e = d.entry(i, lister(names.clone(), 10, &calls)).await.unwrap();
            assert_eq!(e.unwrap().name(), names[i as usize]);
        }
        assert_eq!(calls.get(), 3);
        assert!(d
            .entry(25, lister(names.clone(), 10, &calls))
            .await
            .unwrap()
            .is_none());
        // Rewind: restarts from the first page.
        let e = d.entry(0, lister(names.clone(), 10, &calls)).await.unwrap();
        assert_eq!(e.unwrap().name(), "f000");
    }

    #[tokio::test]
    async fn empty_directory() {
        let calls = std::cell::Cell::new(0);
        let mut d = DirStream::new("/d".into());
        assert!(d
            .entry(0, lister(Vec::new(), 10, &calls))
            .await
            .unwrap()
            .is_none());
        assert!(d
            .entry(0, lister(Vec::new(), 10, &calls))
            .await
            .unwrap()
            .is_none());
    }
}
