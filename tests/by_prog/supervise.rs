//! Tests for supervise.
