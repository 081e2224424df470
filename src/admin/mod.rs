//! The admin (telnet) port on shard 0 (docs/interfaces.md §5): framing, parsing and replies
//! (pure: no sockets, no store), the connection loop ([`server`]), and one file per
//! family of commands carrying out their effect: [`counters`] (flush, delete, purge),
//! [`stats`] and [`replication`].
//!
//! # How the daemon drives a connection (reference: daemon/AdminServer.cpp)
//!
//! - `istatd.admin.connections` +1 per accepted connection ([`Loopback::AdminConnections`]).
//! - For every [`AdminInput`] out of the framer: `istatd.admin.commands` +1
//!   ([`Loopback::AdminCommands`]; the port also counts a too-long line), then
//!   [`AdminInput::TooLong`] → write [`AdminReply::line_too_long`];
//!   [`AdminInput::Line`] → [`parse_command`]: `Err(reply)` → write `reply.render()`;
//!   `Ok(command)` → see the documentation of each [`AdminCommand`] variant.
//! - Commands are handled strictly in order; a command that completes asynchronously
//!   (`flush`, `delete.*`, `*.setting`) finishes before the next line is handled.
//! - After [`AdminCommand::Quit`] later lines are ignored; the port writes what is queued,
//!   then closes (**Port**, §9 item 19; the reference drops queued output).
//! - A partial line left when the peer closes is dropped (as the reference).
//!
//! # Character set
//!
//! The reference works on bytes. The framer hands out lines as `String`, replacing bytes
//! that are not UTF-8 with U+FFFD (`String::from_utf8_lossy`); names echoed by
//! `delete.ctr` then carry U+FFFD instead of the raw byte. Everything else (splitting,
//! trimming, matching) is byte-exact for ASCII.

pub mod command;
pub mod counters;
pub mod debug;
pub mod framer;
pub mod replication;
pub mod reply;
pub mod server;
pub mod stats;

pub use command::{
    parse_command, AdminCommand, DebugCommand, LogLevelCommand, ReplicationCommand,
    ReplicationRole, ResyncTarget, ScrubAction,
};
pub use debug::{DebugOptions, DEBUG_OPTION_NAMES};
pub use framer::{AdminFramer, AdminInput, MAX_LINE};
pub use reply::{echo_line, help_text, render_loglevel, AdminReply, LEXICAL_CAST_ERROR, OK};
pub use stats::{render_stats, HttpStats, ReplicaOfStats, ReplicaServerStats, StatsInfo};

#[cfg(test)]
mod tests;
