//! gopeek: snapshot every goroutine of a live Go process from the outside.
//!
//! The crate is layered the way one `gopeek dump` runs (see ARCHITECTURE.md):
//! the executable is read offline ([`elf`], [`buildinfo`], [`pclntab`],
//! [`moduledata`], [`locate`], [`layout`]), then the process is seized and
//! copied ([`process`]), then the copy is walked and unwound after detach,
//! and finally formatted.

pub mod buildinfo;
pub mod cursor;
pub mod elf;
pub mod layout;
pub mod memory;
pub mod process;
pub mod version;
pub mod pclntab;
pub mod moduledata;
pub mod locate;
pub mod program;
pub mod info;
pub mod dump;
pub mod walk;
pub mod output;
pub mod snapshot;
pub mod symbolize;
