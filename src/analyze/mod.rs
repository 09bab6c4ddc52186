//! Diagnosis over plain snapshots: filters, panicparse-style grouping and
//! leak detection across several snapshots. Everything here works on
//! [`DumpSnapshot`](crate::dump::DumpSnapshot) data only, so it is tested
//! without a process and never touches the target.

pub mod filter;
pub mod group;
pub mod leaks;
