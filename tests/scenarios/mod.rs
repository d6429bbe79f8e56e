//! Cross-program scenarios.

mod differential;
mod boot;
mod pid1;
mod openacs;
mod beyond;
