//! Go's printing rules.
