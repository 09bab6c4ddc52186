//! `gopeek ps` as a table: one line per Go process, widths fitted to the
//! contents (the command line last, whole, since it is what tells two
//! instances of one service apart).

use crate::ps::{PsEntry, PsReport};
use std::io::{self, Write};

/// Writes the table, then (under `--all`) the skipped processes.
pub fn write_text(r: &PsReport, w: &mut dyn Write) -> io::Result<()> {
    let rows: Vec<[String; 9]> = r.processes.iter().map(row).collect();
    let head = [
        "PID",
        "NSPID",
        "USER",
        "GO",
        "GOROUTINES",
        "RSS",
        "CONTAINER",
        "MODULE",
        "EXE",
    ];
    let mut width = head.map(str::len);
    for row in &rows {
        for (wd, cell) in width.iter_mut().zip(row) {
            *wd = (*wd).max(cell.chars().count());
        }
    }
    let line = |w: &mut dyn Write, cells: &[&str], cmd: &str| -> io::Result<()> {
        for (i, c) in cells.iter().enumerate() {
            // Numbers right-aligned, text left-aligned.
            if matches!(i, 0 | 1 | 4 | 5) {
                write!(w, "{c:>width$}  ", width = width[i])?;
            } else {
                write!(w, "{c:<width$}  ", width = width[i])?;
            }
        }
        writeln!(w, "{cmd}")
    };
    line(w, &head, "COMMAND")?;
    for (row, p) in rows.iter().zip(&r.processes) {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        line(w, &cells, &p.cmdline)?;
    }
    if r.processes.is_empty() {
        writeln!(
            w,
            "(no Go process found; run as root to see every user's processes)"
        )?;
    }
    if let Some(skipped) = &r.skipped {
        writeln!(w)?;
        writeln!(w, "skipped ({}):", skipped.len())?;
        for s in skipped {
            writeln!(
                w,
                "  {:>7}  {:<16} {}",
                s.pid,
                s.comm.as_deref().unwrap_or("?"),
                s.reason
            )?;
        }
    }
    Ok(())
}

fn row(p: &PsEntry) -> [String; 9] {
    let module = match (&p.module, &p.module_version) {
        (Some(m), Some(v)) if !v.is_empty() => format!("{m}@{v}"),
        (Some(m), _) => m.clone(),
        _ => "-".into(),
    };
    [
        p.pid.to_string(),
        p.nspid.to_string(),
        p.user.clone(),
        p.go_version.clone(),
        p.goroutines.map_or_else(|| "-".into(), |n| n.to_string()),
        human_bytes(p.rss_bytes),
        // The short form docker and crictl print.
        p.container
            .as_deref()
            .map_or_else(|| "-".into(), |c| c.chars().take(12).collect()),
        module,
        p.exe.clone(),
    ]
}

/// `12.3M`-style sizes, as `ps`-like tools print them.
fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "K", "M", "G", "T"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b}B")
    } else {
        format!("{v:.1}{}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(human_bytes(512), "512B");
        assert_eq!(human_bytes(1536), "1.5K");
        assert_eq!(human_bytes(12 << 20), "12.0M");
    }
}
