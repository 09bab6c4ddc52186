//! The report behind `gopeek info`: what a binary is and how gopeek will
//! read it. Plain data, so the text and JSON outputs cannot disagree.

use crate::binary::buildinfo::BuildInfo;
use crate::binary::locate::RuntimeGlobals;
use crate::binary::program::GoProgram;
use serde::Serialize;

/// `gopeek info` output (schema `gopeek.info/1`).
#[derive(Debug, Serialize)]
pub struct InfoReport {
    pub(crate) schema: &'static str,
    pub(crate) path: String,
    pub(crate) go_version: String,
    pub(crate) arch: &'static str,
    pub(crate) position_independent: bool,
    pub(crate) has_symtab: bool,
    pub(crate) has_dwarf: bool,
    pub(crate) stripped: bool,
    pub(crate) build: BuildInfo,
    pub(crate) pclntab: PclntabSummary,
    pub(crate) moduledata: Option<ModuleSummary>,
    pub(crate) moduledata_error: Option<String>,
    pub(crate) globals: RuntimeGlobals,
    pub(crate) layout_source: Option<String>,
    pub(crate) wait_reasons_source: String,
}

/// Where the pclntab is and what it holds.
#[derive(Debug, Serialize)]
pub(crate) struct PclntabSummary {
    pub(crate) addr: u64,
    pub(crate) format: &'static str,
    pub(crate) found_by: String,
    pub(crate) functions: usize,
    pub(crate) files: usize,
}

/// Where the module data is and the two fields it is needed for.
#[derive(Debug, Serialize)]
pub(crate) struct ModuleSummary {
    pub(crate) addr: u64,
    pub(crate) found_by: String,
    pub(crate) text: u64,
    pub(crate) gofunc: u64,
}

impl InfoReport {
    /// Gathers the report; `layout_source` comes from the layout layer.
    pub fn new(p: &GoProgram<'_>, layout_source: Option<String>) -> Self {
        let bin = p.bin;
        InfoReport {
            schema: "gopeek.info/1",
            path: bin.path().display().to_string(),
            go_version: p.version.raw.clone(),
            arch: bin.arch().goarch(),
            position_independent: bin.is_position_independent(),
            has_symtab: bin.has_symtab(),
            has_dwarf: bin.has_dwarf(),
            stripped: p.is_stripped(),
            build: p.build_info.clone(),
            pclntab: PclntabSummary {
                addr: p.pclntab.addr(),
                format: p.pclntab.version().label(),
                found_by: p.pclntab_how.clone(),
                functions: p.pclntab.nfunc(),
                files: p.pclntab.nfiles(),
            },
            moduledata: p.moduledata.as_ref().map(|m| ModuleSummary {
                addr: m.addr,
                found_by: m.how.clone(),
                text: m.text,
                gofunc: m.gofunc,
            }),
            moduledata_error: p.moduledata_error.clone(),
            globals: p.globals.clone(),
            layout_source,
            wait_reasons_source: if p.wait_reasons_from_binary.is_some() {
                "binary (runtime.waitReasonStrings)".into()
            } else {
                format!("built-in table for go1.{}", p.version.minor)
            },
        }
    }
}
