//! Listing a store's directory tree at start-up ([`walk_store`]): the counter
//! directories and the regular files in each, and indexing that listing.

use std::io;
use std::path::Path;
use std::time::Instant;

use super::counters::Counters;
use super::files::Files;
use super::StoreOptions;

/// Counter directories (relative, `/`-separated) with the regular files in each.
pub type StoreListing = Vec<(String, Vec<String>)>;

/// Every counter directory under `root` (relative, `/`-separated) with its regular
/// files; names starting with `.` are skipped. Logs progress every few seconds. It
/// blocks: call it from a thread that is not an executor (or `spawn_blocking`).
pub fn walk_store(root: &Path) -> io::Result<StoreListing> {
    let mut out = Vec::new();
    let mut stack = vec![(root.to_path_buf(), String::new())];
    let started = Instant::now();
    let mut last_report = Instant::now();
    let mut nfiles = 0usize;
    while let Some((dir, rel)) = stack.pop() {
        let mut files = Vec::new();
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot read store directory");
                continue;
            }
        };
        for ent in rd.flatten() {
            let name = ent.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let ft = match ent.file_type() {
                Ok(t) => t,
                Err(_) => continue,
            };
            if ft.is_dir() {
                let child = if rel.is_empty() {
                    name.clone()
                } else {
                    format!("{rel}/{name}")
                };
                stack.push((ent.path(), child));
            } else if ft.is_file() {
                files.push(name);
            }
        }
        nfiles += files.len();
        if !rel.is_empty() {
            files.sort();
            out.push((rel, files));
        }
        if last_report.elapsed().as_secs() >= 2 {
            last_report = Instant::now();
            let secs = started.elapsed().as_secs_f64();
            tracing::info!(
                directories = out.len(),
                files = nfiles,
                files_per_second = (nfiles as f64 / secs) as u64,
                "scanning store"
            );
        }
    }
    Ok(out)
}

/// Index the counters of a listing and their files: with `load_incomplete` false only
/// directories holding every retention file, and only keys the store owns. Returns the
/// number of files indexed.
pub(super) fn index_listing(
    listing: &StoreListing,
    opts: &StoreOptions,
    files: &Files,
    counters: &mut Counters,
) -> usize {
    let names: Vec<&str> = opts.retentions.iter().map(|r| r.name.as_str()).collect();
    let mut nfiles = 0usize;
    for (dir, dir_files) in listing.iter() {
        let complete = names.iter().all(|n| dir_files.iter().any(|f| f == n));
        if !opts.load_incomplete && !complete {
            continue;
        }
        let key = dir.replace('/', ".");
        if let Some(owns) = &opts.owns {
            if !owns(&key) {
                continue;
            }
        }
        let mut slots = vec![None; names.len()];
        for f in dir_files {
            let rel = format!("{dir}/{f}");
            let id = files.add(rel.into());
            nfiles += 1;
            if let Some(i) = names.iter().position(|n| n == f) {
                slots[i] = Some(id);
            }
        }
        counters.insert(key.into(), slots);
    }
    nfiles
}
