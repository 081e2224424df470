//! The stat port line protocol (docs/interfaces.md §2): framing of TCP streams and UDP
//! datagrams, classification and parsing of commands, counter-name caret expansion and
//! munging, and the host blacklist.
//!
//! Everything here is pure: bytes in, values out. No I/O, no clocks (the caller passes
//! `now`), no counters (outcomes say what the caller has to count).
//!
//! Reference: imvu-open/istatd `daemon/StatServer.cpp` (`handle_inputData`,
//! `handleCmd`, `handle_counter_cmd`, `handle_meta_info`, `on_udp_recv`, `to_double`),
//! `lib/strfunc.cpp` (`extract_ctrs`, `munge`, `split`, `trim`), `daemon/StatStore.cpp`
//! (`openCounter`: the `*` marker), `daemon/Blacklist.cpp`.
//!
//! Hot path: [`parse_line`] appends to a caller-owned [`ParsedBatch`] whose two string
//! arenas and record vector are reused between batches, so steady-state parsing does
//! not allocate per sample. [`LineSplitter::push`] hands out lines borrowed from the
//! pushed chunk and copies only a line that straddles two chunks.
//!
//! - `outcome`: what a command was ([`LineOutcome`], [`BadReason`]).
//! - `frame`: TCP and UDP framing.
//! - `parse`: one command into a [`ParsedBatch`].
//! - `number`: the number fields.
//! - `name`: caret expansion and munging.
//! - `blacklist`: the host blacklist.
//! - `graphite`: Graphite's plaintext lines, rewritten into stat lines.

mod blacklist;
mod frame;
pub mod graphite;
mod name;
mod number;
mod outcome;
mod parse;

pub use blacklist::Blacklist;
pub use frame::{split_datagram, BadDatagram, DatagramFrames, Frame, LineSplitter};
pub use name::{caret_expand, munge, munge_byte};
pub use number::{parse_count, parse_time, parse_value};
pub use outcome::{BadReason, LineOutcome};
pub use parse::{is_space, parse_line, ParsedBatch, Record, RecordRef};

/// Longest TCP command accepted (bytes before the LF, a CR included). Port limit,
/// docs/interfaces.md §2.8; the reference has none.
pub const MAX_LINE_LEN: usize = 64 * 1024;

/// A UDP datagram shorter than this is rejected whole (reference `on_udp_recv`).
pub const MIN_DATAGRAM_LEN: usize = 5;

/// The reference's UDP receive buffer; a longer datagram is rejected.
pub const MAX_DATAGRAM_LEN: usize = 65536;

/// Port limit (not in the reference, not in the spec): the total length of the names one
/// line's caret expansion may produce. `a^b^c...` multiplies the base by the number of
/// segments, so without a cap one 64 KiB line could expand to about 512 MiB of names.
pub const MAX_EXPANSION_BYTES: usize = 256 * 1024;

#[cfg(test)]
mod tests;
