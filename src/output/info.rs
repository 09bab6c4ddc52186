//! `gopeek info` as text: what the binary is and how gopeek reads it.

use crate::binary::info::InfoReport;
use std::io::{self, Write};

/// `gopeek info`'s human-readable form.
pub fn write_text(report: &InfoReport, w: &mut dyn Write) -> io::Result<()> {
    let yes = |b: bool| if b { "yes" } else { "no" };
    writeln!(w, "path:          {}", report.path)?;
    writeln!(w, "go version:    {}", report.go_version)?;
    writeln!(
        w,
        "arch:          {}{}",
        report.arch,
        if report.position_independent {
            " (PIE)"
        } else {
            ""
        }
    )?;
    writeln!(
        w,
        "stripped:      {} (symtab: {}, DWARF: {})",
        yes(report.stripped),
        yes(report.has_symtab),
        yes(report.has_dwarf)
    )?;
    if let Some(p) = &report.build.path {
        writeln!(w, "main package:  {p}")?;
    }
    if let Some(m) = &report.build.main {
        writeln!(w, "main module:   {} {}", m.path, m.version)?;
    }
    for (k, v) in &report.build.settings {
        writeln!(w, "build:         {k}={v}")?;
    }
    for d in &report.build.deps {
        writeln!(w, "dep:           {} {} {}", d.path, d.version, d.sum)?;
    }
    writeln!(
        w,
        "pclntab:       {:#x}, Go {} format, {} functions, {} files (found by {})",
        report.pclntab.addr,
        report.pclntab.format,
        report.pclntab.functions,
        report.pclntab.files,
        report.pclntab.found_by
    )?;
    match &report.moduledata {
        Some(m) => writeln!(
            w,
            "moduledata:    {:#x} (found by {}), text {:#x}, gofunc {:#x}",
            m.addr, m.found_by, m.text, m.gofunc
        )?,
        None => writeln!(
            w,
            "moduledata:    not found: {}",
            report.moduledata_error.as_deref().unwrap_or("?")
        )?,
    }
    let g = &report.globals;
    for (name, l) in [
        ("allgs", &g.allgs),
        ("allglen", &g.allglen),
        ("allm", &g.allm),
        ("allp", &g.allp),
        ("sched", &g.sched),
        ("waitReasons", &g.wait_reason_strings),
        ("gomaxprocs", &g.sched_extra.gomaxprocs),
        ("starttime", &g.sched_extra.starttime),
        ("runtimeInitTime", &g.sched_extra.runtime_init_time),
        ("gcphase", &g.sched_extra.gcphase),
        ("worldsema", &g.sched_extra.worldsema),
        ("gcsema", &g.sched_extra.gcsema),
        ("work", &g.sched_extra.work),
        ("memstats", &g.sched_extra.memstats),
        ("gcController", &g.sched_extra.gc_controller),
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
    if let Some(s) = &report.layout_source {
        writeln!(w, "layouts:       {s}")?;
    }
    writeln!(w, "wait reasons:  {}", report.wait_reasons_source)?;
    Ok(())
}
