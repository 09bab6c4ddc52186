//! Generates `src/layout/tables.rs`, gopeek's built-in runtime layouts for
//! binaries without DWARF. Run through `scripts/gen-layouts`, which builds
//! `scripts/layoutgen` with every installed Go toolchain for linux/amd64 and
//! linux/arm64 and then calls:
//!
//! ```text
//! cargo run --release --example gen_layouts -- [--out FILE] [--drop go1.N]... go1.N=BINARY...
//! ```
//!
//! Each `go1.N=BINARY` names an unstripped build (with DWARF and `.symtab`)
//! made by toolchain go1.N; give one amd64 and one arm64 build per version.
//! From each it takes the layouts of `gopeek::layout::RUNTIME_STRUCTS` (via
//! the same DWARF reader gopeek uses at run time) and the
//! `runtime.gStatusStrings` / `runtime.waitReasonStrings` arrays (via the
//! symbol table and the binary's static data).
//!
//! Versions not named on the command line are carried over from the tables
//! compiled into this build of gopeek (i.e. the current tables.rs), so adding
//! one version never needs the other toolchains; `--drop go1.N` removes one.
//! The output is deterministic and formatted as rustfmt would.

use gopeek::binary::elf::{Arch, GoBinary};
use gopeek::binary::version::GoVersion;
use gopeek::layout::{
    self, supported_minors, symbol_string_array, version_table, RuntimeLayout, RuntimeOffsets,
    StructLayout, RUNTIME_STRUCTS,
};
use gopeek::memory::MemoryExt;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Everything the tables hold for one Go minor version.
#[derive(Debug, Clone, PartialEq)]
struct Version {
    minor: u32,
    toolchain: String,
    structs: Vec<StructLayout>,
    arm64_overrides: Vec<StructLayout>,
    gstatus: Vec<String>,
    wait_reasons: Vec<String>,
}

/// What one binary contributed.
struct Extracted {
    toolchain: String,
    layout: RuntimeLayout,
    gstatus: Vec<String>,
    wait_reasons: Vec<String>,
}

fn extract(minor: u32, path: &Path) -> Result<(Arch, Extracted), String> {
    let bin = GoBinary::open(path).map_err(|e| e.to_string())?;
    let at = |what: &str| format!("{}: {what}", path.display());
    let addr = bin
        .symbol("runtime.buildVersion")
        .ok_or_else(|| at("no runtime.buildVersion symbol (stripped?)"))?;
    let toolchain = bin
        .read_go_string(addr, 256)
        .map_err(|e| at(&e.to_string()))?;
    let version = GoVersion::parse(&toolchain)
        .ok_or_else(|| at(&format!("unparsable Go version {toolchain:?}")))?;
    if (version.major, version.minor) != (1, minor) {
        return Err(at(&format!("built by {toolchain}, not go1.{minor}")));
    }
    let layout = RuntimeLayout::from_dwarf(&bin).map_err(|e| at(&e.to_string()))?;
    RuntimeOffsets::from_layout(&layout).map_err(|e| at(&e.to_string()))?;
    let gstatus =
        symbol_string_array(&bin, "runtime.gStatusStrings").map_err(|e| at(&e.to_string()))?;
    let wait_reasons =
        symbol_string_array(&bin, "runtime.waitReasonStrings").map_err(|e| at(&e.to_string()))?;
    Ok((
        bin.arch(),
        Extracted {
            toolchain,
            layout,
            gstatus,
            wait_reasons,
        },
    ))
}

fn ordered(layout: &RuntimeLayout) -> Vec<StructLayout> {
    RUNTIME_STRUCTS
        .iter()
        .filter_map(|n| layout.struct_layout(n).cloned())
        .collect()
}

fn generate(minor: u32, amd64: Extracted, arm64: Extracted) -> Result<Version, String> {
    if amd64.toolchain != arm64.toolchain {
        return Err(format!(
            "go1.{minor}: amd64 build is {}, arm64 build is {}",
            amd64.toolchain, arm64.toolchain
        ));
    }
    if amd64.gstatus != arm64.gstatus || amd64.wait_reasons != arm64.wait_reasons {
        return Err(format!(
            "go1.{minor}: status or wait-reason strings differ between amd64 and arm64"
        ));
    }
    let structs = ordered(&amd64.layout);
    let arm = ordered(&arm64.layout);
    if arm
        .iter()
        .map(|s| &s.name)
        .ne(structs.iter().map(|s| &s.name))
    {
        return Err(format!(
            "go1.{minor}: amd64 and arm64 DWARF describe different sets of structs"
        ));
    }
    let arm64_overrides = arm
        .into_iter()
        .zip(&structs)
        .filter(|(a, b)| a != *b)
        .map(|(a, _)| a)
        .collect();
    Ok(Version {
        minor,
        toolchain: amd64.toolchain,
        structs,
        arm64_overrides,
        gstatus: amd64.gstatus,
        wait_reasons: amd64.wait_reasons,
    })
}

/// The table compiled into this gopeek, for versions not regenerated.
fn compiled(minor: u32) -> Option<Version> {
    let t = version_table(minor)?;
    let conv = |s: &[layout::StructTable]| s.iter().map(|s| s.to_layout()).collect();
    Some(Version {
        minor,
        toolchain: t.toolchain.to_string(),
        structs: conv(t.structs),
        arm64_overrides: conv(t.arm64_overrides),
        gstatus: t.gstatus.iter().map(|s| s.to_string()).collect(),
        wait_reasons: t.wait_reasons.iter().map(|s| s.to_string()).collect(),
    })
}

// ---------------------------------------------------------------------------
// Emission, in the shape rustfmt (default configuration) gives it.

const MAX_WIDTH: usize = 100;
/// rustfmt's `array_width` (60% of max_width): wider arrays go vertical.
const ARRAY_WIDTH: usize = 60;

/// rustfmt's `short_array_element_width_threshold`: arrays whose items are
/// all this short are filled line by line ("mixed" layout).
const SHORT_ITEM: usize = 10;

/// An array literal laid out the way rustfmt lays it out: on one line if it
/// fits, filled line by line if every item is short, else one item a line.
/// `prefix` starts the first line (after the indentation) and ends in `&[`
/// or `[`; `suffix` follows the closing bracket.
fn array(out: &mut String, indent: usize, prefix: &str, items: &[String], suffix: &str) {
    let pad = " ".repeat(indent);
    let (prefix, open) = match prefix.strip_suffix("&[") {
        Some(p) => (p, "&["),
        None => (prefix.strip_suffix('[').unwrap_or(prefix), "["),
    };
    let one_line = format!("{open}{}]", items.join(", "));
    if items.is_empty()
        || (one_line.len() <= ARRAY_WIDTH
            && indent + prefix.len() + one_line.len() + suffix.len() <= MAX_WIDTH)
    {
        let _ = writeln!(out, "{pad}{prefix}{one_line}{suffix}");
        return;
    }
    let _ = writeln!(out, "{pad}{prefix}{open}");
    let inner = format!("{pad}    ");
    if items.iter().all(|it| it.len() <= SHORT_ITEM) {
        let mut line = String::new();
        for it in items {
            if !line.is_empty() && inner.len() + line.len() + 1 + it.len() + 1 > MAX_WIDTH {
                let _ = writeln!(out, "{inner}{line}");
                line.clear();
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(it);
            line.push(',');
        }
        let _ = writeln!(out, "{inner}{line}");
    } else {
        for it in items {
            let _ = writeln!(out, "{inner}{it},");
        }
    }
    let _ = writeln!(out, "{pad}]{suffix}");
}

/// One `StructTable { ... }` literal whose opening line is already written;
/// `indent` is that of the line holding the opening brace.
fn struct_body(out: &mut String, indent: usize, s: &StructLayout) {
    let pad = " ".repeat(indent + 4);
    let _ = writeln!(out, "{pad}name: {:?},", s.name);
    let _ = writeln!(out, "{pad}size: {:#x},", s.size);
    let fields: Vec<String> = s
        .fields
        .iter()
        .map(|(n, o)| format!("({n:?}, {o:#x})"))
        .collect();
    array(out, indent + 4, "fields: &[", &fields, ",");
}

fn structs(out: &mut String, key: &str, list: &[StructLayout]) {
    match list {
        [] => {
            let _ = writeln!(out, "    {key}: &[],");
        }
        // rustfmt hugs a lone struct literal: `&[StructTable { ... }]`.
        [s] => {
            let _ = writeln!(out, "    {key}: &[StructTable {{");
            struct_body(out, 4, s);
            let _ = writeln!(out, "    }}],");
        }
        _ => {
            let _ = writeln!(out, "    {key}: &[");
            for s in list {
                let _ = writeln!(out, "        StructTable {{");
                struct_body(out, 8, s);
                let _ = writeln!(out, "        }},");
            }
            let _ = writeln!(out, "    ],");
        }
    }
}

fn strings(out: &mut String, key: &str, list: &[String]) {
    let items: Vec<String> = list.iter().map(|s| format!("{s:?}")).collect();
    array(out, 4, &format!("{key}: &["), &items, ",");
}

fn emit(versions: &[Version]) -> String {
    let mut out = String::new();
    let n = versions.len();
    let minors: Vec<String> = versions.iter().map(|v| v.minor.to_string()).collect();
    let consts: Vec<String> = versions
        .iter()
        .map(|v| format!("GO1_{}", v.minor))
        .collect();
    out.push_str(
        "// generated by scripts/gen-layouts; do not edit

//! Built-in runtime struct layouts, goroutine status names and wait reasons
//! per Go minor version: what a binary without DWARF cannot tell gopeek.
//!
//! Generated by `scripts/gen-layouts` (`examples/gen_layouts.rs`) from the
//! DWARF and static data of `scripts/layoutgen` built by each Go toolchain
//! for linux/amd64 and linux/arm64. To support a new Go version, install its
//! toolchain and run `scripts/gen-layouts`; `tests/layout_tables.rs` checks
//! every table against a fresh build. Do not edit by hand.

use super::{StructTable, VersionTable};

/// The Go minor versions below, in order.
",
    );
    array(
        &mut out,
        0,
        &format!("static SUPPORTED: [u32; {n}] = ["),
        &minors,
        ";",
    );
    out.push_str(
        "
/// Every table, in the order of `SUPPORTED`.
",
    );
    array(
        &mut out,
        0,
        &format!("static VERSIONS: [VersionTable; {n}] = ["),
        &consts,
        ";",
    );
    out.push_str(
        "
/// Go minor versions gopeek has built-in tables for. Binaries of other
/// versions work only when they keep their DWARF.
pub fn supported_minors() -> &'static [u32] {
    &SUPPORTED
}

/// Everything generated for Go `1.<minor>`, if gopeek has it.
pub fn version_table(minor: u32) -> Option<&'static VersionTable> {
    VERSIONS.iter().find(|t| t.minor == minor)
}

/// `runtime.waitReasonStrings` of Go `1.<minor>`, indexed by `g.waitreason`
/// (the enum was reordered in 1.26: never share indices across versions).
pub fn wait_reason_table(minor: u32) -> Option<&'static [&'static str]> {
    version_table(minor).map(|t| t.wait_reasons)
}

/// `runtime.gStatusStrings` of Go `1.<minor>`, indexed by
/// `g.atomicstatus &^ _Gscan`.
pub fn gstatus_table(minor: u32) -> Option<&'static [&'static str]> {
    version_table(minor).map(|t| t.gstatus)
}
",
    );
    for v in versions {
        let _ = writeln!(out);
        let _ = writeln!(out, "/// Generated from {}.", v.toolchain);
        let _ = writeln!(out, "const GO1_{}: VersionTable = VersionTable {{", v.minor);
        let _ = writeln!(out, "    minor: {},", v.minor);
        let _ = writeln!(out, "    toolchain: {:?},", v.toolchain);
        structs(&mut out, "structs", &v.structs);
        structs(&mut out, "arm64_overrides", &v.arm64_overrides);
        strings(&mut out, "gstatus", &v.gstatus);
        strings(&mut out, "wait_reasons", &v.wait_reasons);
        let _ = writeln!(out, "}};");
    }
    out
}

fn usage() -> ExitCode {
    eprintln!("usage: gen_layouts [--out FILE] [--drop go1.N]... go1.N=BINARY...");
    eprintln!(
        "  give one linux/amd64 and one linux/arm64 unstripped build per regenerated version"
    );
    ExitCode::from(2)
}

fn parse_minor(s: &str) -> Option<u32> {
    s.strip_prefix("go1.")?.parse().ok()
}

fn run() -> Result<ExitCode, String> {
    let mut out: Option<PathBuf> = None;
    let mut drop = Vec::new();
    let mut inputs: BTreeMap<u32, Vec<PathBuf>> = BTreeMap::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--out" => out = Some(args.next().ok_or("--out needs a file")?.into()),
            "--drop" => drop.push(
                args.next()
                    .and_then(|v| parse_minor(&v))
                    .ok_or("--drop needs go1.N")?,
            ),
            "-h" | "--help" => return Ok(usage()),
            _ => {
                let Some((v, path)) = a.split_once('=') else {
                    return Ok(usage());
                };
                let minor = parse_minor(v).ok_or_else(|| format!("{v}: expected go1.N"))?;
                inputs.entry(minor).or_default().push(path.into());
            }
        }
    }

    let mut versions: BTreeMap<u32, Version> = BTreeMap::new();
    for &minor in supported_minors() {
        if !drop.contains(&minor) && !inputs.contains_key(&minor) {
            versions.insert(minor, compiled(minor).ok_or("compiled table vanished")?);
        }
    }
    for (minor, paths) in inputs {
        let mut by_arch: BTreeMap<&'static str, Extracted> = BTreeMap::new();
        for p in &paths {
            let (arch, x) = extract(minor, p)?;
            if by_arch.insert(arch.goarch(), x).is_some() {
                return Err(format!("go1.{minor}: two {} builds given", arch.goarch()));
            }
        }
        let amd64 = by_arch
            .remove("amd64")
            .ok_or_else(|| format!("go1.{minor}: no linux/amd64 build given"))?;
        let arm64 = by_arch
            .remove("arm64")
            .ok_or_else(|| format!("go1.{minor}: no linux/arm64 build given"))?;
        let v = generate(minor, amd64, arm64)?;
        eprintln!(
            "go1.{minor} ({}): {}; {} structs, {} arm64 override(s), {} statuses, {} wait reasons",
            v.toolchain,
            if compiled(minor).as_ref() == Some(&v) {
                "unchanged"
            } else {
                "updated"
            },
            v.structs.len(),
            v.arm64_overrides.len(),
            v.gstatus.len(),
            v.wait_reasons.len()
        );
        versions.insert(minor, v);
    }

    let text = emit(&versions.into_values().collect::<Vec<_>>());
    match out {
        Some(path) => {
            std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("gen_layouts: {e}");
            ExitCode::FAILURE
        }
    }
}
