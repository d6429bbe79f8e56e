//! One module per program.

mod chain;
mod readproctitle;
mod supervise;
mod svc;
mod svok;
mod svscan;
mod svstat;
mod svwait;
mod svgroup;
mod svprobe;
mod multilog;
mod tai64n;
