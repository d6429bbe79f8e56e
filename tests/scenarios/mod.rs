//! Cross-program scenarios.

mod differential;
