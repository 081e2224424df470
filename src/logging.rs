//! Log output through `tracing`: one line per event to the log file (reopened on
//! SIGHUP, so rotation by rename works) and warnings and errors to stderr.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tracing::Level;
use tracing_subscriber::fmt::MakeWriter;

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

/// The daemon's log level (`--log-level`: 0 error … 4 spam) as a tracing level.
pub fn level_of(log_level: i32) -> Level {
    match log_level {
        i32::MIN..=0 => Level::ERROR,
        1 => Level::WARN,
        2 => Level::INFO,
        3 => Level::DEBUG,
        _ => Level::TRACE,
    }
}

/// The log file's path and its open handle (None after a failed reopen).
type LogFile = Arc<Mutex<(PathBuf, Option<File>)>>;

#[derive(Clone)]
struct Sink {
    file: Option<LogFile>,
    reopen: Reopen,
}

fn open_append(p: &PathBuf) -> Option<File> {
    OpenOptions::new().create(true).append(true).open(p).ok()
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(f) = &self.file {
            let mut g = f.lock().unwrap_or_else(|e| e.into_inner());
            if self.reopen.take() {
                let path = g.0.clone();
                g.1 = open_append(&path);
            }
            if let Some(file) = g.1.as_mut() {
                let _ = file.write_all(buf);
            }
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct Both {
    file: Sink,
    stderr_level: Level,
}

/// Writes an event to the file, and to stderr when it is at or above the stderr level.
struct Tee {
    file: Sink,
    stderr: bool,
}

impl Write for Tee {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let _ = self.file.write(buf);
        if self.stderr {
            let _ = io::stderr().write_all(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Both {
    type Writer = Tee;
    fn make_writer(&'a self) -> Tee {
        Tee {
            file: self.file.clone(),
            stderr: true,
        }
    }
    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Tee {
        Tee {
            file: self.file.clone(),
            stderr: *meta.level() <= self.stderr_level,
        }
    }
}

/// Install the global subscriber. `file`: the log file (None: stderr only). The
/// handle reopens the file (log rotation by rename).
pub fn init(file: Option<PathBuf>, log_level: i32) -> Reopen {
    let reopen = Reopen::default();
    let sink = Sink {
        reopen: reopen.clone(),
        file: file.map(|p| {
            let f = open_append(&p);
            Arc::new(Mutex::new((p, f)))
        }),
    };
    let writer = Both {
        file: sink,
        stderr_level: Level::WARN,
    };
    let _ = tracing_subscriber::fmt()
        .with_max_level(level_of(log_level))
        .with_ansi(false)
        .with_target(false)
        .with_writer(writer)
        .try_init();
    reopen
}
