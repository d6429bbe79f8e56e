//! Group delegation of a service's `supervise/` (svgroup; REFERENCE.md §10, §12.11).
//!
//! Placeholder interface used by supervise at startup; the svgroup work fills it in.

use std::path::Path;

/// Applies the service directory's delegation (if any) to `DIR/supervise/` and makes sure
/// `control` and `ok` are not world-writable. Never fatal: returns warning texts for the
/// caller to print.
pub fn apply(_dir: &Path) -> Vec<String> {
    Vec::new()
}
