//! `gopeek threads`'s writers: per thread a header, the registers in gdb's
//! `info registers` layout, the backtrace and the disassembly in gdb's
//! `x/Ni $pc` layout; or one JSON document, schema `gopeek.threads/1`.

use crate::binary::disasm::Insn;
use crate::walk::threads::{ThreadFrame, ThreadView};
use serde::ser::{SerializeMap, Serializer};
use std::io::{self, Write};

/// Names of the amd64 `eflags` bits gdb prints, by bit.
const EFLAGS: [(u32, &str); 16] = [
    (0, "CF"),
    (2, "PF"),
    (4, "AF"),
    (6, "ZF"),
    (7, "SF"),
    (8, "TF"),
    (9, "IF"),
    (10, "DF"),
    (11, "OF"),
    (14, "NT"),
    (16, "RF"),
    (17, "VM"),
    (18, "AC"),
    (19, "VIF"),
    (20, "VIP"),
    (21, "ID"),
];

/// gdb's natural column of a register: pointers in hex (rip with its
/// symbol), eflags as flag names, the rest as signed decimal.
fn natural(name: &str, v: u64, pc_symbol: Option<&str>) -> String {
    match name {
        "rbp" | "rsp" | "sp" | "x29" => format!("{v:#x}"),
        "rip" | "pc" => match pc_symbol {
            Some(s) => format!("{v:#x} <{s}>"),
            None => format!("{v:#x}"),
        },
        "eflags" => {
            let set: Vec<&str> = EFLAGS
                .iter()
                .filter(|(bit, _)| v & (1 << bit) != 0)
                .map(|(_, n)| *n)
                .collect();
            format!("[ {} ]", set.join(" "))
        }
        "cpsr" => format!("{v:#x}"),
        _ => format!("{}", v as i64),
    }
}

/// Writes the text report: one block per thread.
pub fn write_threads_text(
    w: &mut dyn Write,
    r: &crate::snapshot::threads::ThreadsReport,
) -> io::Result<()> {
    writeln!(
        w,
        "process {} ({}, {}): {} threads, {} at {}",
        r.pid,
        r.exe,
        r.go_version,
        r.threads.len(),
        match r.pause_us {
            Some(us) => format!("held {us}µs"),
            None => "from a core file".into(),
        },
        r.taken_at
    )?;
    for warn in &r.warnings {
        writeln!(w, "warning: {warn}")?;
    }
    for t in &r.threads {
        writeln!(w)?;
        write_thread(w, t)?;
    }
    Ok(())
}

fn write_thread(w: &mut dyn Write, t: &ThreadView) -> io::Result<()> {
    let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    let g = match (t.on, t.goroutine) {
        ("user", Some(g)) => format!("running goroutine {g}"),
        ("g0" | "gsignal", Some(g)) => format!("on {} (goroutine {g})", t.on),
        ("g0" | "gsignal", None) => format!("on {}", t.on),
        (_, Some(g)) => format!("goroutine {g}"),
        (_, None) => "no goroutine".into(),
    };
    writeln!(
        w,
        "Thread {} \"{}\" state {}: M{} P{} {g}",
        t.tid,
        t.name,
        t.state,
        opt(t.m.map(|m| m.to_string())),
        opt(t.p.map(|p| p.to_string())),
    )?;
    for (name, v) in &t.registers {
        let hex = format!("{v:#x}");
        writeln!(
            w,
            "{name:<15}{hex:<20}{}",
            natural(name, *v, t.pc_symbol.as_deref())
        )?;
    }
    if !t.frames.is_empty() || t.frames_error.is_some() {
        writeln!(w, "backtrace:")?;
    }
    for (i, f) in t.frames.iter().enumerate() {
        write_frame(w, i, f)?;
    }
    if let Some(e) = &t.frames_error {
        writeln!(w, "(backtrace stopped: {e})")?;
    }
    if !t.disasm.is_empty() {
        writeln!(w, "disassembly:")?;
    }
    let mut last: Option<(&str, i32)> = None;
    for (i, d) in t.disasm.iter().enumerate() {
        if let (Some(f), Some(l)) = (&d.file, d.line) {
            if last != Some((f.as_str(), l)) {
                writeln!(w, "{f}:{l}")?;
                last = Some((f.as_str(), l));
            }
        }
        let mark = if i == 0 { "=> " } else { "   " };
        match &d.symbol {
            Some(s) => writeln!(w, "{mark}{:#x} <{s}>:\t{}", d.address, d.text)?,
            None => writeln!(w, "{mark}{:#x}:\t{}", d.address, d.text)?,
        }
    }
    if let Some(e) = &t.disasm_error {
        writeln!(w, "(disassembly: {e})")?;
    }
    Ok(())
}

/// gdb's `bt` line, Go's names: `#0  fn () at file:line`, then the PC
/// for the callers.
fn write_frame(w: &mut dyn Write, i: usize, f: &ThreadFrame) -> io::Result<()> {
    let at = if f.file.is_empty() {
        String::new()
    } else {
        format!(" at {}:{}", f.file, f.line)
    };
    if i == 0 {
        writeln!(w, "#{i:<3}{} (){at}", f.function)
    } else {
        writeln!(w, "#{i:<3}{:#018x} in {} (){at}", f.pc, f.function)
    }
}

/// The JSON document (`gopeek.threads/1`).
#[derive(Debug, serde::Serialize)]
pub struct ThreadsJson<'a> {
    /// Always `gopeek.threads/1`.
    pub schema: &'static str,
    /// The target.
    pub pid: i32,
    /// Its executable.
    pub exe: &'a str,
    /// Its Go version.
    pub go_version: &'a str,
    /// GOARCH (names the register set).
    pub goarch: &'a str,
    /// When the threads were held (RFC 3339).
    pub taken_at: &'a str,
    /// How long the target was held, µs.
    pub pause_us: Option<u64>,
    /// What the user should know (the scheduler unreadable...).
    pub warnings: &'a [String],
    /// Every thread.
    pub threads: Vec<ThreadJson<'a>>,
}

/// One thread in the JSON document.
#[derive(Debug, serde::Serialize)]
pub struct ThreadJson<'a> {
    tid: i32,
    name: &'a str,
    state: &'a str,
    m: Option<i64>,
    p: Option<i32>,
    goroutine: Option<u64>,
    on: &'a str,
    registers: Registers<'a>,
    frames: &'a [ThreadFrame],
    frames_error: Option<&'a str>,
    disasm: Vec<InsnJson<'a>>,
    disasm_error: Option<&'a str>,
}

/// The registers as one object `{name: value}` in gdb's order.
#[derive(Debug)]
struct Registers<'a>(&'a [(&'static str, u64)]);

impl serde::Serialize for Registers<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// One instruction in the JSON document: bytes as a hex string.
#[derive(Debug, serde::Serialize)]
struct InsnJson<'a> {
    address: u64,
    bytes: String,
    text: &'a str,
    symbol: Option<&'a str>,
    file: Option<&'a str>,
    line: Option<i32>,
}

impl<'a> ThreadsJson<'a> {
    /// The document of one report.
    pub fn new(r: &'a crate::snapshot::threads::ThreadsReport) -> Self {
        ThreadsJson {
            schema: "gopeek.threads/1",
            pid: r.pid,
            exe: &r.exe,
            go_version: &r.go_version,
            goarch: r.goarch,
            taken_at: &r.taken_at,
            pause_us: r.pause_us,
            warnings: &r.warnings,
            threads: r.threads.iter().map(thread_json).collect(),
        }
    }
}

fn thread_json(t: &ThreadView) -> ThreadJson<'_> {
    ThreadJson {
        tid: t.tid,
        name: &t.name,
        state: &t.state,
        m: t.m,
        p: t.p,
        goroutine: t.goroutine,
        on: t.on,
        registers: Registers(&t.registers),
        frames: &t.frames,
        frames_error: t.frames_error.as_deref(),
        disasm: t.disasm.iter().map(insn_json).collect(),
        disasm_error: t.disasm_error.as_deref(),
    }
}

fn insn_json(d: &Insn) -> InsnJson<'_> {
    InsnJson {
        address: d.address,
        bytes: d.bytes.iter().map(|b| format!("{b:02x}")).collect(),
        text: &d.text,
        symbol: d.symbol.as_deref(),
        file: d.file.as_deref(),
        line: d.line,
    }
}
