//! Diagnosis over plain snapshots: filters, panicparse-style grouping and
//! leak detection across several snapshots. Everything here works on
//! [`DumpSnapshot`](crate::dump::DumpSnapshot) data only, so it is tested
//! without a process and never touches the target.

pub mod filter;
pub mod group;
pub mod leaks;
use crate::dump::GoroutineSnapshot;

/// The status grouping and leak clusters key on: without the ` (scan)` a
/// GC in progress adds (see [`crate::gotrace::status::without_scan`]).
pub(crate) fn base_status(g: &GoroutineSnapshot) -> &str {
    crate::gotrace::status::without_scan(&g.status)
}
