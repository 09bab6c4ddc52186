//! What gopeek reads from a Go executable, with no process involved: the
//! ELF image, build info, module data, the pclntab, where the runtime's
//! globals are, and one symbolizer shared by every command that names a PC.
//!
//! Everything here parses bytes an attacker may control, through the
//! bounds-checked [`cursor`] helpers, and never panics on them (the
//! `pclntab` and `buildinfo` fuzz targets check that).

pub mod arm64;
pub mod arm64_text;
pub mod buildinfo;
pub(crate) mod cursor;
pub(crate) mod disasm;
pub mod elf;
#[cfg(test)]
mod fuzz_seeds;
pub mod info;
pub(crate) mod locate;
pub mod locate_sched;
pub(crate) mod moduledata;
pub mod pclntab;
pub mod program;
pub mod symbolize;
pub mod version;
