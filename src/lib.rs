//! gopeek: snapshot every goroutine of a live Go process from the outside.
//!
//! The modules are layered the way one `gopeek dump` runs (ARCHITECTURE.md
//! draws it; `tests/layering.rs` keeps it true): [`memory`] is the one
//! interface to a target's bytes; [`binary`] reads the executable and
//! [`layout`] the runtime's struct offsets; [`process`] holds and reads a
//! live process; [`dump`] is the plain-data result, [`gotrace`] Go's
//! printing rules; [`walk`] turns memory into goroutines and [`snapshot`]
//! runs the pipeline; [`analyze`] and [`output`] work on plain data; and
//! [`sudo`] adds least privilege around it all.

#![deny(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod analyze;
pub mod binary;
pub mod corefile;
pub mod dump;
pub mod exit;
pub mod gotrace;
pub mod layout;
pub mod memory;
pub mod output;
pub mod process;
pub mod profile;
pub mod ps;
pub mod snapshot;
pub mod sudo;
pub mod value;
pub mod walk;
