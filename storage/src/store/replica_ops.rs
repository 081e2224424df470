//! What the operations for replication (storage.md §8) and counter deletion do without
//! the store's state: checking a peer's file parameters, and the blocking moves into
//! the backup tree `<store>.bak`.

use std::io;
use std::path::{Path, PathBuf};

use super::StoreError;
use crate::format::CreateParams;

/// Refuse a file `create_file_like` must not create: a relative path that is empty,
/// absolute or has an empty, `.` or `..` component; a zero time that is not a multiple
/// of the interval; unknown flags.
pub(super) fn check_file_like(rel: &str, p: &CreateParams) -> Result<(), StoreError> {
    if rel.is_empty()
        || rel.starts_with('/')
        || rel
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(StoreError::Invalid(format!("bad relative path {rel:?}")));
    }
    if p.interval < 1 || p.zero_time % p.interval as i64 != 0 {
        return Err(StoreError::Invalid(format!(
            "{rel}: zero time not a multiple of the interval"
        )));
    }
    if p.flags & !crate::format::FLAGS_KNOWN != 0 {
        return Err(StoreError::Invalid(format!("{rel}: unknown flags")));
    }
    Ok(())
}

/// Where a file of the store at `root` goes when moved aside: `<root>.bak/<rel>`.
pub(super) fn backup_path(root: &Path, rel: &str) -> PathBuf {
    let mut bak_root = root.as_os_str().to_owned();
    bak_root.push(".bak");
    PathBuf::from(bak_root).join(rel)
}

/// Blocking: move `src` to `dst` by hard link and unlink, replacing an older `dst`.
pub(super) fn move_file(src: &Path, dst: &Path) -> io::Result<()> {
    if let Some(parent) = dst.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let _ = std::fs::remove_file(dst);
    std::fs::hard_link(src, dst)?;
    std::fs::remove_file(src)
}

/// Blocking: remove `dir` if it is empty, then each ancestor emptied by that, up to
/// `root` (exclusive).
pub(super) fn remove_empty_dirs(dir: &Path, root: &Path) {
    let mut d = dir;
    while d != root && d.starts_with(root) && std::fs::remove_dir(d).is_ok() {
        match d.parent() {
            Some(p) => d = p,
            None => break,
        }
    }
}
