//! Questions about paths and the cluster: `test`, `count`, `df`, `head`,
//! `tail`, in the formats of `hdfs dfs`.

use std::time::Duration;

use super::format::human_size;
use super::glob::{expand, expand_all, expand_one};
use super::{print_bytes, print_out, CliError, CliResult, Failures};
use crate::{Client, Error, FileStatus};

/// Bytes `head` and `tail` print: one KiB, as `hdfs dfs`.
const HEAD_TAIL_BYTES: u64 = 1024;
/// How often `tail -f` looks for new bytes.
const FOLLOW_EVERY: Duration = Duration::from_secs(1);

/// The question `dfs test` asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Test {
    /// `-e`: the path exists.
    Exists,
    /// `-d`: it is a directory.
    Dir,
    /// `-f`: it is a file.
    File,
    /// `-s`: it is not empty (a file with bytes).
    NonEmpty,
    /// `-z`: it is zero bytes long.
    Empty,
}

impl Test {
    fn holds(self, st: &FileStatus) -> bool {
        match self {
            Test::Exists => true,
            Test::Dir => st.is_dir(),
            Test::File => !st.is_dir(),
            Test::NonEmpty => st.length > 0,
            Test::Empty => st.length == 0,
        }
    }
}

/// `dfs test -e|-d|-f|-s|-z PATH`: exit 0 if true, 1 if false (nothing
/// printed), 2 with a message if the cluster could not answer.
pub(crate) async fn test(client: &Client, test: Test, path: &str) -> CliResult {
    // A pattern: true if it matches and the test holds for every match.
    let paths = match expand(client, path).await {
        Ok(p) => p,
        Err(CliError::NoMatch(_)) => return Err(CliError::False),
        Err(e) => return Err(e),
    };
    let mut holds = true;
    for p in &paths {
        holds &= match client.status(p).await {
            Ok(st) => test.holds(&st),
            Err(Error::NotFound { .. } | Error::NotADirectory { .. }) => false,
            Err(e) => return Err(e.into()),
        };
    }
    if holds {
        Ok(())
    } else {
        Err(CliError::False)
    }
}

/// `dfs count [-h] [-v] PATH...`: `DIR_COUNT FILE_COUNT CONTENT_SIZE
/// PATHNAME` per path, columns as `hdfs dfs -count`.
pub(crate) async fn count(
    client: &Client,
    human: bool,
    header: bool,
    paths: &[String],
) -> CliResult {
    if header {
        print_out(&format!(
            "{:>12} {:>12} {:>18} PATHNAME\n",
            "DIR_COUNT", "FILE_COUNT", "CONTENT_SIZE"
        ))?;
    }
    let mut failures = Failures::default();
    for p in &expand_all(client, paths, &mut failures).await? {
        let one = async {
            let st = client.status(p).await?;
            let cs = client.content_summary(&st.path).await?;
            let size = if human {
                human_size(cs.length)
            } else {
                cs.length.to_string()
            };
            print_out(&format!(
                "{:>12} {:>12} {:>18} {}\n",
                cs.directories, cs.files, size, st.path
            ))
        };
        failures.note_path(p, one.await)?;
    }
    failures.finish()
}

/// `dfs df [-h]`: the cluster's size, use and free space, as
/// `hdfs dfs -df`.
pub(crate) async fn df(client: &Client, human: bool, path: Option<&str>) -> CliResult {
    if let Some(p) = path {
        client.status(p).await?;
    }
    let fs = client.statfs().await?;
    let fmt = |n: u64| {
        if human {
            human_size(n)
        } else {
            n.to_string()
        }
    };
    let name = format!("dfs://{}", client.namenode_addr());
    let used_pct = if fs.capacity == 0 {
        0
    } else {
        (u128::from(fs.used) * 100).div_ceil(u128::from(fs.capacity))
    };
    let row = [
        name,
        fmt(fs.capacity),
        fmt(fs.used),
        fmt(fs.remaining),
        format!("{used_pct}%"),
    ];
    let head = ["Filesystem", "Size", "Used", "Available", "Use%"];
    let w: Vec<usize> = (0..5).map(|i| row[i].len().max(head[i].len())).collect();
    let line = |c: [&str; 5]| {
        format!(
            "{:<w0$}  {:>w1$}  {:>w2$}  {:>w3$}  {:>w4$}\n",
            c[0],
            c[1],
            c[2],
            c[3],
            c[4],
            w0 = w[0],
            w1 = w[1],
            w2 = w[2],
            w3 = w[3],
            w4 = w[4]
        )
    };
    let mut text = line(head);
    text.push_str(&line([&row[0], &row[1], &row[2], &row[3], &row[4]]));
    print_out(&text)
}

/// The file at `path` (an error for a directory).
async fn file(client: &Client, path: &str) -> CliResult<crate::FileReader> {
    let st = client.status(path).await?;
    if st.is_dir() {
        return Err(Error::IsADirectory { path: st.path }.into());
    }
    Ok(client.open(&st.path).await?)
}

/// Writes `len` bytes of `reader` from `offset` to stdout; returns the
/// bytes written (fewer only if the file is shorter).
async fn print_range(reader: &crate::FileReader, offset: u64, len: u64) -> CliResult<u64> {
    let mut buf = vec![0u8; len.min(1 << 20) as usize];
    let mut done = 0;
    while done < len {
        let want = (len - done).min(buf.len() as u64) as usize;
        let n = reader.read_at(offset + done, &mut buf[..want]).await?;
        if n == 0 {
            break;
        }
        print_bytes(&buf[..n])?;
        done += n as u64;
    }
    Ok(done)
}

/// `dfs head PATH`: the first KiB of a file.
pub(crate) async fn head(client: &Client, path: &str) -> CliResult {
    let reader = file(client, &expand_one(client, path, "head").await?).await?;
    print_range(&reader, 0, HEAD_TAIL_BYTES).await.map(drop)
}

/// `dfs tail [-f] PATH`: the last KiB of a file; with `follow`, then
/// every byte added to it, until a signal stops the command.
pub(crate) async fn tail(client: &Client, path: &str, follow: bool) -> CliResult {
    let path = &expand_one(client, path, "tail").await?;
    let reader = file(client, path).await?;
    let inode = reader.status().inode;
    let start = reader.len().saturating_sub(HEAD_TAIL_BYTES);
    let mut offset = start + print_range(&reader, start, reader.len() - start).await?;
    if !follow {
        return Ok(());
    }
    loop {
        tokio::time::sleep(FOLLOW_EVERY).await;
        let reader = file(client, path).await?;
        if reader.status().inode != inode {
            return Err(CliError::Told(format!(
                "{path}: replaced by another file; stopped following"
            )));
        }
        if reader.len() > offset {
            offset += print_range(&reader, offset, reader.len() - offset).await?;
        }
    }
}
