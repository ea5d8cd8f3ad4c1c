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
mod args;
mod attrs;
mod dest;
mod error;
mod format;
mod glob;
mod mode;
mod namespace;
mod preserve;
mod query;
mod stop;
mod transfer;

pub use args::{
    AdminCommand, Cli, Command, CpArgs, GetArgs, LsArgs, PutArgs, SafemodeArg, TestArgs,
};
pub(crate) use error::{local, Failures};
pub use error::{CliError, CliResult};
pub use stop::Signal;

use std::process::ExitCode;
use std::time::Duration;

use dfs_proto::defaults;

use crate::Client;

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
    stop::watch(name);
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
    use clap::Parser;
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
