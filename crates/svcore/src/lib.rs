//! svcore: the shared core of the supervision suite.
//!
//! Each module is named after what it owns on disk (STYLE.md P2). Pure encoding and
//! decoding is kept apart from I/O so that formats are unit-tested without files.
//!
//! | module | owns |
//! |---|---|
//! | [`svdir`] | every on-disk name and size (REFERENCE.md §1) |
//! | [`errstr`] | djb's error strings, the `prog: fatal: …` format, exit codes |
//! | [`tai64n`] | TAI64 / TAI64N stamps (REFERENCE.md §2) |
//! | [`status`] | `supervise/status`: the 18 bytes, and the runit/s6/encore/nosh readers |
//! | [`control`] | the control FIFO's command bytes and `send` |
//! | [`lock`] | `supervise/lock` (flock plus fcntl) |
//! | [`fifo`] | creating and opening FIFOs the daemontools way |
//! | [`selfpipe`] | signals delivered to an event loop |
//! | [`notify`] | `supervise/notify`: the sd_notify socket (`NOTIFY_SOCKET`) of a service |
//! | [`cgroup`] | an opt-in cgroup v2 per service (`svtools-<name>`), `cgroup.kill` on stop |
//! | [`perms`] | group delegation of `supervise/` (svgroup, the `group` file) |
//! | [`pathexec`] | running the next program of a chain via `$PATH`, with env changes (djb's pathexec) |
//! | [`getopt`] | djb's getopt, as the chain-loaders parse options |
//! | [`proc`] | a supervisor's children: fork + exec of `./run`, kill, reap |
//! | [`sidecar`] | `supervise/status.ext` and `supervise/deaths`: our state beyond the 18 bytes |
//! | [`statusfmt`] | every supervisor's status file (daemontools, runit, encore, nosh, s6) decoded into one shape |
//! | [`svstat`] | reading a service's state as svstat does: liveness, `down`, status; the 0.76 line |
//! | [`scan`] | svscan's scan directory: entries by (dev, ino), log pipes, adoption, orderly stop |
//! | [`proctitle`] | the process title (argument memory), for readproctitle |
//! | [`logdir`] | multilog's log directory: script, patterns, rotation, recovery, processor, line engine |
#![deny(missing_docs)]

pub mod cgroup;
pub mod control;
pub mod errstr;
pub mod fifo;
pub mod getopt;
pub mod lock;
pub mod logdir;
pub mod notify;
pub mod pathexec;
pub mod perms;
pub mod proc;
pub mod proctitle;
pub mod scan;
pub mod selfpipe;
pub mod sidecar;
pub mod status;
pub mod statusfmt;
pub mod svdir;
pub mod svstat;
pub mod tai64n;
