//! Command line and config file (interfaces.md §7).
