//! Unit tests of the capture strategies.
