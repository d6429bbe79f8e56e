//! One module per program.

mod svc;
mod supervise;
