//! Absolute path parsing and validation, shared by the namenode (which
//! enforces it) and the client (which fails early with the same message).
//!
//! A valid path starts with `/`, has components separated by single or
//! repeated `/`, and no component is empty after normalisation, `.`, `..`,
//! longer than 255 bytes or contains NUL.

use crate::defaults::{MAX_NAME_LEN, MAX_PATH_DEPTH, MAX_PATH_LEN};

/// Why a path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path does not start with `/`.
    #[error("path '{0}' is not absolute (it must start with '/')")]
    NotAbsolute(String),
    /// The path contains a NUL byte.
    #[error("path '{0}' contains a NUL byte")]
    Nul(String),
    /// A component is `.` or `..`.
    #[error("path '{0}' contains '.' or '..' as a component")]
    DotComponent(String),
    /// A component is longer than 255 bytes.
    #[error("path '{path}' has a name longer than {MAX_NAME_LEN} bytes ({len} bytes)")]
    NameTooLong {
        /// The path as given.
        path: String,
        /// Length of the long component.
        len: usize,
    },
    /// The whole path is too long or too deep.
    #[error("path '{0}…' is longer than {MAX_PATH_LEN} bytes or deeper than {MAX_PATH_DEPTH} components")]
    TooLong(String),
}

/// Splits a valid absolute path into its components (`/` gives none).
pub fn components(path: &str) -> Result<Vec<&str>, PathError> {
    if path.len() > MAX_PATH_LEN {
        return Err(PathError::TooLong(path.chars().take(64).collect()));
    }
    if !path.starts_with('/') {
        return Err(PathError::NotAbsolute(path.to_string()));
    }
    if path.contains('\0') {
        return Err(PathError::Nul(path.replace('\0', "\\0")));
    }
    let mut out = Vec::new();
    for name in path.split('/').filter(|c| !c.is_empty()) {
        if name == "." || name == ".." {
            return Err(PathError::DotComponent(path.to_string()));
        }
        if name.len() > MAX_NAME_LEN {
            return Err(PathError::NameTooLong {
                path: path.to_string(),
                len: name.len(),
            });
        }
        out.push(name);
    }
    if out.len() > MAX_PATH_DEPTH {
        return Err(PathError::TooLong(path.chars().take(64).collect()));
    }
    Ok(out)
}

/// Checks one name (a single component) for use in a directory.
pub fn validate_name(name: &str) -> Result<(), PathError> {
    if name.is_empty() || name.contains('/') {
        return Err(PathError::NotAbsolute(name.to_string()));
    }
    components(&format!("/{name}")).map(|_| ())
}

/// The normal form of a valid path: `/a/b` without repeated or trailing `/`.
pub fn normalize(path: &str) -> Result<String, PathError> {
    let parts = components(path)?;
    if parts.is_empty() {
        return Ok("/".to_string());
    }
    let mut out = String::with_capacity(path.len());
    for p in parts {
        out.push('/');
        out.push_str(p);
    }
    Ok(out)
}

/// Joins a directory path and a child name.
pub fn join(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// The reserved top-level name: `/.reserved` holds no files; below it,
/// [`INODES_DIR`] names inodes by id.
pub const RESERVED_DIR: &str = "/.reserved";

/// HDFS's inode paths: `/.reserved/.inodes/ID` names inode `ID` wherever
/// it is now, and `/.reserved/.inodes/ID/NAME` the entry `NAME` of
/// directory `ID`. A client that knows an inode (the FUSE mount) addresses
/// it so, and a rename of it or of a directory above it by another client
/// cannot make the call act on whatever took its old path.
pub const INODES_DIR: &str = "/.reserved/.inodes";

/// The inode path of inode `id` ([`INODES_DIR`]), or of its entry `name`.
pub fn inode_path(id: u64, name: Option<&str>) -> String {
    match name {
        Some(n) => format!("{INODES_DIR}/{id}/{n}"),
        None => format!("{INODES_DIR}/{id}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_and_normalizes() {
        assert_eq!(components("/").unwrap(), Vec::<&str>::new());
        assert_eq!(normalize("//a///b/").unwrap(), "/a/b");
        assert_eq!(join("/", "x"), "/x");
        assert_eq!(join("/a", "x"), "/a/x");
    }

    #[test]
    fn rejects_bad_paths() {
        assert!(matches!(components("a/b"), Err(PathError::NotAbsolute(_))));
        assert!(matches!(components(""), Err(PathError::NotAbsolute(_))));
        assert!(matches!(components("/a/\0b"), Err(PathError::Nul(_))));
        assert!(matches!(
            components("/a/../b"),
            Err(PathError::DotComponent(_))
        ));
        assert!(matches!(
            components("/a/./b"),
            Err(PathError::DotComponent(_))
        ));
        let long = format!("/{}", "x".repeat(256));
        assert!(matches!(
            components(&long),
            Err(PathError::NameTooLong { len: 256, .. })
        ));
        assert!(components(&format!("/{}", "x".repeat(255))).is_ok());
        let deep = "/a".repeat(MAX_PATH_DEPTH + 1);
        assert!(matches!(components(&deep), Err(PathError::TooLong(_))));
    }

    proptest! {
        #[test]
        fn never_panics_and_normal_form_is_stable(s in "\\PC{0,64}") {
            if let Ok(n) = normalize(&s) {
                prop_assert_eq!(normalize(&n).unwrap(), n.clone());
                prop_assert!(n.starts_with('/'));
                prop_assert!(!n.contains("//"));
            }
        }

        #[test]
        fn valid_components_roundtrip(parts in proptest::collection::vec("[a-zA-Z0-9_ -]{1,20}", 0..10)) {
            let parts: Vec<String> = parts.into_iter().filter(|p| p != "." && p != "..").collect();
            let path = format!("/{}", parts.join("/"));
            let got = components(&path).unwrap();
            prop_assert_eq!(got, parts.iter().map(|s| s.as_str()).collect::<Vec<_>>());
        }
    }
}
