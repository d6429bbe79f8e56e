//! Cross-program scenarios.
