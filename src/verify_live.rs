//! `istatd verify --master HOST:PORT STORE_B`: compare a slave's store with a running
//! master, read over the master's replication port (docs/replication-protocol.md): connect
//! as a slave would, collect the master's Discovers, then ask each file for its valid
//! buckets from the oldest on, in chunks, and compare them with the slave's file by
//! replica equality ("Replica equality and residual risks"). The master sends only flushed
//! buckets; a file whose Request gets no answer within the quiet time holds no valid bucket
//! up to its flush. A command-line tool: plain blocking sockets.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use istatd::options::{parse_host_port, HostPortError};
use istatd_replication::pdu::{discover_name, FrameDecoder, Pdu, ProtocolError, UniqueId, VERSION};
use istatd_storage::format::{Bucket, CreateParams, FormatError, Header, HEADER_SIZE};
use istatd_storage::statfile::{FileState, ImageSlots};
use istatd_storage::verify::{compare_files, CounterFile, Finding, Report};

/// Requests outstanding at once.
const WINDOW: usize = 64;
const CHUNK: i64 = 2048;

/// Why the comparison with a live master stopped before it could be made.
#[derive(Debug)]
pub enum LiveError {
    /// `--master` is not `HOST:PORT` or `[v6addr]:PORT`.
    Address(HostPortError),
    /// The master's address did not resolve.
    Resolve { addr: String, cause: io::Error },
    /// The master's address resolved to nothing.
    NoAddress { addr: String },
    /// The connection to the master failed.
    Connect { addr: String, cause: io::Error },
    /// No slave id could be made for the handshake.
    SlaveId(io::Error),
    /// Setting the read timeout of the connection failed.
    ReadTimeout(io::Error),
    /// Writing a PDU to the master failed.
    Write(io::Error),
    /// Reading from the master failed.
    Read(io::Error),
    /// The master closed the connection.
    Closed,
    /// The master sent bytes that are not PDUs.
    Protocol(ProtocolError),
    /// The master answered the handshake with an Error PDU.
    Refused(Vec<u8>),
    /// The master answered the handshake with something else than its Connect.
    UnexpectedReply(Option<Pdu>),
    /// The master sent an Error PDU while answering the requests.
    Master(Vec<u8>),
}

impl fmt::Display for LiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LiveError::Address(e) => write!(f, "{e}"),
            LiveError::Resolve { addr, cause } => write!(f, "{addr}: {cause}"),
            LiveError::NoAddress { addr } => write!(f, "{addr}: no address"),
            LiveError::Connect { addr, cause } => write!(f, "connect to {addr}: {cause}"),
            LiveError::SlaveId(e) | LiveError::ReadTimeout(e) => write!(f, "{e}"),
            LiveError::Write(e) => write!(f, "write to the master: {e}"),
            LiveError::Read(e) => write!(f, "read from the master: {e}"),
            LiveError::Closed => f.write_str("the master closed the connection"),
            LiveError::Protocol(e) => write!(f, "from the master: {}", e.text("connected")),
            LiveError::Refused(t) => {
                write!(f, "the master refused: {}", String::from_utf8_lossy(t))
            }
            LiveError::UnexpectedReply(pdu) => write!(f, "unexpected handshake reply: {pdu:?}"),
            LiveError::Master(t) => write!(f, "the master: {}", String::from_utf8_lossy(t)),
        }
    }
}

impl std::error::Error for LiveError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LiveError::Address(e) => Some(e),
            LiveError::Resolve { cause, .. } | LiveError::Connect { cause, .. } => Some(cause),
            LiveError::SlaveId(e)
            | LiveError::ReadTimeout(e)
            | LiveError::Write(e)
            | LiveError::Read(e) => Some(e),
            _ => None,
        }
    }
}

impl From<HostPortError> for LiveError {
    fn from(e: HostPortError) -> Self {
        LiveError::Address(e)
    }
}

struct Link {
    s: TcpStream,
    dec: FrameDecoder,
    buf: Vec<u8>,
    ready: VecDeque<Pdu>,
}

impl Link {
    fn send(&mut self, p: &Pdu) -> Result<(), LiveError> {
        self.s.write_all(&p.to_frame()).map_err(LiveError::Write)
    }

    /// The next PDU, or None after `wait` without one.
    fn next(&mut self, wait: Duration) -> Result<Option<Pdu>, LiveError> {
        let end = Instant::now() + wait;
        loop {
            if let Some(p) = self.ready.pop_front() {
                return Ok(Some(p));
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            self.s
                .set_read_timeout(Some(left.min(Duration::from_millis(200))))
                .map_err(LiveError::ReadTimeout)?;
            match self.s.read(&mut self.buf) {
                Ok(0) => return Err(LiveError::Closed),
                Ok(n) => {
                    let mut out = Vec::new();
                    let r = self.dec.feed(&self.buf[..n], &mut out);
                    self.ready.extend(out);
                    if let Err(e) = r {
                        return Err(LiveError::Protocol(e));
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(LiveError::Read(e)),
            }
        }
    }
}

/// A master file rebuilt from its Discover header and the buckets it sent.
fn master_image(h: &Header, buckets: &[Bucket]) -> Result<CounterFile, FormatError> {
    let p = CreateParams {
        interval: h.cfg_interval,
        page_count: h.page_count,
        flags: h.flags,
        zero_time: h.file_create_time,
        lambda: h.lambda,
        season: h.season,
        fixed_count: h.fixed_count,
        unit: String::new(),
        name: String::new(),
    };
    let page = h.page_size.max(512) as usize;
    let mut st = FileState::new_created(Header::new_file(&p));
    let mut img = vec![0u8; page * (h.page_count.max(1) as usize + 1)];
    let mut slots = ImageSlots {
        image: &mut img,
        page_size: page as i64,
    };
    st.put_overwrite(&mut slots, buckets);
    st.absorb_overlay(&mut slots);
    img[..HEADER_SIZE].copy_from_slice(&st.header.to_bytes());
    CounterFile::from_bytes(img)
}

/// Compare `slave_root` with the master at `addr`.
pub fn verify_live(
    addr: &str,
    slave_root: &Path,
    exclude: &[PathBuf],
    quiet: Duration,
) -> Result<Report, LiveError> {
    let (host, port) = parse_host_port(addr)?;
    let sa = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|cause| LiveError::Resolve {
            addr: addr.to_string(),
            cause,
        })?
        .next()
        .ok_or_else(|| LiveError::NoAddress {
            addr: addr.to_string(),
        })?;
    let s = TcpStream::connect_timeout(&sa, Duration::from_secs(10)).map_err(|cause| {
        LiveError::Connect {
            addr: addr.to_string(),
            cause,
        }
    })?;
    let _ = s.set_nodelay(true);
    let mut link = Link {
        s,
        dec: FrameDecoder::new(),
        buf: vec![0u8; 65536],
        ready: VecDeque::new(),
    };
    let id = UniqueId::make(std::process::id()).map_err(LiveError::SlaveId)?;
    link.send(&Pdu::Connect {
        version: VERSION,
        id,
    })?;
    match link.next(Duration::from_secs(10))? {
        Some(Pdu::Connect { version, .. }) if version == VERSION => {}
        Some(Pdu::Error(t)) => return Err(LiveError::Refused(t)),
        other => return Err(LiveError::UnexpectedReply(other)),
    }
    // Discovers until the master has been quiet for a while.
    let mut files: BTreeMap<String, Header> = BTreeMap::new();
    while let Some(p) = link.next(quiet)? {
        if let Pdu::Discover(h) = p {
            let name = String::from_utf8_lossy(discover_name(&h)).into_owned();
            if !exclude.iter().any(|x| Path::new(&name).starts_with(x)) {
                files.insert(name, Header::parse_raw(&h[..]));
            }
        }
    }
    // Valid buckets of every file, WINDOW Requests at a time.
    let mut todo: VecDeque<String> = files.keys().cloned().collect();
    let mut got: HashMap<String, Vec<Bucket>> = HashMap::new();
    let mut outstanding: HashMap<String, i64> = HashMap::new();
    let mut gone = Vec::new();
    loop {
        while outstanding.len() < WINDOW {
            let Some(name) = todo.pop_front() else { break };
            link.send(&Pdu::Request {
                from: 0,
                n: CHUNK,
                name: name.as_bytes().to_vec(),
            })?;
            outstanding.insert(name, 0);
        }
        if outstanding.is_empty() {
            break;
        }
        match link.next(quiet)? {
            None => break, // the rest hold nothing up to their flush: parked
            Some(Pdu::Data { buckets, name }) => {
                let name = String::from_utf8_lossy(&name).into_owned();
                if outstanding.remove(&name).is_none() {
                    continue;
                }
                if buckets.is_empty() {
                    gone.push(name);
                    continue;
                }
                let full = buckets.len() as i64 == CHUNK;
                let last = buckets.last().map_or(0, |b| b.time);
                got.entry(name.clone()).or_default().extend(buckets);
                if full {
                    let iv = files.get(&name).map_or(1, |h| h.cfg_interval.max(1) as i64);
                    link.send(&Pdu::Request {
                        from: last + iv,
                        n: CHUNK,
                        name: name.as_bytes().to_vec(),
                    })?;
                    outstanding.insert(name, last + iv);
                }
            }
            Some(Pdu::Error(t)) => return Err(LiveError::Master(t)),
            Some(_) => {}
        }
    }
    let _ = link.send(&Pdu::error("Shutting down"));
    let mut report = Report::default();
    for (name, h) in &files {
        if gone.contains(name) {
            continue;
        }
        report.files_compared += 1;
        let path = PathBuf::from(name);
        let buckets = got.remove(name).unwrap_or_default();
        let master = match master_image(h, &buckets) {
            Ok(m) => m,
            Err(e) => {
                report.push(Finding::Error {
                    path,
                    message: format!("master: {e}"),
                });
                continue;
            }
        };
        let sp = slave_root.join(name);
        if !sp.is_file() {
            report.push(Finding::Missing {
                path,
                buckets: buckets.len() as u64,
            });
            continue;
        }
        match CounterFile::read(&sp) {
            Ok(slave) => {
                let diff = compare_files(&master, &slave);
                if !diff.is_identical() {
                    report.push(Finding::Differs { path, diff });
                }
            }
            Err(e) => report.push(Finding::Error {
                path,
                message: format!("slave: {e}"),
            }),
        }
    }
    Ok(report)
}
