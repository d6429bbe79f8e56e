//! Tests for svc.
