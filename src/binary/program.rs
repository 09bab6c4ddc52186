//! Everything gopeek learns about a Go executable before touching a
//! process: version, build info, pclntab, module data, and where the
//! runtime's globals are.
//!
//! [`GoProgram`] is built once per run and borrowed by every later layer
//! (the walker, the unwinder, the formatter).

use crate::binary::buildinfo::{BuildInfo, BuildInfoError};
use crate::binary::elf::GoBinary;
use crate::binary::locate::{locate_globals, read_string_table, RuntimeGlobals, SchedHint};
use crate::binary::moduledata::{find_moduledata, find_pclntab, ModuleData, ModuleDataError};
use crate::binary::pclntab::{Pclntab, PclntabError};
use crate::binary::version::GoVersion;
use thiserror::Error;

/// Oldest Go release whose runtime gopeek knows.
pub(crate) const MIN_MINOR: u32 = 19;

/// Why an executable cannot be inspected as a Go program.
#[allow(missing_docs)] // each variant's #[error] text documents it
#[derive(Debug, Error)]
pub enum ProgramError {
    #[error("{path}: {source}")]
    BuildInfo {
        path: String,
        source: BuildInfoError,
    },
    #[error("{path}: unrecognised Go version string {version:?}")]
    Version { path: String, version: String },
    #[error("{path}: built with {version}; gopeek supports Go 1.{MIN_MINOR} and later")]
    TooOld { path: String, version: String },
    #[error("{path}: {source}")]
    Tables {
        path: String,
        source: ModuleDataError,
    },
    #[error("{path}: {source}")]
    Pclntab { path: String, source: PclntabError },
}

/// A Go executable, analysed offline.
pub struct GoProgram<'a> {
    pub(crate) bin: &'a GoBinary,
    pub(crate) build_info: BuildInfo,
    /// The toolchain release: picks layouts, tables and printing rules.
    pub version: GoVersion,
    /// Functions, PC tables and inline trees: every symbol gopeek prints.
    pub pclntab: Pclntab<'a>,
    /// How the pclntab was found (section name or magic scan).
    pub(crate) pclntab_how: String,
    pub(crate) moduledata: Option<ModuleData>,
    /// Why the module data is missing, when it is.
    pub(crate) moduledata_error: Option<String>,
    /// Where `allgs`, `allm`, `sched`... live (symbol table or disassembly).
    pub globals: RuntimeGlobals,
    /// `runtime.waitReasonStrings` as the binary holds it, when found.
    pub(crate) wait_reasons_from_binary: Option<Vec<String>>,
}

impl<'a> GoProgram<'a> {
    /// Analyses `bin`. `sched` (offsets of `schedt.midle`/`nmidle`) lets the
    /// locator find `runtime.sched` in a stripped binary.
    pub fn load(bin: &'a GoBinary, sched: Option<SchedHint>) -> Result<Self, ProgramError> {
        let path = bin.path().display().to_string();
        let build_info = BuildInfo::from_binary(bin).map_err(|source| ProgramError::BuildInfo {
            path: path.clone(),
            source,
        })?;
        let version =
            GoVersion::parse(&build_info.go_version).ok_or_else(|| ProgramError::Version {
                path: path.clone(),
                version: build_info.go_version.clone(),
            })?;
        if !version.at_least(MIN_MINOR) {
            return Err(ProgramError::TooOld {
                path,
                version: version.raw,
            });
        }
        let loc = find_pclntab(bin).map_err(|source| ProgramError::Tables {
            path: path.clone(),
            source,
        })?;
        let data = bin
            .tail_at_vaddr(loc.addr)
            .ok_or_else(|| ProgramError::Tables {
                path: path.clone(),
                source: ModuleDataError::NoPclntab,
            })?;
        let pcerr = |source| ProgramError::Pclntab {
            path: path.clone(),
            source,
        };
        let provisional = Pclntab::parse(data, loc.addr, Some(0)).map_err(pcerr)?;
        let (moduledata, moduledata_error) = match find_moduledata(bin, &provisional, version.minor)
        {
            Ok(md) => (Some(md), None),
            Err(e) => (None, Some(e.to_string())),
        };
        let mut pclntab =
            Pclntab::parse(data, loc.addr, moduledata.as_ref().map(|m| m.text)).map_err(pcerr)?;
        if let Some(md) = &moduledata {
            if let Some(gofunc) = bin.tail_at_vaddr(md.gofunc) {
                pclntab = pclntab.with_gofunc(md.gofunc, gofunc);
            }
        }
        let globals = locate_globals(bin, &pclntab, moduledata.as_ref(), sched);
        let wait_reasons_from_binary =
            match (&globals.wait_reason_strings, globals.wait_reason_count) {
                (Some(l), Some(n)) => read_string_table(bin, l.addr, n),
                _ => None,
            };
        Ok(GoProgram {
            bin,
            build_info,
            version,
            pclntab,
            pclntab_how: loc.how,
            moduledata,
            moduledata_error,
            globals,
            wait_reasons_from_binary,
        })
    }

    /// `true` when the binary has neither a symbol table nor DWARF.
    pub(crate) fn is_stripped(&self) -> bool {
        !self.bin.has_symtab() && !self.bin.has_dwarf()
    }
}

impl crate::exit::ExitStatus for ProgramError {
    fn exit_code(&self) -> u8 {
        crate::exit::NOT_GO
    }
}
