//! Diagnosis over plain snapshots: filters, panicparse-style grouping and
//! leak detection across several snapshots, the stop-the-world analysis of
//! `gopeek sched`. Everything here works on plain data only
//! ([`DumpSnapshot`](crate::dump::DumpSnapshot),
//! [`SchedState`](crate::gotrace::sched::SchedState)), so it is tested
//! without a process and never touches the target.

pub mod filter;
pub mod group;
pub mod leaks;
pub mod stw;
