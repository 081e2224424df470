//! Creating counters and files: the headers of a counter's retention files, and the
//! blocking system calls that make directories and files (run on glommio's blocking
//! pool).

use std::io;
use std::path::{Path, PathBuf};

use super::{counter_dir, Allocation, StoreError};
use crate::format::{
    CreateParams, Header, FLAG_COLLATED, FLAG_COUNTER_AGGREGATE, FLAG_TRAILING, HEADER_SIZE,
};
use crate::retention::Retention;

/// The missing files of one counter, ready for one blocking call.
pub(super) struct CounterPlan {
    pub(super) key: Box<str>,
    pub(super) dir: PathBuf,
    pub(super) is_new: bool,
    /// Retention index, relative path and header of each file to create.
    pub(super) files: Vec<(usize, String, Header)>,
}

impl CounterPlan {
    /// What the blocking call needs: the directory, and each file's absolute path,
    /// header bytes and length.
    pub(super) fn job(&self, abs_path: impl Fn(&str) -> PathBuf) -> (PathBuf, Vec<FileJob>) {
        let files = self
            .files
            .iter()
            .map(|(_, rel, h)| (abs_path(rel), h.to_bytes(), h.file_len()))
            .collect();
        (self.dir.clone(), files)
    }
}

/// A counter's relative directory, refused when some component is empty, `.` or `..`.
pub(super) fn checked_counter_dir(key: &str) -> Result<String, StoreError> {
    let dir = counter_dir(key);
    if dir.is_empty()
        || dir
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(StoreError::Invalid(format!("bad counter name {key:?}")));
    }
    Ok(dir)
}

/// Relative path and header of each missing retention file (`missing`: indices into
/// `retentions`) of the counter in `dir`.
pub(super) fn plan_files(
    retentions: &[Retention],
    dir: &str,
    missing: &[usize],
    event: bool,
    zero_time: i64,
    abs_path: impl Fn(&str) -> PathBuf,
) -> Vec<(usize, String, Header)> {
    missing
        .iter()
        .map(|&i| {
            let rel = format!("{dir}/{}", retentions[i].name);
            let header = retention_file_header(retentions, i, event, zero_time, &abs_path(&rel));
            (i, rel, header)
        })
        .collect()
}

/// The header of a new retention file: retention `i` of `retentions`, named `path`.
fn retention_file_header(
    retentions: &[Retention],
    i: usize,
    event: bool,
    zero_time: i64,
    path: &Path,
) -> Header {
    let finest = retentions[0].interval;
    let r = &retentions[i];
    let mut flags = 0;
    let mut fixed_count = 0;
    if event {
        if i == 0 {
            flags |= FLAG_COLLATED;
        } else {
            flags |= FLAG_COUNTER_AGGREGATE;
            fixed_count = r.interval / finest;
        }
    }
    if r.lambda > 0.0 {
        flags |= FLAG_TRAILING;
    }
    let interval = r.interval.max(1);
    Header::new_file(&CreateParams {
        interval: interval as i32,
        page_count: r.page_count(),
        flags,
        zero_time: zero_time - zero_time % interval,
        lambda: r.lambda,
        season: r.season() as u64,
        fixed_count,
        unit: String::new(),
        name: path.to_string_lossy().into_owned(),
    })
}

/// One file to create: its path, header bytes and length.
pub(super) type FileJob = (PathBuf, [u8; HEADER_SIZE], u64);

/// Per counter: whether its directory was created, and per file whether it was created
/// (false: it was on disk already).
pub(super) type CounterOutcome = io::Result<(bool, Vec<bool>)>;

/// Blocking: create each counter's directory and files.
pub(super) fn create_counter_files(
    jobs: &[(PathBuf, Vec<FileJob>)],
    alloc: Allocation,
) -> Vec<CounterOutcome> {
    jobs.iter()
        .map(|(dir, files)| -> CounterOutcome {
            let created_dir = !dir.is_dir();
            if created_dir {
                std::fs::create_dir_all(dir)?;
            }
            let mut created = Vec::with_capacity(files.len());
            for (path, hdr, len) in files {
                match create_file_blocking(path, hdr, *len, alloc) {
                    Ok(()) => created.push(true),
                    // On disk but not indexed yet: validated when loaded.
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => created.push(false),
                    Err(e) => {
                        return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display())))
                    }
                }
            }
            Ok((created_dir, created))
        })
        .collect()
}

pub(super) fn create_file_blocking(
    path: &Path,
    header: &[u8; HEADER_SIZE],
    len: u64,
    alloc: Allocation,
) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o664)
        .open(path)?;
    let fill = || -> io::Result<()> {
        f.set_len(len)?;
        let image = match alloc {
            Allocation::Full if len <= ZEROOUT_MAX => len,
            Allocation::Full if !fallocate(&f, len)? => len,
            _ => HEADER_BLOCK.min(len),
        };
        write_image(&f, header, image)
    };
    let result = fill();
    if result.is_err() {
        // A half-made file would be a bad file forever after, and its name taken
        // ("file exists"): remove it so that the next try starts clean.
        let _ = std::fs::remove_file(path);
    }
    result
}

/// The block the header is written in (its first 464 bytes, zeros after).
const HEADER_BLOCK: u64 = 4096;

/// Write the first `len` bytes of a new file: the header, zeros after it, in pieces of
/// at most 1 MiB (a long retention's file without fallocate is large). With O_DIRECT
/// where the file system takes it: written through the page cache, a new file left
/// `len` dirty bytes there (32 KiB for a 10s:2h file, 16 GB for a fresh slave of
/// 500,000), which the kernel then wrote back beside the flushes, and which every
/// later O_DIRECT write of the file first had to write back and drop.
fn write_image(f: &std::fs::File, header: &[u8; HEADER_SIZE], len: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    const ALIGN: usize = 4096;
    const PIECE: usize = 1 << 20;
    let n = len as usize;
    let mut room = vec![0u8; n.min(PIECE) + ALIGN];
    let at = room.as_ptr().align_offset(ALIGN);
    let buf = &mut room[at..at + n.min(PIECE)];
    let fd = f.as_raw_fd();
    // SAFETY: fcntl on a descriptor we own.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    let direct = n.is_multiple_of(512)
        && flags >= 0
        // SAFETY: as above.
        && unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_DIRECT) } == 0;
    match write_pieces(f, header, n, buf) {
        // Refused for this file system after all: through the page cache.
        Err(e) if direct && e.raw_os_error() == Some(libc::EINVAL) => {
            // SAFETY: as above.
            unsafe { libc::fcntl(fd, libc::F_SETFL, flags) };
            write_pieces(f, header, n, buf)
        }
        r => r,
    }
}

/// [`write_image`]'s writes: `buf` (aligned, zeros) carries the header in its first
/// piece only.
fn write_pieces(
    f: &std::fs::File,
    header: &[u8; HEADER_SIZE],
    n: usize,
    buf: &mut [u8],
) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let h = header.len().min(buf.len());
    buf[..h].copy_from_slice(&header[..h]);
    let mut off = 0;
    while off < n {
        let k = (n - off).min(buf.len());
        f.write_all_at(&buf[..k], off as u64)?;
        buf[..h].fill(0);
        off += k;
    }
    Ok(())
}

/// Files up to this size get written zeros rather than `posix_fallocate`: ext4's
/// default `extent_max_zeroout_kb`.
const ZEROOUT_MAX: u64 = 32 * 1024;

/// Allocation strategy 1: every block of the file reserved now (ENOSPC at creation,
/// not at a later flush), disk usage equal to the apparent size.
///
/// A fallocated range is "unwritten" on ext4, and the flush's O_DIRECT writes split it
/// into written and unwritten extents; past four extents the inode needs an extent
/// block, one block beyond the apparent size. ext4 itself avoids that for buffered
/// writes into small unwritten extents by writing zeros instead of splitting them (up
/// to `extent_max_zeroout_kb`, 32 KiB by default), which is what the reference's
/// mmap'ed files get (ftest test_counter_file_integrity). Small files therefore get
/// their zeros written here, as cheap as the metadata update; larger ones are
/// fallocated (no data written), where extent blocks grow with fragmentation in the
/// reference too.
///
/// Returns false where the file system has no fallocate (the caller writes the zeros).
fn fallocate(f: &std::fs::File, len: u64) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    // SAFETY: plain syscall on an fd we own.
    let rc = unsafe { libc::posix_fallocate(f.as_raw_fd(), 0, len as libc::off_t) };
    match rc {
        0 => Ok(true),
        libc::EOPNOTSUPP | libc::EINVAL | libc::ENOSYS => Ok(false),
        // ENOSPC, EFBIG, EIO...: the file cannot be had.
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_larger_than_a_piece_is_the_header_then_zeros() {
        let dir = std::env::temp_dir().join(format!("istatd-image-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("big");
        let _ = std::fs::remove_file(&path);
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap();
        let mut header = [0u8; HEADER_SIZE];
        header
            .iter_mut()
            .enumerate()
            .for_each(|(i, b)| *b = (i % 251) as u8 + 1);
        // Two and a half pieces; the file held other bytes before.
        let len = (5 << 19) as u64;
        std::fs::write(&path, vec![0xAB; len as usize]).unwrap();
        write_image(&f, &header, len).unwrap();
        let back = std::fs::read(&path).unwrap();
        assert_eq!(back.len() as u64, len);
        assert_eq!(&back[..HEADER_SIZE], &header[..]);
        assert!(back[HEADER_SIZE..].iter().all(|&b| b == 0));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
