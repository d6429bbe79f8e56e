//! The one integration test binary (STYLE.md P14): shared harness, one module per
//! program, cross-program scenarios.

mod harness;

mod by_prog;
mod scenarios;
