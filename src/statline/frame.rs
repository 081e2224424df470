//! Framing (docs/interfaces.md §2.2, §2.8): a TCP byte stream split into commands at LF
//! with the port's line-length limit ([`LineSplitter`]), and a UDP datagram checked and
//! split into its commands ([`split_datagram`]).

use std::ops::ControlFlow;

use super::outcome::BadReason;
use super::parse::is_space;
use super::{MAX_DATAGRAM_LEN, MAX_LINE_LEN, MIN_DATAGRAM_LEN};

/// Capacity above which an emptied TCP line buffer is released instead of kept.
const KEEP_CAPACITY: usize = 16 * 1024;

/// One framed command, or a framing-level bad command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// The command's bytes, without the LF (a CR before the LF is kept). May be empty.
    Line(&'a [u8]),
    /// Not a command: [`BadReason::LineTooLong`] (TCP) or [`BadReason::ShortSegment`]
    /// (UDP). Counts once in `istatd.statserver.commands.bad`.
    Bad(BadReason),
}

/// Splits a TCP byte stream into commands at LF (docs/interfaces.md §2.2), with the port's
/// line-length limit (§2.8).
///
/// Only an unterminated tail is buffered, and never more than the limit: once a line is
/// longer, its bytes are dropped as they arrive and it is reported as
/// [`Frame::Bad`]`(`[`BadReason::LineTooLong`]`)` when its LF arrives. When the
/// connection closes, an unterminated tail is discarded silently (reference).
#[derive(Debug)]
pub struct LineSplitter {
    buf: Vec<u8>,
    limit: usize,
    discarding: bool,
    overlong: u64,
}

impl Default for LineSplitter {
    fn default() -> Self {
        Self::new()
    }
}

impl LineSplitter {
    /// A splitter with the port's limit, [`MAX_LINE_LEN`].
    pub fn new() -> Self {
        Self::with_limit(MAX_LINE_LEN)
    }

    /// A splitter that accepts commands of at most `limit` bytes (LF not counted).
    pub fn with_limit(limit: usize) -> Self {
        LineSplitter {
            buf: Vec::new(),
            limit,
            discarding: false,
            overlong: 0,
        }
    }

    /// The longest command accepted.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes of the unterminated tail held (at most [`limit`](Self::limit)).
    pub fn pending_len(&self) -> usize {
        self.buf.len()
    }

    /// Capacity of the internal buffer (at most [`limit`](Self::limit)).
    pub fn buffer_capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Whether an over-long line is being dropped, waiting for its LF.
    pub fn is_discarding(&self) -> bool {
        self.discarding
    }

    /// Over-long lines reported so far.
    pub fn overlong_lines(&self) -> u64 {
        self.overlong
    }

    /// Forget the unterminated tail (the connection closed).
    pub fn reset(&mut self) {
        self.buf = Vec::new();
        self.discarding = false;
    }

    /// Feed the next bytes read from the connection; `f` gets every command completed
    /// by them, in order. Lines inside `chunk` are borrowed from it, not copied.
    pub fn push(&mut self, chunk: &[u8], mut f: impl FnMut(Frame<'_>)) {
        let _ = self.try_push(chunk, |frame| {
            f(frame);
            ControlFlow::Continue(())
        });
    }

    /// Like [`push`](Self::push), but `f` may stop the handling (the reference stops
    /// handling a connection's buffer once its host is blacklisted). On `Break` the
    /// rest of `chunk` and the buffered tail are dropped and `Break` is returned; the
    /// splitter is then as after [`reset`](Self::reset).
    pub fn try_push(
        &mut self,
        chunk: &[u8],
        mut f: impl FnMut(Frame<'_>) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        let mut rest = chunk;
        // Finish the line that straddles the previous chunk(s), if any.
        if self.discarding || !self.buf.is_empty() {
            match find_lf(rest) {
                None => {
                    self.absorb_tail(rest);
                    return ControlFlow::Continue(());
                }
                Some(i) => {
                    let part = &rest[..i];
                    rest = &rest[i + 1..];
                    let flow = if self.discarding || self.buf.len() + part.len() > self.limit {
                        self.discarding = false;
                        self.clear_buf();
                        self.overlong += 1;
                        f(Frame::Bad(BadReason::LineTooLong))
                    } else {
                        self.append(part);
                        let flow = f(Frame::Line(&self.buf));
                        self.clear_buf();
                        flow
                    };
                    if flow.is_break() {
                        self.reset();
                        return flow;
                    }
                }
            }
        }
        // Lines wholly inside the chunk.
        while let Some(i) = find_lf(rest) {
            let line = &rest[..i];
            rest = &rest[i + 1..];
            let flow = if line.len() > self.limit {
                self.overlong += 1;
                f(Frame::Bad(BadReason::LineTooLong))
            } else {
                f(Frame::Line(line))
            };
            if flow.is_break() {
                self.reset();
                return flow;
            }
        }
        self.absorb_tail(rest);
        ControlFlow::Continue(())
    }

    /// Keep bytes that have no LF yet (or drop them, for an over-long line).
    fn absorb_tail(&mut self, tail: &[u8]) {
        if tail.is_empty() || self.discarding {
            return;
        }
        if self.buf.len() + tail.len() > self.limit {
            self.discarding = true;
            self.clear_buf();
        } else {
            self.append(tail);
        }
    }

    /// Append within the limit, growing the capacity no further than the limit.
    fn append(&mut self, bytes: &[u8]) {
        let need = self.buf.len() + bytes.len();
        debug_assert!(need <= self.limit);
        if need > self.buf.capacity() {
            let target = need
                .max(self.buf.capacity().saturating_mul(2))
                .max(256)
                .min(self.limit)
                .max(need);
            self.buf.reserve_exact(target - self.buf.len());
        }
        self.buf.extend_from_slice(bytes);
    }

    fn clear_buf(&mut self) {
        if self.buf.capacity() > KEEP_CAPACITY {
            self.buf = Vec::new();
        } else {
            self.buf.clear();
        }
    }
}

fn find_lf(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

/// Why a whole UDP datagram was rejected (log `Bad UDP port <port> packet received
/// from <ip:port>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadDatagram {
    /// Shorter than [`MIN_DATAGRAM_LEN`] bytes.
    TooShort,
    /// Longer than [`MAX_DATAGRAM_LEN`] bytes.
    TooLong,
    /// The last byte is not LF.
    NoFinalNewline,
}

/// The commands of one UDP datagram (docs/interfaces.md §2.2), or why the whole datagram is
/// rejected. Port fix 2: every LF-terminated segment is an independent command; empty
/// segments and one-byte whitespace segments are skipped, a one-byte non-whitespace
/// segment is [`Frame::Bad`]`(`[`BadReason::ShortSegment`]`)`.
pub fn split_datagram(datagram: &[u8]) -> Result<DatagramFrames<'_>, BadDatagram> {
    if datagram.len() < MIN_DATAGRAM_LEN {
        return Err(BadDatagram::TooShort);
    }
    if datagram.len() > MAX_DATAGRAM_LEN {
        return Err(BadDatagram::TooLong);
    }
    if datagram.last() != Some(&b'\n') {
        return Err(BadDatagram::NoFinalNewline);
    }
    Ok(DatagramFrames { rest: datagram })
}

/// Iterator over a datagram's commands; see [`split_datagram`].
#[derive(Debug, Clone)]
pub struct DatagramFrames<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for DatagramFrames<'a> {
    type Item = Frame<'a>;

    fn next(&mut self) -> Option<Frame<'a>> {
        while let Some(i) = find_lf(self.rest) {
            let seg = &self.rest[..i];
            self.rest = &self.rest[i + 1..];
            match seg {
                [] => {}
                [b] if is_space(*b) => {}
                [_] => return Some(Frame::Bad(BadReason::ShortSegment)),
                _ => return Some(Frame::Line(seg)),
            }
        }
        // split_datagram guarantees a final LF, so nothing is left unterminated.
        self.rest = &[];
        None
    }
}
