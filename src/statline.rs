//! The stat port line protocol (interfaces.md §2).
