//! Rack resolution: the topology file (`ADDRESS_OR_HOST RACK` per line)
//! wins over a datanode's own `--rack`; unmapped nodes get
//! [`DEFAULT_RACK`].

use std::collections::HashMap;
use std::path::Path;

use crate::error::{Error, Result};

/// Rack of a node nobody placed.
pub const DEFAULT_RACK: &str = "/default-rack";

/// The address/host → rack table.
#[derive(Debug, Clone, Default)]
pub struct Topology {
    map: HashMap<String, String>,
}

impl Topology {
    /// Reads a topology file. Blank lines and `#` comments are ignored.
    pub fn load(path: &Path) -> Result<Topology> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Topology {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Topology::parse(&text).map_err(|message| Error::Topology {
            path: path.display().to_string(),
            message,
        })
    }

    /// Parses the text of a topology file.
    pub fn parse(text: &str) -> std::result::Result<Topology, String> {
        let mut map = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let mut words = line.split_whitespace();
            let (Some(node), Some(rack), None) = (words.next(), words.next(), words.next()) else {
                return Err(format!(
                    "line {}: expected 'ADDRESS_OR_HOST RACK', got '{line}'",
                    n + 1
                ));
            };
            map.insert(
                node.to_string(),
                normalize_rack(rack).map_err(|m| format!("line {}: {m}", n + 1))?,
            );
        }
        Ok(Topology { map })
    }

    /// The rack of a datanode at `address` (host:port) that named
    /// `own_rack` itself: the file's entry for the address, else for the
    /// host, else its own rack, else [`DEFAULT_RACK`].
    pub fn resolve(&self, address: &str, own_rack: &str) -> String {
        if let Some(r) = self.map.get(address) {
            return r.clone();
        }
        if let Some(r) = self.map.get(host_of(address)) {
            return r.clone();
        }
        normalize_rack(own_rack).unwrap_or_else(|_| DEFAULT_RACK.to_string())
    }
}

/// The host part of `host:port` (IPv6 brackets removed).
pub fn host_of(address: &str) -> &str {
    let host = match address.rfind(':') {
        Some(i) if !address[..i].contains(':') || address.starts_with('[') => &address[..i],
        _ => address,
    };
    host.trim_start_matches('[').trim_end_matches(']')
}

/// Checks and normalizes a rack path: `/dc1/rack2`, no empty components.
pub fn normalize_rack(rack: &str) -> std::result::Result<String, String> {
    if rack.is_empty() {
        return Ok(DEFAULT_RACK.to_string());
    }
    if !rack.starts_with('/') {
        return Err(format!("rack '{rack}' must start with '/'"));
    }
    let parts: Vec<&str> = rack.split('/').filter(|p| !p.is_empty()).collect();
    if parts.is_empty() {
        return Ok(DEFAULT_RACK.to_string());
    }
    Ok(format!("/{}", parts.join("/")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_wins_over_flag() {
        let t = Topology::parse("# racks\n127.0.0.1:9101 /r1\n127.0.0.2 /r2/\n\n").unwrap();
        assert_eq!(t.resolve("127.0.0.1:9101", "/own"), "/r1");
        assert_eq!(t.resolve("127.0.0.1:9102", "/own"), "/own");
        assert_eq!(t.resolve("127.0.0.2:9101", "/own"), "/r2");
        assert_eq!(t.resolve("127.0.0.3:9101", ""), DEFAULT_RACK);
        assert!(Topology::parse("a b c").is_err());
        assert!(Topology::parse("a rack").is_err());
    }

    #[test]
    fn hosts() {
        assert_eq!(host_of("127.0.0.1:9101"), "127.0.0.1");
        assert_eq!(host_of("[::1]:9101"), "::1");
        assert_eq!(host_of("node1"), "node1");
    }
}
