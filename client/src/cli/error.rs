//! How a command fails: [`CliError`], the failures of a command given
//! several paths, and local I/O errors in the words of the others.

use super::stop::{self, Signal};
use crate::Error;

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
