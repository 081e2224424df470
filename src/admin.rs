//! Admin (telnet) port commands and their replies (interfaces.md §5).
