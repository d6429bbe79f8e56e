//! One module per program.

mod chain;
mod multilog;
mod readproctitle;
mod supervise;
mod svc;
mod svgroup;
mod svok;
mod svprobe;
mod svscan;
mod svstat;
mod svwait;
mod tai64n;
