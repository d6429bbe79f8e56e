//! Every on-disk name and size the suite uses, in one place (STYLE.md P3).
//!
//! Names relative to a service directory unless said otherwise. REFERENCE.md §1 and §3.

/// The run script, executed as `./run` with no arguments.
pub const RUN: &str = "run";
/// The run script as passed to execve (daemontools runs `./run`, not `run`).
pub const RUN_PATH: &str = "./run";
/// If this exists (any file type), the service starts want-down.
pub const DOWN: &str = "down";
/// The log service directory, read only by svscan.
pub const LOG: &str = "log";
/// The state directory created by supervise (mode 0700).
pub const SUPERVISE: &str = "supervise";
/// `supervise/lock`: flocked (and fcntl-locked) for supervise's whole life.
pub const LOCK: &str = "supervise/lock";
/// `supervise/control`: the command FIFO.
pub const CONTROL: &str = "supervise/control";
/// `supervise/ok`: a FIFO whose openability means "supervise is alive".
pub const OK: &str = "supervise/ok";
/// `supervise/status`: the 18-byte status record.
pub const STATUS: &str = "supervise/status";
/// `supervise/status.new`: written, then renamed over `status`.
pub const STATUS_NEW: &str = "supervise/status.new";
/// The final component of [`STATUS`], for messages such as `… to status`.
pub const STATUS_BASENAME: &str = "status";

/// Size of the daemontools status record.
pub const STATUS_LEN: usize = 18;
/// Size of runit's status record (REFERENCE.md §11.7).
pub const STATUS_LEN_RUNIT: usize = 20;
/// Size of s6's status record (REFERENCE.md §11.7).
pub const STATUS_LEN_S6: usize = 35;
/// Size of daemontools-encore's status record with a managed log.
pub const STATUS_LEN_ENCORE_LOG: usize = 40;
/// Size of nosh's status record.
pub const STATUS_LEN_NOSH: usize = 87;

/// runit's text status file, `supervise/stat`; its presence identifies runit.
pub const RUNIT_STAT: &str = "supervise/stat";
/// runit's pid file, `supervise/pid`.
pub const RUNIT_PID: &str = "supervise/pid";
/// s6's event fifodir, `event/` (in the service dir, not under `supervise/`).
pub const EVENT: &str = "event";

/// Optional delegation file: a group name; supervise creates `supervise/` with group access
/// for it (REFERENCE.md §12.11). Ours, not in daemontools.
pub const GROUP: &str = "group";

/// Minimum seconds between two starts of `./run`, start to start (REFERENCE.md §4).
pub const RESTART_FLOOR_SECS: u64 = 1;
