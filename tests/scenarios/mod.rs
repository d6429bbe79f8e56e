//! Cross-program scenarios.

mod beyond;
mod boot;
mod differential;
mod openacs;
mod pid1;
