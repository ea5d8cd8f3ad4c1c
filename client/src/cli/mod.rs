//! The `dfs` command line: argument parsing (clap derive) and one function
//! per command, built on the [`Client`] library.
//!
//! Every failure is printed as one line `dfs: <command>: <message>` on
//! stderr with exit code 1.
//!
//! ```
//! use clap::Parser;
//! use dfs_client::cli::{Cli, Command};
//! let cli = Cli::try_parse_from(["dfs", "--namenode", "10.0.0.1:9000", "mkdir", "-p", "/a/b"]).unwrap();
//! assert_eq!(cli.namenode.as_deref(), Some("10.0.0.1:9000"));
//! assert!(matches!(cli.command, Command::Mkdir { parents: true, .. }));
//! ```

mod admin;
mod attrs;
mod dest;
mod format;
mod glob;
mod mode;
mod namespace;
mod query;
mod stop;
mod transfer;

pub use stop::Signal;

use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgAction, ArgGroup, Args, Parser, Subcommand};
use dfs_proto::defaults;

use crate::{Client, Error};

/// `dfs`: work with files on a dfs cluster.
#[derive(Debug, Parser)]
#[command(name = "dfs", version, about = "Work with files on a dfs cluster", long_about = None)]
pub struct Cli {
    /// Namenode address (host:port). Default: $DFS_NAMENODE, else 127.0.0.1:9000.
    #[arg(long, global = true, value_name = "ADDR")]
    pub namenode: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands of `dfs`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Copy local files (or `-` for stdin) to the cluster.
    #[command(override_usage = "dfs put [OPTIONS] LOCAL... REMOTE")]
    Put(PutArgs),
    /// Copy a file from the cluster to a local path (or `-` for stdout).
    Get(GetArgs),
    /// Copy files or directory trees within the cluster.
    #[command(override_usage = "dfs cp [OPTIONS] SRC... DST")]
    Cp(CpArgs),
    /// Print files to stdout.
    Cat {
        /// Files to print.
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// List a directory.
    Ls(LsArgs),
    /// Create directories.
    Mkdir {
        /// Create missing parents; no error if the directory exists.
        #[arg(short = 'p', long)]
        parents: bool,
        /// Directories to create.
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// Remove files or directories.
    Rm {
        /// Remove directories and everything under them.
        #[arg(short = 'r', short_alias = 'R', long)]
        recursive: bool,
        /// Paths to remove.
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// Remove empty directories.
    Rmdir {
        /// Say nothing about a directory that is not empty.
        #[arg(long)]
        ignore_fail_on_non_empty: bool,
        /// Directories to remove.
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// Move or rename files or directories.
    #[command(override_usage = "dfs mv SRC... DST")]
    Mv {
        /// Source paths, then the destination (an existing directory
        /// receives the sources inside it; several sources need one).
        #[arg(required = true, num_args = 2.., value_name = "PATH")]
        paths: Vec<String>,
    },
    /// Show the status of a path.
    Stat {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// The path.
        path: String,
    },
    /// Show space used under a path.
    #[command(disable_help_flag = true)]
    Du {
        /// One total for PATH instead of one line per entry.
        #[arg(short = 's', long)]
        summary: bool,
        /// Sizes in KiB, MiB, GiB.
        #[arg(short = 'h', short_alias = 'H', long = "human")]
        human: bool,
        /// Print help.
        #[arg(long, action = ArgAction::Help)]
        help: Option<bool>,
        /// The paths.
        #[arg(default_value = "/")]
        paths: Vec<String>,
    },
    /// Count the directories, files and bytes under paths.
    #[command(disable_help_flag = true)]
    Count {
        /// Sizes in KiB, MiB, GiB.
        #[arg(short = 'h', short_alias = 'H', long = "human")]
        human: bool,
        /// Print a header line first.
        #[arg(short = 'v')]
        header: bool,
        /// Print help.
        #[arg(long, action = ArgAction::Help)]
        help: Option<bool>,
        /// The paths.
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// Show the cluster's size, used and free space.
    #[command(disable_help_flag = true)]
    Df {
        /// Sizes in KiB, MiB, GiB.
        #[arg(short = 'h', short_alias = 'H', long = "human")]
        human: bool,
        /// Print help.
        #[arg(long, action = ArgAction::Help)]
        help: Option<bool>,
        /// Accepted as by `hdfs dfs -df`; the figures are the cluster's.
        path: Option<String>,
    },
    /// Exit 0 if a test on a path is true, 1 if not.
    Test(TestArgs),
    /// Print the first KiB of a file.
    Head {
        /// The file.
        path: String,
    },
    /// Print the last KiB of a file.
    Tail {
        /// Then print bytes as they are added, until interrupted.
        #[arg(short = 'f')]
        follow: bool,
        /// The file.
        path: String,
    },
    /// Change the permission bits (octal, or symbolic as u+x,go-w).
    Chmod {
        /// Also everything under directories.
        #[arg(short = 'R')]
        recursive: bool,
        /// The mode: 755, 1777, u+x, a=rX, go-w, ...
        #[arg(allow_hyphen_values = true)]
        mode: String,
        /// The paths.
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// Change the owner, and optionally the group.
    Chown {
        /// Also everything under directories.
        #[arg(short = 'R')]
        recursive: bool,
        /// OWNER, OWNER:GROUP or :GROUP.
        owner: String,
        /// The paths.
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// Change the group.
    Chgrp {
        /// Also everything under directories.
        #[arg(short = 'R')]
        recursive: bool,
        /// The group.
        group: String,
        /// The paths.
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// Create empty files (a path that is an empty file already is left alone).
    Touchz {
        /// The files.
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// Set the times of paths to now (or -t), creating missing files empty.
    Touch {
        /// Access time only.
        #[arg(short = 'a')]
        atime: bool,
        /// Modification time only.
        #[arg(short = 'm')]
        mtime: bool,
        /// Do not create missing files.
        #[arg(short = 'c')]
        no_create: bool,
        /// The time, yyyyMMdd:HHmmss in UTC, instead of now.
        #[arg(short = 't', value_name = "TIME")]
        time: Option<String>,
        /// The paths.
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// Show the cluster's datanodes and state.
    Report {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Change the replication of a file (or of every file under a directory).
    Setrep {
        /// Wait until every block has the new number of replicas.
        #[arg(short = 'w', long)]
        wait: bool,
        /// New replication.
        replication: u32,
        /// The paths.
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// Check the health of the files under a path; exits non-zero when data is missing or corrupt.
    Fsck {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// The path.
        #[arg(default_value = "/")]
        path: String,
    },
    /// Force lease recovery of a file whose writer is gone, and wait for it to close.
    Recover {
        /// The file.
        path: String,
    },
    /// Move replicas from full datanodes to empty ones until every node's
    /// use is within the threshold of the average (as `hdfs balancer`).
    Balancer {
        /// Percentage points from the average use every node should end within.
        #[arg(long, default_value_t = 10.0, value_name = "PCT")]
        threshold: f64,
        /// Stop a run going on (started by another `dfs balancer`).
        #[arg(long)]
        stop: bool,
    },
    /// Administration.
    #[command(subcommand)]
    Admin(AdminCommand),
}

/// `dfs admin ...`.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Drain a datanode: re-replicate its blocks elsewhere.
    Decommission {
        /// Datanode address (host:port) or id.
        address: String,
    },
    /// Return a decommissioned datanode to service.
    Recommission {
        /// Datanode address (host:port) or id.
        address: String,
    },
    /// Show, enter or leave the namenode's safe mode, or wait until it is off.
    Safemode {
        /// get | enter | leave | wait
        #[arg(value_enum)]
        action: SafemodeArg,
    },
}

/// The action of `dfs admin safemode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SafemodeArg {
    /// Print whether safe mode is on.
    Get,
    /// Enter safe mode: namespace changes and new blocks are refused until `leave`.
    Enter,
    /// Leave safe mode, even before the datanodes' block reports are in.
    Leave,
    /// Wait until safe mode is off (for scripts that start a cluster).
    Wait,
}

/// `dfs put`.
#[derive(Debug, Args)]
pub struct PutArgs {
    /// Replace existing files.
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Replicas per block.
    #[arg(long, value_name = "N")]
    pub replication: Option<u32>,
    /// Block size in bytes.
    #[arg(long, value_name = "BYTES")]
    pub block_size: Option<u64>,
    /// Local files or directories (`-` for stdin), then the remote path.
    #[arg(required = true, num_args = 2.., value_name = "PATH")]
    pub paths: Vec<String>,
}

/// `dfs cp`.
#[derive(Debug, Args)]
pub struct CpArgs {
    /// Replace existing files.
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Keep mode, owner, group and times.
    #[arg(short = 'p', long)]
    pub preserve: bool,
    /// Source files or directories, then the destination.
    #[arg(required = true, num_args = 2.., value_name = "PATH")]
    pub paths: Vec<String>,
}

/// `dfs test`: exactly one question.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("question").required(true).args(["exists", "dir", "file", "non_empty", "empty"])))]
pub struct TestArgs {
    /// The path exists.
    #[arg(short = 'e')]
    pub exists: bool,
    /// The path is a directory.
    #[arg(short = 'd')]
    pub dir: bool,
    /// The path is a file.
    #[arg(short = 'f')]
    pub file: bool,
    /// The path is a file of at least one byte.
    #[arg(short = 's')]
    pub non_empty: bool,
    /// The path is zero bytes long.
    #[arg(short = 'z')]
    pub empty: bool,
    /// The path.
    pub path: String,
}

/// `dfs get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// Replace an existing local file.
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Remote file or directory.
    pub remote: String,
    /// Local path (`-` for stdout); an existing directory receives the file inside it.
    pub local: String,
}

/// `dfs ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// List subdirectories recursively.
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// Long format: mode, replication, owner, group, size, mtime, path.
    #[arg(short = 'l', long)]
    pub long: bool,
    /// Print a JSON array of statuses.
    #[arg(long)]
    pub json: bool,
    /// The paths (glob patterns as `/logs/2026-*` expanded).
    #[arg(default_value = "/")]
    pub paths: Vec<String>,
}

impl TestArgs {
    fn question(&self) -> query::Test {
        if self.dir {
            query::Test::Dir
        } else if self.file {
            query::Test::File
        } else if self.non_empty {
            query::Test::NonEmpty
        } else if self.empty {
            query::Test::Empty
        } else {
            query::Test::Exists
        }
    }
}

impl Command {
    /// The command's name as printed in error messages.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Put(_) => "put",
            Command::Get(_) => "get",
            Command::Cp(_) => "cp",
            Command::Cat { .. } => "cat",
            Command::Rmdir { .. } => "rmdir",
            Command::Count { .. } => "count",
            Command::Df { .. } => "df",
            Command::Test(_) => "test",
            Command::Head { .. } => "head",
            Command::Tail { .. } => "tail",
            Command::Chmod { .. } => "chmod",
            Command::Chown { .. } => "chown",
            Command::Chgrp { .. } => "chgrp",
            Command::Touchz { .. } => "touchz",
            Command::Touch { .. } => "touch",
            Command::Ls(_) => "ls",
            Command::Mkdir { .. } => "mkdir",
            Command::Rm { .. } => "rm",
            Command::Mv { .. } => "mv",
            Command::Stat { .. } => "stat",
            Command::Du { .. } => "du",
            Command::Report { .. } => "report",
            Command::Setrep { .. } => "setrep",
            Command::Fsck { .. } => "fsck",
            Command::Balancer { .. } => "balancer",
            Command::Recover { .. } => "recover",
            Command::Admin(AdminCommand::Decommission { .. }) => "admin decommission",
            Command::Admin(AdminCommand::Recommission { .. }) => "admin recommission",
            Command::Admin(AdminCommand::Safemode { .. }) => "admin safemode",
        }
    }
}

/// A failed command.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The cluster refused or failed.
    #[error(transparent)]
    Client(#[from] Error),
    /// A local file could not be read or written.
    #[error("{path}: {}", io_text(.source))]
    Local {
        /// The local path.
        path: String,
        /// What happened.
        source: std::io::Error,
    },
    /// The arguments do not make sense together.
    #[error("{0}")]
    Usage(String),
    /// fsck found missing or corrupt data (the report was printed).
    #[error("{0}")]
    Unhealthy(String),
    /// stdout was closed by the reader (as in `dfs cat f | head`).
    #[error("broken pipe")]
    BrokenPipe,
    /// A cluster error told in the user's terms (about the file they named,
    /// not the temporary copy the command wrote).
    #[error("{0}")]
    Told(String),
    /// A signal stopped the command (a copy in progress removed its
    /// partial file).
    #[error("interrupted by {}", .0.name())]
    Interrupted(Signal),
    /// Several paths of one command failed (the others were done).
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Several(Vec<CliError>),
    /// A glob pattern matched no path.
    #[error("{0}: no match")]
    NoMatch(String),
    /// `dfs test` found its question false: exit 1, nothing printed.
    #[error("false")]
    False,
}

/// An I/O error in the words of the other messages: "no such file or
/// directory", not "No such file or directory (os error 2)".
fn io_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = match (e.raw_os_error(), text.rfind(" (os error ")) {
        (Some(_), Some(at)) => &text[..at],
        _ => text.as_str(),
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The failures of a command given several paths: as `hdfs dfs`, each
/// path is tried, every failure is told, and the command fails if any
/// did. A closed stdout or a stop signal ends the command at once.
#[derive(Debug, Default)]
pub(crate) struct Failures(Vec<CliError>);

impl Failures {
    /// Records the outcome of one path; `Err` means stop now (with the
    /// failures recorded so far).
    pub(crate) fn note(&mut self, r: CliResult) -> CliResult {
        let stop = match r {
            Ok(()) => None,
            Err(e @ (CliError::BrokenPipe | CliError::Interrupted(_))) => Some(e),
            Err(CliError::Several(mut v)) => {
                // A stop from a nested tree copy comes last.
                let nested_stop = v
                    .last()
                    .is_some_and(|e| matches!(e, CliError::BrokenPipe | CliError::Interrupted(_)));
                let stop = if nested_stop { v.pop() } else { None };
                self.0.extend(v);
                stop
            }
            Err(e) => {
                self.0.push(e);
                None
            }
        };
        let stop = stop.or_else(|| stop::requested().map(CliError::Interrupted));
        match stop {
            None => Ok(()),
            Some(e) => {
                self.0.push(e);
                Err(CliError::Several(std::mem::take(&mut self.0)))
            }
        }
    }

    /// [`note`](Self::note) for the path `path`: a failure whose message
    /// does not name it (a namenode or network failure) is told with it,
    /// so each line says which path failed.
    pub(crate) fn note_path(&mut self, path: &str, r: CliResult) -> CliResult {
        let r = r.map_err(|e| match e {
            CliError::BrokenPipe | CliError::Interrupted(_) | CliError::Several(_) => e,
            e if e.to_string().contains(path) => e,
            e => CliError::Told(format!("{path}: {e}")),
        });
        self.note(r)
    }

    /// The command's result: the failures recorded, if any.
    pub(crate) fn finish(mut self) -> CliResult {
        match self.0.len() {
            0 => Ok(()),
            1 => Err(self.0.remove(0)),
            _ => Err(CliError::Several(self.0)),
        }
    }
}

/// The result of a command.
pub type CliResult<T = ()> = std::result::Result<T, CliError>;

/// Wraps a local I/O error with its path (a closed stdout becomes
/// [`CliError::BrokenPipe`]).
pub(crate) fn local(path: &str) -> impl FnOnce(std::io::Error) -> CliError + '_ {
    move |source| {
        if source.kind() == std::io::ErrorKind::BrokenPipe {
            CliError::BrokenPipe
        } else {
            CliError::Local {
                path: path.to_string(),
                source,
            }
        }
    }
}

/// The namenode address: `--namenode`, else `$DFS_NAMENODE`, else the default.
pub fn namenode_addr(flag: Option<&str>) -> String {
    if let Some(a) = flag.filter(|a| !a.is_empty()) {
        return a.to_string();
    }
    match std::env::var(defaults::NAMENODE_ENV) {
        Ok(a) if !a.is_empty() => a,
        _ => defaults::NAMENODE_ADDR.to_string(),
    }
}

/// How long a stopped command may take to remove a partial copy.
const CLEANUP_BUDGET: Duration = Duration::from_secs(10);

/// Runs the parsed command line; prints errors as
/// `dfs: <command>: <message>` (one line per failed path) and returns the
/// process exit code: 0, 1 on failure, 141 when stdout was closed, 128 +
/// the signal's number when a signal stopped it.
pub async fn run(cli: Cli) -> ExitCode {
    let name = cli.command.name();
    let is_test = matches!(cli.command, Command::Test(_));
    stop::watch();
    let command = execute(cli);
    tokio::pin!(command);
    let result = tokio::select! {
        r = &mut command => r,
        s = stop::requested_wait() => {
            // A copy in progress sees the signal too and removes its
            // partial file; other commands just stop.
            // Its result, once the cleanup is done, says what happened.
            let cleaned = if stop::copies_running() {
                tokio::time::timeout(CLEANUP_BUDGET, &mut command).await.ok()
            } else {
                None
            };
            cleaned.unwrap_or_else(|| {
                // Copies that could not remove their partial file in time.
                let mut v: Vec<CliError> = stop::partial_copies()
                    .into_iter()
                    .map(|p| {
                        CliError::Told(format!(
                            "{p}: partial copy left behind (the cluster did not answer in \
                             time); remove it with dfs rm"
                        ))
                    })
                    .collect();
                v.push(CliError::Interrupted(s));
                Err(CliError::Several(v))
            })
        }
    };
    let failures = match result {
        Ok(()) => return ExitCode::SUCCESS,
        Err(CliError::Several(v)) => v,
        Err(e) => vec![e],
    };
    use std::io::Write;
    let mut stderr = std::io::stderr().lock();
    let mut code = ExitCode::FAILURE;
    for e in &failures {
        match e {
            // A closed stdout is no error to tell (as `cat f | head`).
            CliError::BrokenPipe => code = ExitCode::from(141),
            CliError::Interrupted(s) => code = ExitCode::from(s.exit_code()),
            CliError::False => {}
            // `dfs test` could not tell (the cluster failed): not 1, so a
            // script does not take it for "false".
            _ if is_test => code = ExitCode::from(2),
            _ => {}
        }
        if !matches!(e, CliError::BrokenPipe | CliError::False) {
            // Never panic on a closed stderr.
            let _ = writeln!(stderr, "dfs: {name}: {e}");
        }
    }
    code
}

async fn execute(cli: Cli) -> CliResult {
    let addr = namenode_addr(cli.namenode.as_deref());
    let client = Client::connect(&addr).await?;
    match cli.command {
        Command::Put(args) => transfer::put(&client, args).await,
        Command::Get(args) => transfer::get(&client, args).await,
        Command::Cp(args) => transfer::cp(&client, args).await,
        Command::Cat { paths } => transfer::cat(&client, &paths).await,
        Command::Rmdir {
            ignore_fail_on_non_empty,
            paths,
        } => namespace::rmdir(&client, ignore_fail_on_non_empty, &paths).await,
        Command::Count {
            human,
            header,
            paths,
            ..
        } => query::count(&client, human, header, &paths).await,
        Command::Df { human, path, .. } => query::df(&client, human, path.as_deref()).await,
        Command::Test(t) => query::test(&client, t.question(), &t.path).await,
        Command::Head { path } => query::head(&client, &path).await,
        Command::Tail { follow, path } => query::tail(&client, &path, follow).await,
        Command::Chmod {
            recursive,
            mode,
            paths,
        } => attrs::chmod(&client, &mode, recursive, &paths).await,
        Command::Chown {
            recursive,
            owner,
            paths,
        } => attrs::chown(&client, &owner, recursive, &paths).await,
        Command::Chgrp {
            recursive,
            group,
            paths,
        } => attrs::chgrp(&client, &group, recursive, &paths).await,
        Command::Touchz { paths } => attrs::touchz(&client, &paths).await,
        Command::Touch {
            atime,
            mtime,
            no_create,
            time,
            paths,
        } => {
            let how = attrs::Touch {
                atime_only: atime,
                mtime_only: mtime,
                no_create,
            };
            attrs::touch(&client, how, time.as_deref(), &paths).await
        }
        Command::Ls(args) => namespace::ls(&client, args).await,
        Command::Mkdir { parents, paths } => namespace::mkdir(&client, parents, &paths).await,
        Command::Rm { recursive, paths } => namespace::rm(&client, recursive, &paths).await,
        Command::Mv { paths } => namespace::mv(&client, &paths).await,
        Command::Stat { json, path } => namespace::stat(&client, &path, json).await,
        Command::Du {
            summary,
            human,
            paths,
            ..
        } => namespace::du(&client, &paths, summary, human).await,
        Command::Setrep {
            wait,
            replication,
            paths,
        } => namespace::setrep(&client, replication, &paths, wait).await,
        Command::Report { json } => admin::report(&client, json).await,
        Command::Fsck { json, path } => admin::fsck(&client, &path, json).await,
        Command::Recover { path } => admin::recover(&client, &path).await,
        Command::Balancer { threshold, stop } => admin::balancer(&client, threshold, stop).await,
        Command::Admin(AdminCommand::Decommission { address }) => {
            admin::decommission(&client, &address, true).await
        }
        Command::Admin(AdminCommand::Recommission { address }) => {
            admin::decommission(&client, &address, false).await
        }
        Command::Admin(AdminCommand::Safemode { action }) => admin::safemode(&client, action).await,
    }
}

/// Prints `value` as pretty JSON on stdout.
pub(crate) fn print_json<T: serde::Serialize>(value: &T) -> CliResult {
    let text = serde_json::to_string_pretty(value).map_err(|e| CliError::Usage(e.to_string()))?;
    print_out(&format!("{text}\n"))
}

/// Writes text to stdout, turning a closed pipe into [`CliError::BrokenPipe`].
pub(crate) fn print_out(text: &str) -> CliResult {
    print_bytes(text.as_bytes())
}

/// Writes bytes to stdout, turning a closed pipe into [`CliError::BrokenPipe`].
pub(crate) fn print_bytes(bytes: &[u8]) -> CliResult {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(local("stdout"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn local_errors_read_like_the_others() {
        let e = CliError::Local {
            path: "/tmp/x".into(),
            source: std::io::Error::from_raw_os_error(2), // ENOENT
        };
        assert_eq!(e.to_string(), "/tmp/x: no such file or directory");
        let e = CliError::Local {
            path: "y".into(),
            source: std::io::Error::new(std::io::ErrorKind::AlreadyExists, "file exists (use -f)"),
        };
        assert_eq!(e.to_string(), "y: file exists (use -f)");
    }

    #[test]
    fn every_path_is_tried_and_each_failure_told() {
        let mut f = Failures::default();
        f.note(Ok(())).unwrap();
        f.note(Err(CliError::Usage("a".into()))).unwrap();
        f.note(Err(CliError::Several(vec![
            CliError::Usage("b".into()),
            CliError::Usage("c".into()),
        ])))
        .unwrap();
        match f.finish() {
            Err(CliError::Several(v)) => assert_eq!(v.len(), 3),
            other => panic!("{other:?}"),
        }
        // A closed stdout stops at once, keeping the failures so far.
        let mut f = Failures::default();
        f.note(Err(CliError::Usage("a".into()))).unwrap();
        match f.note(Err(CliError::BrokenPipe)) {
            Err(CliError::Several(v)) => {
                assert_eq!(v.len(), 2);
                assert!(matches!(v[1], CliError::BrokenPipe));
            }
            other => panic!("{other:?}"),
        }
        assert!(Failures::default().finish().is_ok());
        // A failure that does not name its path is told with it.
        let mut f = Failures::default();
        f.note_path("/a", Err(CliError::Usage("namenode unreachable".into())))
            .unwrap();
        f.note_path("/b", Err(CliError::Usage("/b: no such file".into())))
            .unwrap();
        match f.finish() {
            Err(CliError::Several(v)) => {
                assert_eq!(v[0].to_string(), "/a: namenode unreachable");
                assert_eq!(v[1].to_string(), "/b: no such file");
            }
            other => panic!("{other:?}"),
        }
    }

    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(args).unwrap()
    }

    #[test]
    fn put_takes_several_locals_and_options() {
        let cli = parse(&[
            "dfs",
            "put",
            "-f",
            "--replication",
            "2",
            "--block-size",
            "1048576",
            "a",
            "b",
            "/dst",
        ]);
        match cli.command {
            Command::Put(p) => {
                assert!(p.force);
                assert_eq!(p.replication, Some(2));
                assert_eq!(p.block_size, Some(1 << 20));
                assert_eq!(p.paths, ["a", "b", "/dst"]);
            }
            other => panic!("{other:?}"),
        }
        assert!(Cli::try_parse_from(["dfs", "put", "only-one"]).is_err());
    }

    #[test]
    fn flags_parse() {
        let cli = parse(&["dfs", "ls", "-R", "-l", "--json", "/x"]);
        assert!(matches!(
            cli.command,
            Command::Ls(LsArgs {
                recursive: true,
                long: true,
                json: true,
                ..
            })
        ));
        let cli = parse(&["dfs", "rm", "-r", "/a", "/b"]);
        assert!(matches!(
            cli.command,
            Command::Rm {
                recursive: true,
                ..
            }
        ));
        let cli = parse(&["dfs", "fsck", "--json"]);
        assert!(matches!(cli.command, Command::Fsck { json: true, ref path } if path == "/"));
        let cli = parse(&["dfs", "admin", "decommission", "127.0.0.1:9101"]);
        assert_eq!(cli.command.name(), "admin decommission");
        let cli = parse(&["dfs", "setrep", "2", "/f"]);
        assert!(matches!(
            cli.command,
            Command::Setrep { replication: 2, .. }
        ));
        let cli = parse(&["dfs", "du", "-s", "/d"]);
        assert!(
            matches!(cli.command, Command::Du { summary: true, ref paths, .. } if paths == &["/d"])
        );
        let cli = parse(&["dfs", "mv", "/a", "/b", "/dir"]);
        assert!(matches!(cli.command, Command::Mv { ref paths } if paths.len() == 3));
        assert!(Cli::try_parse_from(["dfs", "mv", "/a"]).is_err());
        // --namenode is global: accepted after the subcommand too.
        let cli = parse(&["dfs", "stat", "--json", "/f", "--namenode", "h:1"]);
        assert_eq!(cli.namenode.as_deref(), Some("h:1"));
    }

    #[test]
    fn hdfs_style_flags_parse() {
        // A mode that starts with '-' is the mode, not a flag.
        let cli = parse(&["dfs", "chmod", "-R", "-x", "/f"]);
        assert!(
            matches!(cli.command, Command::Chmod { recursive: true, ref mode, .. } if mode == "-x")
        );
        // -h is "human" where hdfs dfs has it; --help still helps.
        assert!(matches!(
            parse(&["dfs", "du", "-h", "/"]).command,
            Command::Du { human: true, .. }
        ));
        assert!(matches!(
            parse(&["dfs", "du", "-H", "/"]).command,
            Command::Du { human: true, .. }
        ));
        assert!(matches!(
            parse(&["dfs", "df", "-h"]).command,
            Command::Df { human: true, .. }
        ));
        assert!(matches!(
            parse(&["dfs", "count", "-v", "-h", "/a", "/b"]).command,
            Command::Count { human: true, header: true, ref paths, .. } if paths.len() == 2
        ));
        let help = Cli::try_parse_from(["dfs", "df", "--help"]).unwrap_err();
        assert_eq!(help.kind(), clap::error::ErrorKind::DisplayHelp);
        // test takes exactly one question.
        let cli = parse(&["dfs", "test", "-d", "/x"]);
        assert!(matches!(cli.command, Command::Test(ref t) if t.question() == query::Test::Dir));
        assert!(Cli::try_parse_from(["dfs", "test", "/x"]).is_err());
        assert!(Cli::try_parse_from(["dfs", "test", "-e", "-d", "/x"]).is_err());
        assert!(Cli::try_parse_from(["dfs", "cp", "/only-one"]).is_err());
    }

    #[test]
    fn namenode_flag_wins() {
        assert_eq!(namenode_addr(Some("h:9")), "h:9");
    }
}
