//! gopeek: snapshot every goroutine of a live Go process from the outside.
//!
//! The crate is layered the way one `gopeek dump` runs (see ARCHITECTURE.md):
//! the executable is read offline ([`elf`], [`buildinfo`], [`pclntab`],
//! [`moduledata`], [`locate`], [`layout`]), then the process is seized and
//! copied ([`process`]), then the copy is walked and unwound after detach,
//! and finally formatted; [`analyze`] groups, filters and compares
//! snapshots as plain data.

pub mod analyze;
pub mod audit;
pub mod buildinfo;
pub mod cursor;
pub mod dump;
pub mod elf;
pub mod info;
pub mod layout;
pub mod locate;
pub mod memory;
pub mod moduledata;
pub mod output;
pub mod pclntab;
pub mod policy;
pub mod privilege;
pub mod process;
pub mod program;
pub mod snapshot;
pub mod sudo;
pub mod symbolize;
pub mod version;
pub mod walk;
pub mod watchdog;
