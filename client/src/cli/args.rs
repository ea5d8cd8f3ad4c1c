//! The command line's shape: the `dfs` commands, their arguments and
//! flags (clap derive).

use clap::{ArgAction, ArgGroup, Args, Parser, Subcommand};

use super::query;

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
    pub(crate) fn question(&self) -> query::Test {
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
