//! What the operations for replication (storage.md §8) and counter deletion do without
//! the store's state: checking a peer's file parameters, moving files into the backup
//! tree `<store>.bak`, and removing emptied directories.

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

/// Move a file of the store at `root` to the backup tree, `<root>.bak/<rel>`, by hard
/// link and unlink, replacing an older copy there.
pub(super) async fn move_to_backup(root: &Path, rel: &str) -> Result<(), StoreError> {
    let src = root.join(rel);
    let mut bak_root = root.as_os_str().to_owned();
    bak_root.push(".bak");
    let dst = PathBuf::from(bak_root).join(rel);
    glommio::executor()
        .spawn_blocking(move || -> io::Result<()> {
            if let Some(parent) = dst.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let _ = std::fs::remove_file(&dst);
            std::fs::hard_link(&src, &dst)?;
            std::fs::remove_file(&src)
        })
        .await
        .map_err(StoreError::Io)
}

/// After a counter's files were moved aside: its directory goes if it is empty now, and
/// so do emptied ancestors up to the store root (a parent that is still a counter keeps
/// its files).
pub(super) async fn remove_emptied_dirs(dir: PathBuf, root: &Path) {
    let root = root.to_path_buf();
    let _ = glommio::executor()
        .spawn_blocking(move || {
            let mut d = dir.as_path();
            while d != root && d.starts_with(&root) && std::fs::remove_dir(d).is_ok() {
                match d.parent() {
                    Some(p) => d = p,
                    None => break,
                }
            }
        })
        .await;
}
