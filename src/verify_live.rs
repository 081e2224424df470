//! `istatd verify --master HOST:PORT STORE_B`: compare a slave's store with a running
//! master, read over the master's replication port (replication.md §2): connect as a
//! slave would, collect the master's Discovers, then ask each file for its valid
//! buckets from the oldest on, in chunks, and compare them with the slave's file by
//! replica equality (§2.1). The master sends only flushed buckets; a file whose
//! Request gets no answer within the quiet time holds no valid bucket up to its flush.
//! A command-line tool: plain blocking sockets.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use istatd_replication::pdu::{discover_name, FrameDecoder, Pdu, UniqueId, VERSION};
use istatd_storage::format::{Bucket, CreateParams, Header, HEADER_SIZE};
use istatd_storage::statfile::{FileState, ImageSlots};
use istatd_storage::verify::{compare_files, CounterFile, Finding, Report};

/// Requests outstanding at once.
const WINDOW: usize = 64;
const CHUNK: i64 = 2048;

struct Link {
    s: TcpStream,
    dec: FrameDecoder,
    buf: Vec<u8>,
    ready: VecDeque<Pdu>,
}

impl Link {
    fn send(&mut self, p: &Pdu) -> Result<(), String> {
        self.s
            .write_all(&p.to_frame())
            .map_err(|e| format!("write to the master: {e}"))
    }

    /// The next PDU, or None after `wait` without one.
    fn next(&mut self, wait: Duration) -> Result<Option<Pdu>, String> {
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
                .map_err(|e| e.to_string())?;
            match self.s.read(&mut self.buf) {
                Ok(0) => return Err("the master closed the connection".into()),
                Ok(n) => {
                    let mut out = Vec::new();
                    let r = self.dec.feed(&self.buf[..n], &mut out);
                    self.ready.extend(out);
                    if let Err(e) = r {
                        return Err(format!("from the master: {}", e.text("connected")));
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(format!("read from the master: {e}")),
            }
        }
    }
}

/// A master file rebuilt from its Discover header and the buckets it sent.
fn master_image(h: &Header, buckets: &[Bucket]) -> Result<CounterFile, String> {
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
    CounterFile::from_bytes(img).map_err(|e| e.to_string())
}

/// Compare `slave_root` with the master at `addr`.
pub fn verify_live(
    addr: &str,
    slave_root: &Path,
    exclude: &[PathBuf],
    quiet: Duration,
) -> Result<Report, String> {
    let (host, port) = istatd::options::parse_host_port(addr).map_err(|e| e.to_string())?;
    let sa = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| format!("{addr}: {e}"))?
        .next()
        .ok_or_else(|| format!("{addr}: no address"))?;
    let s = TcpStream::connect_timeout(&sa, Duration::from_secs(10))
        .map_err(|e| format!("connect to {addr}: {e}"))?;
    let _ = s.set_nodelay(true);
    let mut link = Link {
        s,
        dec: FrameDecoder::new(),
        buf: vec![0u8; 65536],
        ready: VecDeque::new(),
    };
    let id = UniqueId::make(std::process::id()).map_err(|e| e.to_string())?;
    link.send(&Pdu::Connect {
        version: VERSION,
        id,
    })?;
    match link.next(Duration::from_secs(10))? {
        Some(Pdu::Connect { version, .. }) if version == VERSION => {}
        Some(Pdu::Error(t)) => {
            return Err(format!(
                "the master refused: {}",
                String::from_utf8_lossy(&t)
            ))
        }
        other => return Err(format!("unexpected handshake reply: {other:?}")),
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
            Some(Pdu::Error(t)) => {
                return Err(format!("the master: {}", String::from_utf8_lossy(&t)))
            }
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
