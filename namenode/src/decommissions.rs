//! The datanodes an operator took out of service (`dfs admin
//! decommission`), kept in `DATA/decommissioned`, one node id per line
//! (HDFS keeps them in its exclude file): a namenode restart does not put
//! a draining or drained node back in service, where it would take new
//! blocks.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::edits;
use crate::error::{Error, Result};

/// The file, in the namenode's data directory.
pub const DECOMMISSIONED_FILE: &str = "decommissioned";

/// The persisted set of decommissioned node ids.
#[derive(Debug)]
pub struct Decommissions {
    dir: PathBuf,
    ids: BTreeSet<String>,
}

impl Decommissions {
    /// Loads the set of `dir` (empty when the file does not exist).
    pub fn load(dir: &Path) -> Result<Decommissions> {
        let path = dir.join(DECOMMISSIONED_FILE);
        let ids = match fs::read_to_string(&path) {
            Ok(text) => text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => BTreeSet::new(),
            Err(source) => {
                return Err(Error::Io {
                    context: format!("cannot read {}", path.display()),
                    source,
                })
            }
        };
        Ok(Decommissions {
            dir: dir.to_path_buf(),
            ids,
        })
    }

    /// Whether node `id` was taken out of service.
    pub fn contains(&self, id: &str) -> bool {
        self.ids.contains(id)
    }

    /// Records node `id` as out of service (`true`) or back in service,
    /// durably, before the change is acted on.
    pub fn set(&mut self, id: &str, out: bool) -> Result<()> {
        let mut ids = self.ids.clone();
        let changed = if out {
            ids.insert(id.to_string())
        } else {
            ids.remove(id)
        };
        if !changed {
            return Ok(());
        }
        let text: String = ids.iter().map(|i| format!("{i}\n")).collect();
        edits::replace_file(&self.dir, DECOMMISSIONED_FILE, text.as_bytes())?;
        self.ids = ids;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_set_survives_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = Decommissions::load(dir.path()).unwrap();
        assert!(!d.contains("dn1"));
        d.set("dn1", true).unwrap();
        d.set("dn2", true).unwrap();
        d.set("dn2", false).unwrap();
        let d = Decommissions::load(dir.path()).unwrap();
        assert!(d.contains("dn1"));
        assert!(!d.contains("dn2"));
    }
}
