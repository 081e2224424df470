//! The clean-close mark: a file at the store's root saying that the last process to
//! use the store closed it cleanly, so every file's header was written after its
//! pages and no slot past a file's last bucket holds anything valid.
//!
//! Loading a file otherwise reads the pages after its last bucket
//! ([`FileState::verify_tail`](crate::statfile::FileState::verify_tail)): a crash
//! between a page write and the header write leaves valid buckets there, which later
//! writes must merge into. Those are up to two 8 KiB pages a file, most of the page
//! reads of a restart over hundreds of thousands of files; after a clean close they are
//! known to hold nothing.
//!
//! The daemon takes the mark at start-up before any write (the mark is gone at once,
//! so a crash of this run is never taken for a clean close) and writes it after every
//! shard closed its store without error. Blocking file system calls: not for an
//! executor thread.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// The mark's name at the store's root (names starting with `.` are not counters).
pub const CLEAN_MARK: &str = ".istatd_closed_cleanly";

/// Whether the store was closed cleanly last time; removes the mark (durably) so
/// that it speaks of one close only.
pub fn take_clean_mark(root: &Path) -> io::Result<bool> {
    match fs::remove_file(root.join(CLEAN_MARK)) {
        Ok(()) => {
            File::open(root)?.sync_all()?;
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Say that the store was closed cleanly: every store over `root` flushed its files.
pub fn write_clean_mark(root: &Path) -> io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(root.join(CLEAN_MARK))?;
    f.write_all(b"closed cleanly\n")?;
    f.sync_all()?;
    File::open(root)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mark_speaks_of_one_close() {
        let dir = std::env::temp_dir().join(format!("istatd-clean-mark-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        assert!(!take_clean_mark(&dir).unwrap(), "a new store");
        write_clean_mark(&dir).unwrap();
        assert!(take_clean_mark(&dir).unwrap());
        assert!(
            !take_clean_mark(&dir).unwrap(),
            "taken: a crash now is not clean"
        );
        let _ = fs::remove_dir_all(&dir);
    }
}
