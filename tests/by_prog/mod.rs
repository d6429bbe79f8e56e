//! One module per program.

mod svc;
mod svok;
mod svstat;
mod svwait;
mod supervise;
mod readproctitle;
mod svscan;
mod chain;
mod svprobe;
