//! The settings store (docs/interfaces.md §3.11; reference daemon/Settings.cpp): named
//! groups of string keys and values, one file `<dir>/<name>.set` per group.
//!
//! One store serves the whole process: every shard holds an `Arc` of it; its in-memory
//! state sits behind a `std::sync::Mutex` that is only held for map operations, never
//! across an await or a file operation. All file I/O runs on glommio's blocking pool
//! (`executor().spawn_blocking`), so the methods that touch files must run inside a
//! glommio executor; [`SettingsStore::load_all_blocking`] is the exception, meant for
//! start-up before the executors run.
//!
//! Persistence as in the reference: a change schedules a save of that group 10 s later
//! (coalescing later changes); the save writes and syncs `<name>.set.tmp` and renames
//! it over the old file (the reference removes the old file first). Admin `flush` ([`SettingsStore::flush_all`]) saves every dirty group and
//! drops the cached copies so files edited on disk are read again on next use;
//! `flush.setting` / `load.setting` act on one group. The daemon should call
//! `flush_all` before it exits (a pending delayed save dies with its executor).

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// First line of every settings file.
pub const FILE_HEADER: &str = "# istatd settings 1";
/// Files larger than this are refused.
pub const MAX_FILE: u64 = 1024 * 1024;
/// Delay between a change and its save.
pub const SAVE_DELAY: Duration = Duration::from_secs(10);

/// One group's keys and values.
pub type Values = BTreeMap<Vec<u8>, Vec<u8>>;

#[derive(Debug, Default)]
struct Group {
    values: Values,
    dirty: bool,
    save_queued: bool,
    /// Generation of the last change (process-wide counter).
    generation: u64,
}

/// The process-wide settings store.
#[derive(Debug)]
pub struct SettingsStore {
    dir: PathBuf,
    save_delay: Duration,
    groups: Mutex<HashMap<String, Group>>,
    generation: AtomicU64,
    /// Generation last written per group; serializes file writes and keeps an older
    /// snapshot from overwriting a newer one.
    disk: Arc<Mutex<HashMap<String, u64>>>,
    /// Operations since start, for `istatd.settings.*`: reads of a group (get), keys
    /// they returned (match), keys written (set), files saved (save).
    ops: [AtomicU64; 4],
}

/// Indexes of [`SettingsStore::op_totals`].
pub const OP_GET: usize = 0;
pub const OP_SET: usize = 1;
pub const OP_MATCH: usize = 2;
pub const OP_SAVE: usize = 3;

/// `istat::is_valid_settings_name`: `[A-Za-z0-9_.-]*` (empty allowed).
pub fn is_valid_name(name: &[u8]) -> bool {
    name.iter()
        .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'))
}

/// `is_valid_key` (daemon/Settings.cpp): keys with any of these bytes are ignored.
pub fn is_valid_key(key: &[u8]) -> bool {
    !key.iter()
        .any(|c| b" \r\n\t\x08\\/:;*?\"'%()[]{}~$^#=+-".contains(c))
}

/// `istat::sql_quote`.
pub fn sql_quote(s: &[u8], out: &mut Vec<u8>) {
    for &c in s {
        match c {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\'' => out.extend_from_slice(b"\\'"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'%' => out.extend_from_slice(b"\\%"),
            b'_' => out.extend_from_slice(b"\\_"),
            0 => out.extend_from_slice(b"\\0"),
            8 => out.extend_from_slice(b"\\b"),
            9 => out.extend_from_slice(b"\\t"),
            10 => out.extend_from_slice(b"\\n"),
            13 => out.extend_from_slice(b"\\r"),
            26 => out.extend_from_slice(b"\\Z"),
            _ => out.push(c),
        }
    }
}

/// `istat::sql_unquote`. NUL bytes, escaped (`\0`) or raw, vanish (the reference writes
/// each byte as a C string).
pub fn sql_unquote(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut quote = false;
    for &c in s {
        let b = if quote {
            quote = false;
            match c {
                b'r' => 13,
                b'n' => 10,
                b't' => 9,
                b'b' => 8,
                b'0' => 0,
                b'Z' => 26,
                _ => c,
            }
        } else if c == b'\\' {
            quote = true;
            continue;
        } else {
            c
        };
        if b != 0 {
            out.push(b);
        }
    }
    out
}

/// Parse a settings file (`loadSettingsPath`): lines split at LF, `#` lines and lines
/// without `=` ignored, key trimmed, value unescaped then trimmed.
pub fn parse_file(data: &[u8]) -> Values {
    let mut out = Values::new();
    for line in data.split(|&c| c == b'\n') {
        if line.is_empty() || line[0] == b'#' {
            continue;
        }
        if let Some(p) = line.iter().position(|&c| c == b'=') {
            let key = super::request::trim(&line[..p]).to_vec();
            let value = super::request::trim(&sql_unquote(&line[p + 1..])).to_vec();
            out.insert(key, value);
        }
    }
    out
}

/// The text of a settings file (empty values are not written).
pub fn render_file(values: &Values) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(FILE_HEADER.as_bytes());
    out.push(b'\n');
    for (k, v) in values {
        if !v.is_empty() {
            out.extend_from_slice(k);
            out.push(b'=');
            sql_quote(v, &mut out);
            out.push(b'\n');
        }
    }
    out
}

fn file_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.set"))
}

/// Read a settings file; with `create`, create it (with its header line) if missing or
/// empty first.
fn read_file(path: &Path, create: bool) -> io::Result<Values> {
    if create {
        let mut f = fs::OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)?;
        if f.metadata()?.len() == 0 {
            f.write_all(format!("{FILE_HEADER}\n").as_bytes())?;
        }
    }
    let meta = fs::metadata(path)?;
    if !meta.is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a file"));
    }
    if meta.len() > MAX_FILE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "file is too big",
        ));
    }
    let data = fs::read(path)?;
    if data.len() as u64 > MAX_FILE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "file is too big",
        ));
    }
    Ok(parse_file(&data))
}

/// Save a group: `<name>.set.tmp` written and synced, renamed over `<name>.set`, then
/// the directory synced. The rename replaces the old file in one step, so a crash
/// leaves either the old group or the new one. (The reference removes the old file
/// before the rename: a crash between the two loses the group.)
fn write_file(path: &Path, values: &Values) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = fs::File::create(&tmp)?;
    f.write_all(&render_file(values))?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

async fn blocking<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    glommio::executor().spawn_blocking(f).await
}

impl SettingsStore {
    /// A store over `dir` (nothing is read yet; see [`Self::load_all_blocking`]).
    pub fn new(dir: impl Into<PathBuf>) -> SettingsStore {
        SettingsStore::with_save_delay(dir, SAVE_DELAY)
    }

    /// As [`Self::new`], with another delay between a change and its save.
    pub fn with_save_delay(dir: impl Into<PathBuf>, save_delay: Duration) -> SettingsStore {
        SettingsStore {
            dir: dir.into(),
            save_delay,
            groups: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
            disk: Arc::new(Mutex::new(HashMap::new())),
            ops: Default::default(),
        }
    }

    fn count(&self, op: usize, n: u64) {
        self.ops[op].fetch_add(n, Ordering::Relaxed);
    }

    /// Totals since start: get, set, match, save (see the `OP_*` indexes).
    pub fn op_totals(&self) -> [u64; 4] {
        std::array::from_fn(|i| self.ops[i].load(Ordering::Relaxed))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Group>> {
        self.groups.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Start-up (`RealSettingsFactory` constructor): create the directory and load every
    /// `*.set` file whose name does not start with `.`. Files that cannot be read are
    /// skipped (and logged). Uses std::fs directly: call it before the executors run,
    /// or from the blocking pool. Returns how many groups were loaded.
    pub fn load_all_blocking(&self) -> io::Result<usize> {
        if let Err(e) = fs::create_dir_all(&self.dir) {
            tracing::warn!("settings: create_directories({}): {e}", self.dir.display());
        }
        let mut n = 0;
        for ent in fs::read_dir(&self.dir)? {
            let ent = ent?;
            let fname = ent.file_name();
            let Some(fname) = fname.to_str() else {
                continue;
            };
            if fname.starts_with('.') {
                continue;
            }
            let Some(name) = fname.strip_suffix(".set") else {
                continue;
            };
            match read_file(&ent.path(), false) {
                Ok(values) => {
                    self.merge(name, values);
                    n += 1;
                }
                Err(e) => tracing::error!("settings: cannot load {fname}: {e}"),
            }
        }
        Ok(n)
    }

    /// Merge loaded values into a group (creating it).
    fn merge(&self, name: &str, values: Values) {
        let mut g = self.lock();
        g.entry(name.to_string()).or_default().values.extend(values);
    }

    /// Make the group available (`RealSettingsFactory::open`): from memory, else from
    /// its file, which with `create` is created first. False: no such group, or its
    /// file cannot be read or created.
    pub async fn open(&self, name: &str, create: bool) -> bool {
        if self.lock().contains_key(name) {
            return true;
        }
        let path = file_path(&self.dir, name);
        match blocking(move || read_file(&path, create)).await {
            Ok(values) => {
                // Someone may have loaded it meanwhile: keep theirs.
                self.lock()
                    .entry(name.to_string())
                    .or_insert_with(|| Group {
                        values,
                        ..Group::default()
                    });
                true
            }
            Err(e) => {
                if create || e.kind() != io::ErrorKind::NotFound {
                    tracing::error!("settings: cannot open: {name}: {e}");
                }
                false
            }
        }
    }

    /// The keys of a loaded group matching `pattern` (§3.8) with their values; `None`
    /// when the group is not loaded.
    pub fn matching(&self, name: &str, pattern: &[u8]) -> Option<Values> {
        let found: Values = {
            let g = self.lock();
            let group = g.get(name)?;
            let pat = latin1(pattern);
            group
                .values
                .iter()
                .filter(|(k, _)| crate::pattern::pattern_match(&pat, &latin1(k)))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        };
        self.count(OP_GET, 1);
        self.count(OP_MATCH, found.len() as u64);
        Some(found)
    }

    /// Set one key of a loaded group (`RealSettings::set`): keys failing
    /// [`is_valid_key`] are ignored; an empty value deletes the key. A change schedules a
    /// save. False when the group is not loaded.
    pub fn set(self: &Arc<Self>, name: &str, key: &[u8], value: &[u8]) -> bool {
        if !is_valid_key(key) {
            return self.lock().contains_key(name);
        }
        let schedule = {
            let mut g = self.lock();
            let Some(group) = g.get_mut(name) else {
                return false;
            };
            if value.is_empty() {
                group.values.remove(key);
            } else {
                group.values.insert(key.to_vec(), value.to_vec());
            }
            group.dirty = true;
            group.generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
            self.count(OP_SET, 1);
            !std::mem::replace(&mut group.save_queued, true)
        };
        if schedule {
            let me = Arc::clone(self);
            let name = name.to_string();
            glommio::spawn_local(async move {
                glommio::timer::sleep(me.save_delay).await;
                me.save(&name, false).await;
            })
            .detach();
        }
        true
    }

    /// Save a group if dirty; with `drop_after`, drop it from memory afterwards unless it
    /// changed meanwhile.
    async fn save(&self, name: &str, drop_after: bool) {
        let snapshot = {
            let mut g = self.lock();
            let Some(group) = g.get_mut(name) else {
                return;
            };
            group.save_queued = false;
            if !group.dirty {
                if drop_after {
                    g.remove(name);
                }
                return;
            }
            group.dirty = false;
            (group.generation, group.values.clone())
        };
        let (generation, values) = snapshot;
        let path = file_path(&self.dir, name);
        let disk = Arc::clone(&self.disk);
        let key = name.to_string();
        let res = blocking(move || {
            let mut written = disk.lock().unwrap_or_else(|e| e.into_inner());
            if written.get(&key).is_some_and(|&w| w > generation) {
                return Ok(());
            }
            write_file(&path, &values)?;
            written.insert(key, generation);
            Ok::<(), io::Error>(())
        })
        .await;
        if res.is_ok() {
            self.count(OP_SAVE, 1);
        }
        let mut g = self.lock();
        if let Err(e) = res {
            tracing::error!("settings: cannot save {name}: {e}");
            if let Some(group) = g.get_mut(name) {
                group.dirty = true;
            }
            return;
        }
        if drop_after {
            if let Some(group) = g.get(name) {
                if group.generation == generation && !group.dirty {
                    g.remove(name);
                }
            }
        }
    }

    /// Admin `flush`: save every dirty group, then drop the cached groups (so edited
    /// files are read again on next use).
    pub async fn flush_all(&self) {
        let names: Vec<String> = self.lock().keys().cloned().collect();
        for name in names {
            self.save(&name, true).await;
        }
    }

    /// Admin `flush.setting NAME`: save that group if dirty and drop it from memory.
    pub async fn flush_one(&self, name: &str) {
        self.save(name, true).await;
    }

    /// Admin `load.setting NAME`: read `NAME.set` again and merge it into memory (an
    /// error is only logged).
    pub async fn load_one(&self, name: &str) {
        let path = file_path(&self.dir, name);
        match blocking(move || read_file(&path, false)).await {
            Ok(values) => self.merge(name, values),
            Err(e) => tracing::error!("settings: cannot load: {name}: {e}"),
        }
    }
}

/// Bytes as Latin-1 text: a bijection that keeps `*`, `?`, `.` and every other ASCII
/// byte, so the §3.8 matcher works on arbitrary bytes.
pub fn latin1(b: &[u8]) -> String {
    b.iter().map(|&c| c as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_round_trip() {
        let v = b"a\\b'c\"d%e_f\x08\t\n\r\x1a g".to_vec();
        let mut q = Vec::new();
        sql_quote(&v, &mut q);
        assert_eq!(q, b"a\\\\b\\'c\\\"d\\%e\\_f\\b\\t\\n\\r\\Z g");
        assert_eq!(sql_unquote(&q), v);
        assert_eq!(sql_unquote(b"x\\0y\0z\\"), b"xyz");
    }

    #[test]
    fn file_format() {
        let mut v = Values::new();
        v.insert(b"b.key".to_vec(), b"x_y".to_vec());
        v.insert(b"a.key".to_vec(), b"1".to_vec());
        v.insert(b"gone".to_vec(), Vec::new());
        let text = render_file(&v);
        assert_eq!(text, b"# istatd settings 1\na.key=1\nb.key=x\\_y\n");
        let back = parse_file(&text);
        assert_eq!(back.len(), 2);
        assert_eq!(back[&b"b.key"[..]], b"x_y");
        let odd = parse_file(b"#c\n no equals \n k = v \r\n=e\n");
        assert_eq!(odd[&b"k"[..]], b"v");
        assert_eq!(odd[&b""[..]], b"e");
        assert_eq!(odd.len(), 2);
    }

    #[test]
    fn a_save_replaces_the_group_and_leaves_no_temporary_file() {
        let dir = std::env::temp_dir().join(format!("istatd-settings-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("g.set");
        let mut v = Values::new();
        v.insert(b"k".to_vec(), b"old".to_vec());
        write_file(&path, &v).unwrap();
        v.insert(b"k".to_vec(), b"new".to_vec());
        write_file(&path, &v).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"# istatd settings 1\nk=new\n");
        assert!(!dir.join("g.set.tmp").exists());
        // A save that cannot write its temporary file leaves the group as it was.
        fs::create_dir(dir.join("g.set.tmp")).unwrap();
        v.insert(b"k".to_vec(), b"lost".to_vec());
        assert!(write_file(&path, &v).is_err());
        assert_eq!(fs::read(&path).unwrap(), b"# istatd settings 1\nk=new\n");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn reads_count_a_get_and_the_keys_they_match() {
        let dir = std::env::temp_dir().join(format!("istatd-settings-ops-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join("g.set"),
            "# istatd settings 1\na.x=1\na.y=2\nb=3\n",
        )
        .unwrap();
        let store = SettingsStore::new(&dir);
        assert_eq!(store.load_all_blocking().unwrap(), 1);
        assert_eq!(store.op_totals(), [0; 4]);
        assert_eq!(store.matching("g", b"a.*").unwrap().len(), 2);
        assert_eq!(store.matching("g", b"none").unwrap().len(), 0);
        assert!(store.matching("absent", b"*").is_none());
        let t = store.op_totals();
        assert_eq!(
            (t[OP_GET], t[OP_MATCH], t[OP_SET], t[OP_SAVE]),
            (2, 2, 0, 0)
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn names_and_keys() {
        assert!(is_valid_name(b""));
        assert!(is_valid_name(b"a-b_c.d9"));
        assert!(!is_valid_name(b"../x"));
        assert!(!is_valid_name(b"a/b"));
        assert!(is_valid_key(b"first.key"));
        assert!(!is_valid_key(b"a-b"));
        assert!(!is_valid_key(b"a b"));
    }
}
