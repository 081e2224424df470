//! The host blacklist (docs/interfaces.md §2.10).

use std::collections::HashSet;

/// The host blacklist (docs/interfaces.md §2.10, reference `daemon/Blacklist.cpp`): the set
/// of lines of the file, lower-cased, not trimmed, empty lines skipped. A connection is
/// blacklisted when the lower-cased value of its meta record's `hostname` key (a
/// trimmed meta value, §2.7) is exactly one of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Blacklist {
    hosts: HashSet<Vec<u8>>,
}

impl Blacklist {
    /// Parse the file's text.
    pub fn parse(text: &str) -> Blacklist {
        Self::parse_bytes(text.as_bytes())
    }

    /// Parse the file's bytes (the reference does not care about encodings: a line is
    /// the bytes between LFs; a CR before an LF stays part of the name).
    pub fn parse_bytes(bytes: &[u8]) -> Blacklist {
        let hosts = bytes
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| l.to_ascii_lowercase())
            .collect();
        Blacklist { hosts }
    }

    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// Whether `hostname` (a meta `hostname` value) is blacklisted: compared after ASCII
    /// lower-casing, exactly (no trimming, no pattern). The caller counts
    /// `istatd.blacklist.count` on a hit.
    pub fn contains(&self, hostname: impl AsRef<[u8]>) -> bool {
        let h = hostname.as_ref();
        if self.hosts.is_empty() {
            return false;
        }
        if h.iter().any(u8::is_ascii_uppercase) {
            self.hosts.contains(&h.to_ascii_lowercase())
        } else {
            self.hosts.contains(h)
        }
    }
}
