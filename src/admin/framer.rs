//! Framing of the admin connection's bytes into lines (docs/interfaces.md §5.1, §9
//! item 15).

/// Longest admin line, in bytes, not counting its terminating LF (a CR before the LF
/// counts). **Port** (§5.1, §9 item 15): the reference examines 1024 bytes at a time,
/// corrupts the first command when 1024 or more bytes are pending and stalls on a longer
/// line.
pub const MAX_LINE: usize = 4096;

/// One unit of admin input produced by [`AdminFramer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminInput {
    /// The bytes before an LF (CR included; [`parse_command`] trims it away).
    Line(String),
    /// A line longer than [`MAX_LINE`]. Reported as soon as more than `MAX_LINE` bytes
    /// are pending without an LF (so it never stalls), once per line; the rest of the
    /// line up to and including its LF is discarded. Reply: [`AdminReply::line_too_long`].
    TooLong,
}

/// Splits the byte stream of an admin connection into lines (§5.1).
///
/// Feed bytes with [`push`](AdminFramer::push), then call
/// [`next_input`](AdminFramer::next_input) until it returns `None`. Memory held is at
/// most `MAX_LINE` bytes plus whatever the last `push` brought that was not yet taken.
#[derive(Debug, Default, Clone)]
pub struct AdminFramer {
    buf: Vec<u8>,
    start: usize,
    discarding: bool,
}

impl AdminFramer {
    pub fn new() -> AdminFramer {
        AdminFramer::default()
    }

    /// Appends bytes read from the connection.
    pub fn push(&mut self, mut data: &[u8]) {
        if self.discarding {
            match data.iter().position(|&b| b == b'\n') {
                None => return,
                Some(i) => {
                    self.discarding = false;
                    data = &data[i + 1..];
                }
            }
        }
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > MAX_LINE {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// The next complete line or too-long report, if any.
    pub fn next_input(&mut self) -> Option<AdminInput> {
        loop {
            let pending = &self.buf[self.start..];
            match pending.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    let line_start = self.start;
                    self.start += i + 1;
                    if self.discarding {
                        self.discarding = false;
                        continue;
                    }
                    if i > MAX_LINE {
                        return Some(AdminInput::TooLong);
                    }
                    let line = &self.buf[line_start..line_start + i];
                    return Some(AdminInput::Line(String::from_utf8_lossy(line).into_owned()));
                }
                None => {
                    let was_discarding = self.discarding;
                    let too_long = pending.len() > MAX_LINE;
                    if was_discarding || too_long {
                        self.buf.clear();
                        self.start = 0;
                        self.discarding = true;
                    }
                    return if too_long && !was_discarding {
                        Some(AdminInput::TooLong)
                    } else {
                        None
                    };
                }
            }
        }
    }

    /// Bytes received but not yet handed out (the start of an unfinished line).
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }
}
