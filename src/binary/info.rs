//! The report behind `gopeek info`: what a binary is and how gopeek will
//! read it. Plain data, so the text and JSON outputs cannot disagree.

use crate::binary::buildinfo::BuildInfo;
use crate::binary::locate::RuntimeGlobals;
use crate::binary::program::GoProgram;
use serde::Serialize;
use std::io::{self, Write};

/// `gopeek info` output (schema `gopeek.info/1`).
#[derive(Debug, Serialize)]
pub struct InfoReport {
    pub schema: &'static str,
    pub path: String,
    pub go_version: String,
    pub arch: &'static str,
    pub position_independent: bool,
    pub has_symtab: bool,
    pub has_dwarf: bool,
    pub stripped: bool,
    pub build: BuildInfo,
    pub pclntab: PclntabSummary,
    pub moduledata: Option<ModuleSummary>,
    pub moduledata_error: Option<String>,
    pub globals: RuntimeGlobals,
    pub layout_source: Option<String>,
    pub wait_reasons_source: String,
}

/// Where the pclntab is and what it holds.
#[derive(Debug, Serialize)]
pub struct PclntabSummary {
    pub addr: u64,
    pub format: &'static str,
    pub found_by: String,
    pub functions: usize,
    pub files: usize,
}

/// Where the module data is and the two fields it is needed for.
#[derive(Debug, Serialize)]
pub struct ModuleSummary {
    pub addr: u64,
    pub found_by: String,
    pub text: u64,
    pub gofunc: u64,
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

    /// Human-readable form.
    pub fn write_text(&self, w: &mut dyn Write) -> io::Result<()> {
        let yes = |b: bool| if b { "yes" } else { "no" };
        writeln!(w, "path:          {}", self.path)?;
        writeln!(w, "go version:    {}", self.go_version)?;
        writeln!(
            w,
            "arch:          {}{}",
            self.arch,
            if self.position_independent {
                " (PIE)"
            } else {
                ""
            }
        )?;
        writeln!(
            w,
            "stripped:      {} (symtab: {}, DWARF: {})",
            yes(self.stripped),
            yes(self.has_symtab),
            yes(self.has_dwarf)
        )?;
        if let Some(p) = &self.build.path {
            writeln!(w, "main package:  {p}")?;
        }
        if let Some(m) = &self.build.main {
            writeln!(w, "main module:   {} {}", m.path, m.version)?;
        }
        for (k, v) in &self.build.settings {
            writeln!(w, "build:         {k}={v}")?;
        }
        for d in &self.build.deps {
            writeln!(w, "dep:           {} {} {}", d.path, d.version, d.sum)?;
        }
        writeln!(
            w,
            "pclntab:       {:#x}, Go {} format, {} functions, {} files (found by {})",
            self.pclntab.addr,
            self.pclntab.format,
            self.pclntab.functions,
            self.pclntab.files,
            self.pclntab.found_by
        )?;
        match &self.moduledata {
            Some(m) => writeln!(
                w,
                "moduledata:    {:#x} (found by {}), text {:#x}, gofunc {:#x}",
                m.addr, m.found_by, m.text, m.gofunc
            )?,
            None => writeln!(
                w,
                "moduledata:    not found: {}",
                self.moduledata_error.as_deref().unwrap_or("?")
            )?,
        }
        let g = &self.globals;
        for (name, l) in [
            ("allgs", &g.allgs),
            ("allglen", &g.allglen),
            ("allm", &g.allm),
            ("allp", &g.allp),
            ("sched", &g.sched),
            ("waitReasons", &g.wait_reason_strings),
        ] {
            match l {
                Some(l) => writeln!(
                    w,
                    "{:<15}{:#x} (from {})",
                    format!("{name}:"),
                    l.addr,
                    l.how
                )?,
                None => writeln!(w, "{:<15}not found", format!("{name}:"))?,
            }
        }
        if let Some(s) = &self.layout_source {
            writeln!(w, "layouts:       {s}")?;
        }
        writeln!(w, "wait reasons:  {}", self.wait_reasons_source)?;
        Ok(())
    }
}
