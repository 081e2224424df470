//! Log output through `tracing`: one line per event to the log file (reopened on
//! SIGHUP, so rotation by rename works) or to stdout (`--log-file -`, for journald and
//! containers), and warnings and errors to stderr too.
//!
//! Why a writer thread: an executor that logs must not wait for the disk. Once the
//! daemon has forked (`--daemonize`), [`LogControl::start_writer`] moves the file writes
//! to a thread of their own; a line goes there through a bounded queue, and a line that
//! finds the queue full is dropped and counted (the count is logged when there is room
//! again), never waited for. Before that, lines are written in place: threads do not
//! survive the fork.
//!
//! Levels: istatd's 0 (errors) to 5 (spam), for the file and for stderr, set at start
//! (`--log-level`; stderr: warnings) and at run time by the admin `loglevel` command.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tracing::Level;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, Registry};

/// Lines waiting for the writer thread at most.
const QUEUE_LINES: usize = 16 * 1024;

/// Asks the log writer to reopen its file before the next line (SIGHUP).
#[derive(Debug, Clone, Default)]
pub struct Reopen(Arc<AtomicBool>);

impl Reopen {
    pub fn request(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    fn take(&self) -> bool {
        self.0.swap(false, Ordering::SeqCst)
    }
}

/// The daemon's log level (`--log-level`: 0 error … 4 and 5 spam) as a tracing level.
pub fn level_of(log_level: i32) -> Level {
    match log_level {
        i32::MIN..=0 => Level::ERROR,
        1 => Level::WARN,
        2 => Level::INFO,
        3 => Level::DEBUG,
        _ => Level::TRACE,
    }
}

/// Where the lines go.
enum Dest {
    /// The log file's path and its open handle (None after a failed reopen).
    File(PathBuf, Option<File>),
    Stdout,
}

impl Dest {
    fn write_line(&mut self, line: &[u8]) {
        match self {
            Dest::File(_, Some(f)) => {
                let _ = f.write_all(line);
            }
            Dest::File(_, None) => {}
            Dest::Stdout => {
                let _ = io::stdout().lock().write_all(line);
            }
        }
    }

    fn reopen(&mut self) {
        if let Dest::File(p, f) = self {
            *f = open_append(p);
        }
    }
}

fn open_append(p: &Path) -> Option<File> {
    OpenOptions::new().create(true).append(true).open(p).ok()
}

enum Msg {
    Line(Vec<u8>),
    /// Answer once every line before this one is written.
    Flush(SyncSender<()>),
}

/// What every writer shares: the destination, the levels, the writer thread's queue.
struct Shared {
    dest: Mutex<Dest>,
    to_stderr: bool,
    reopen: Reopen,
    /// istatd levels (0-5) of the file and of stderr.
    file_level: AtomicU8,
    stderr_level: AtomicU8,
    queue: OnceLock<SyncSender<Msg>>,
    dropped: AtomicU64,
}

impl Shared {
    fn write_now(&self, line: &[u8]) {
        let mut d = self.dest.lock().unwrap_or_else(|e| e.into_inner());
        if self.reopen.take() {
            d.reopen();
        }
        d.write_line(line);
    }

    fn send(&self, line: &[u8]) {
        let Some(q) = self.queue.get() else {
            return self.write_now(line);
        };
        match q.try_send(Msg::Line(line.to_vec())) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Disconnected(_)) => self.write_now(line),
        }
    }

    fn run_writer(&self, rx: Receiver<Msg>) {
        for m in rx {
            match m {
                Msg::Line(line) => {
                    let dropped = self.dropped.swap(0, Ordering::Relaxed);
                    if dropped > 0 {
                        let note =
                            format!("(log: {dropped} lines dropped, the writer was behind)\n");
                        self.write_now(note.as_bytes());
                    }
                    self.write_now(&line);
                }
                Msg::Flush(done) => {
                    let _ = done.send(());
                }
            }
        }
    }
}

/// The running log: reopen on SIGHUP, levels, the writer thread.
#[derive(Clone)]
pub struct LogControl {
    shared: Arc<Shared>,
    filter: Option<reload::Handle<LevelFilter, Registry>>,
}

impl std::fmt::Debug for LogControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (file, stderr) = self.levels();
        write!(f, "LogControl(file {file}, stderr {stderr})")
    }
}

impl Default for LogControl {
    /// A log that is not installed: levels are kept, lines go nowhere (tests that build
    /// a server configuration by hand).
    fn default() -> Self {
        LogControl {
            shared: Arc::new(Shared {
                dest: Mutex::new(Dest::File(PathBuf::new(), None)),
                to_stderr: false,
                reopen: Reopen::default(),
                file_level: AtomicU8::new(2),
                stderr_level: AtomicU8::new(1),
                queue: OnceLock::new(),
                dropped: AtomicU64::new(0),
            }),
            filter: None,
        }
    }
}

impl LogControl {
    /// The SIGHUP handle.
    pub fn reopen(&self) -> Reopen {
        self.shared.reopen.clone()
    }

    /// (file, stderr) levels, 0-5.
    pub fn levels(&self) -> (u8, u8) {
        (
            self.shared.file_level.load(Ordering::Relaxed),
            self.shared.stderr_level.load(Ordering::Relaxed),
        )
    }

    pub fn set_file_level(&self, level: u8) {
        self.shared
            .file_level
            .store(level.min(5), Ordering::Relaxed);
        self.refilter();
    }

    pub fn set_stderr_level(&self, level: u8) {
        self.shared
            .stderr_level
            .store(level.min(5), Ordering::Relaxed);
        self.refilter();
    }

    /// The subscriber lets through what either destination wants.
    fn refilter(&self) {
        let (file, stderr) = self.levels();
        let most = if self.shared.to_stderr {
            file.max(stderr)
        } else {
            file
        };
        if let Some(h) = &self.filter {
            let _ = h.reload(LevelFilter::from_level(level_of(i32::from(most))));
        }
    }

    /// Move file writes to a thread of their own (after the fork of `--daemonize`).
    pub fn start_writer(&self) {
        if self.shared.queue.get().is_some() {
            return;
        }
        let (tx, rx) = mpsc::sync_channel(QUEUE_LINES);
        let shared = self.shared.clone();
        let spawned = std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || shared.run_writer(rx));
        if spawned.is_ok() {
            let _ = self.shared.queue.set(tx);
        }
    }

    /// Wait (up to 2 s) until every line logged so far is written.
    pub fn flush(&self) {
        if let Some(q) = self.shared.queue.get() {
            let (tx, rx) = mpsc::sync_channel(1);
            if q.send(Msg::Flush(tx)).is_ok() {
                let _ = rx.recv_timeout(Duration::from_secs(2));
            }
        }
    }
}

/// One event's writer: to the file (or stdout) and to stderr, each when the event's
/// level is within that destination's level.
struct Tee {
    shared: Arc<Shared>,
    file: bool,
    stderr: bool,
}

impl Write for Tee {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.file {
            self.shared.send(buf);
        }
        if self.stderr {
            let _ = io::stderr().write_all(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct Writers(Arc<Shared>);

impl<'a> MakeWriter<'a> for Writers {
    type Writer = Tee;
    fn make_writer(&'a self) -> Tee {
        Tee {
            shared: self.0.clone(),
            file: true,
            stderr: self.0.to_stderr,
        }
    }
    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Tee {
        let within = |l: &AtomicU8| *meta.level() <= level_of(i32::from(l.load(Ordering::Relaxed)));
        Tee {
            shared: self.0.clone(),
            file: within(&self.0.file_level),
            stderr: self.0.to_stderr && within(&self.0.stderr_level),
        }
    }
}

/// Install the global subscriber. `file`: the log file, `-` for stdout (then nothing is
/// copied to stderr: one stream for journald or a container runtime).
pub fn init(file: &Path, log_level: i32) -> LogControl {
    let stdout = file.as_os_str() == "-";
    let dest = if stdout {
        Dest::Stdout
    } else {
        Dest::File(file.to_path_buf(), open_append(file))
    };
    let shared = Arc::new(Shared {
        dest: Mutex::new(dest),
        to_stderr: !stdout,
        reopen: Reopen::default(),
        file_level: AtomicU8::new(log_level.clamp(0, 5) as u8),
        stderr_level: AtomicU8::new(1),
        queue: OnceLock::new(),
        dropped: AtomicU64::new(0),
    });
    let (filter, handle) = reload::Layer::new(LevelFilter::TRACE);
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_target(false)
        .with_writer(Writers(shared.clone()));
    let _ = Registry::default().with(filter).with(fmt).try_init();
    let log = LogControl {
        shared,
        filter: Some(handle),
    };
    log.refilter();
    log
}
