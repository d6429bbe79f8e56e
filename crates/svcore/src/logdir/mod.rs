//! The multilog engine (REFERENCE.md §7): the script, patterns, the log directory with
//! its rotation and crash recovery, the processor protocol, and the read/process/write
//! loop. The pure parts ([`pattern`], [`script`], [`dir::cut_len`]) are unit-tested
//! without files; the rest is exercised by `tests/by_prog/multilog.rs` against Debian's
//! multilog.

pub mod dir;
pub mod engine;
pub mod pattern;
pub mod script;
