//! What one command was (docs/interfaces.md §2.3–§2.8): [`LineOutcome`], and for a rejected
//! command the [`BadReason`] counted in `istatd.statserver.commands.bad`.

/// Why a command was rejected. Every reason is counted in
/// `istatd.statserver.commands.bad` (see [`LineOutcome::bad_commands`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BadReason {
    /// A counter line with 0, 1, 4, 5 or 6 fields (log `Bad format in received stat`).
    /// Includes the unimplemented event lines (`!name|...`).
    BadFormat,
    /// A value, time or count field that does not parse (reference: bad lexical cast,
    /// not counted; port fix 4: counted).
    BadNumber,
    /// A 7-field line whose count is negative (reference wraps it; port fix 5).
    NegativeCount,
    /// An expanded name (after removing the `*` marker) with an empty dot-component:
    /// leading, trailing or doubled `.` (port fix 6).
    EmptyNameComponent,
    /// The caret expansion would exceed [`MAX_EXPANSION_BYTES`](super::MAX_EXPANSION_BYTES) (port limit).
    ExpansionTooLarge,
    /// A `#` line without a space (log `Bad format meta info:`).
    BadMeta,
    /// A TCP line longer than the splitter's limit, discarded up to its LF (§2.8).
    LineTooLong,
    /// A one-byte non-whitespace UDP segment (port fix 2).
    ShortSegment,
}

impl BadReason {
    /// Short text for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            BadReason::BadFormat => "bad format (expected 2, 3 or 7 fields)",
            BadReason::BadNumber => "bad number",
            BadReason::NegativeCount => "negative count",
            BadReason::EmptyNameComponent => "empty name component",
            BadReason::ExpansionTooLarge => "caret expansion too large",
            BadReason::BadMeta => "bad format meta info",
            BadReason::LineTooLong => "line too long",
            BadReason::ShortSegment => "one-byte segment",
        }
    }
}

impl std::fmt::Display for BadReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one command was, and what the caller has to do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineOutcome<'a> {
    /// A zero-length command (`\n\n`): ignored silently.
    Empty,
    /// A counter line with 2, 3 or 7 (or more) fields: `added` records were appended to
    /// the batch (always at least 1; they are the batch's last `added` records).
    Samples {
        added: u32,
        /// The raw first field, before caret expansion (what the Prometheus exporter
        /// calls the counter; its base is the text before the first `^`).
        name: &'a [u8],
        /// The line had more than 7 fields; the rest were ignored (reference logs
        /// `Unknown field in received stat`).
        extra_fields: bool,
    },
    /// A counter line that records nothing and counts nothing: its name expands to no
    /// name at all (`^`), or only to `*`.
    NoCounter,
    /// `#key value`: store `key` → `value` in the connection's meta record and, in
    /// forwarding mode, forward the line unchanged. `key` is the text between `#` and
    /// the first space with trailing whitespace removed; `value` is the rest, trimmed.
    Meta { key: &'a [u8], value: &'a [u8] },
    /// First byte one of `@ $ % & ; :`: log `Unknown reserved command:` and count
    /// `istatd.statserver.commands.reserved`.
    Reserved,
    /// A bad command: add `count` to `istatd.statserver.commands.bad` (the reference
    /// counts a 4..6-field line once per expanded name; everything else counts 1).
    Bad { reason: BadReason, count: u32 },
}

impl LineOutcome<'_> {
    /// How much this outcome adds to `istatd.statserver.commands.bad`.
    pub fn bad_commands(&self) -> u32 {
        match self {
            LineOutcome::Bad { count, .. } => *count,
            _ => 0,
        }
    }
}
