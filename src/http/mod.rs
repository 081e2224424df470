//! The HTTP interface (interfaces.md §3).

pub mod backend;
