//! Late marks on disk (docs/replication-protocol.md, "Master: discovery and answering"):
//! `<store>/.replication_late` lists, per file, the lowest bucket written late and when, so
//! that a slave resuming after a restart of either side is sent what landed below its
//! resume overlap.
//!
//! The file is read once at start-up (before the shards run) and each shard is handed
//! the marks of its own files; while running, the shards publish their marks to the
//! coordinator, which writes a checkpoint at most once a minute; at a clean stop each
//! shard gives back its final marks and the main thread writes them as `clean`.

use std::path::{Path, PathBuf};

use super::control::write_marker;
use super::messages::Mark;
use crate::clock;

pub const LATE_FILE: &str = ".replication_late";
const LATE_HEADER: &str = "istatd-replication-late 1";
/// Checkpoints of changed marks are written at most this often.
pub const LATE_CHECKPOINT_SECS: i64 = 60;

/// What the store said at start-up.
#[derive(Debug, Clone, Default)]
pub struct LateStart {
    pub root: Option<PathBuf>,
    /// The live marks of the files each shard owns, by shard.
    pub per_shard: Vec<Vec<Mark>>,
    /// The previous run did not end cleanly.
    pub unclean: bool,
}

impl LateStart {
    pub fn empty(shards: usize) -> LateStart {
        LateStart {
            root: None,
            per_shard: vec![Vec::new(); shards.max(1)],
            unclean: false,
        }
    }
}

/// Read `.replication_late` at start-up of a master (plain file I/O): keep the live
/// marks of files the store holds, note an unclean previous run (the file missing from
/// a store that has counters, or written as a checkpoint), and write the kept marks
/// back as a checkpoint.
pub fn load(root: &Path, late_window: u32, shards: usize) -> LateStart {
    let now = clock::now();
    let text = std::fs::read_to_string(root.join(LATE_FILE)).ok();
    let store_has_files = std::fs::read_dir(root).is_ok_and(|mut d| {
        d.any(|e| e.is_ok_and(|e| !e.file_name().as_encoded_bytes().starts_with(b".")))
    });
    let mut start = LateStart::empty(shards);
    start.root = Some(root.to_path_buf());
    let clean = match &text {
        None => !store_has_files,
        Some(t) => {
            let mut lines = t.lines();
            let first = lines.next().unwrap_or("");
            for l in lines {
                let mut w = l.split(' ');
                let (Some(p), Some(low), Some(at)) = (w.next(), w.next(), w.next()) else {
                    continue;
                };
                let (Ok(low), Ok(at)) = (low.parse::<u32>(), at.parse::<u32>()) else {
                    continue;
                };
                if now - at as i64 > late_window as i64
                    || !istatd_replication::name::is_valid_name(p.as_bytes())
                    || !root.join(p).is_file()
                {
                    continue;
                }
                let owner = super::owner_of(p.as_bytes(), shards);
                start.per_shard[owner].push((p.into(), low, at));
            }
            first.starts_with(&format!("{LATE_HEADER} clean"))
        }
    };
    if !clean {
        tracing::warn!(
            "the previous run did not end cleanly ({LATE_FILE} missing or a checkpoint): \
             late writes recorded in its last minute, and writes it had not flushed, may \
             differ on its slaves (docs/replication-protocol.md, residual risks 1 and 2)"
        );
    }
    start.unclean = !clean;
    let all: Vec<&Mark> = start.per_shard.iter().flatten().collect();
    if let Err(e) = write(root, "checkpoint", all) {
        tracing::error!(error = %e, "cannot write {LATE_FILE}");
    }
    start
}

/// Write `.replication_late` (`kind` is `clean` or `checkpoint`): temporary file,
/// fsync, rename, fsync of the directory. Blocking: call it off the executors.
pub fn write<'a>(
    root: &Path,
    kind: &str,
    marks: impl IntoIterator<Item = &'a Mark>,
) -> std::io::Result<()> {
    let mut text = format!("{LATE_HEADER} {kind} {}\n", clock::now());
    for (p, low, at) in marks {
        text.push_str(&format!("{p} {low} {at}\n"));
    }
    write_marker(root, LATE_FILE, &text)
}

/// The coordinator's copy of every shard's marks, written as checkpoints.
#[derive(Debug)]
pub struct LateBook {
    root: Option<PathBuf>,
    per_shard: Vec<Vec<Mark>>,
    dirty: bool,
    unclean: bool,
}

impl LateBook {
    pub fn new(start: &LateStart) -> LateBook {
        LateBook {
            root: start.root.clone(),
            per_shard: start.per_shard.clone(),
            dirty: false,
            unclean: start.unclean,
        }
    }

    pub fn publish(&mut self, shard: usize, marks: Vec<Mark>) {
        if self.per_shard.len() <= shard {
            self.per_shard.resize(shard + 1, Vec::new());
        }
        self.per_shard[shard] = marks;
        self.dirty = true;
    }

    pub fn unclean_starts(&self) -> u64 {
        u64::from(self.unclean)
    }

    /// What a checkpoint should write now, if anything changed since the last one.
    pub fn take_checkpoint(&mut self) -> Option<(PathBuf, Vec<Mark>)> {
        let root = self.root.clone()?;
        if !std::mem::take(&mut self.dirty) {
            return None;
        }
        Some((root, self.per_shard.iter().flatten().cloned().collect()))
    }
}

/// Write a checkpoint taken from the book, off the executor.
pub async fn write_checkpoint(root: PathBuf, marks: Vec<Mark>) {
    let r = glommio::executor()
        .spawn_blocking(move || write(&root, "checkpoint", &marks))
        .await;
    if let Err(e) = r {
        tracing::error!(error = %e, "cannot write {LATE_FILE}");
    }
}
