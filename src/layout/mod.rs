//! Byte layouts of the Go runtime structs gopeek reads from a target.
//!
//! gopeek reads `runtime.g`, `runtime.m`, `runtime.p`, `runtime.schedt`,
//! `runtime.moduledata`, ... out of another process's memory, so it needs the
//! offset of every field it touches, for the exact Go version the target was
//! built with. Two sources give them:
//!
//! * the binary's own DWARF ([`RuntimeLayout::from_dwarf`]): exact, and works
//!   for Go versions newer than gopeek;
//! * built-in per-version tables ([`RuntimeLayout::from_table`]) for stripped
//!   binaries (`-ldflags=-s -w`, most production builds). They are generated
//!   from DWARF by `scripts/gen-layouts` (see [`tables`]), never typed in.
//!
//! [`RuntimeLayout::for_binary`] picks between them, and [`RuntimeOffsets`]
//! turns a layout into the typed, composed offsets the walker uses
//! (`g.sched.sp` = `off(g.sched) + off(gobuf.sp)`).

pub(crate) mod dwarf;
pub mod offsets;
pub(crate) mod tables;

pub use dwarf::{dwarf_structs, dwarf_variables, Sections};
pub use offsets::{
    AncestorInfoOffsets, FuncOffsets, GOffsets, MOffsets, ModuledataOffsets, POffsets,
    PcHeaderOffsets, RuntimeOffsets, SchedDetailOffsets, SchedOffsets,
};
pub use tables::{gstatus_table, supported_minors, version_table, wait_reason_table};

use crate::binary::elf::{Arch, GoBinary};
use crate::binary::version::GoVersion;
use crate::memory::MemoryExt;
use std::collections::BTreeMap;
use thiserror::Error;

/// Every struct gopeek records a layout for, with all of its fields. This is
/// the list the DWARF reader looks for and the generator writes into the
/// tables.
pub const RUNTIME_STRUCTS: &[&str] = &[
    "runtime.g",
    "runtime.gobuf",
    "runtime.stack",
    "runtime.m",
    "runtime.p",
    "runtime.schedt",
    "runtime.moduledata",
    "runtime.ancestorInfo",
    "runtime.gQueue",
    "runtime._func",
    "runtime.pcHeader",
    "runtime.listHeadManual",
    "runtime.listNodeManual",
    "runtime.sysmontick",
    "runtime.gList",
    "runtime.timers",
    "runtime.workType",
    "runtime.mstats",
    "runtime.gcControllerState",
];

/// The structs every supported Go version has and a layout must have to be
/// usable. The other [`RUNTIME_STRUCTS`] exist only in some versions
/// (`listHeadManual`/`listNodeManual`: the idle-M list from Go 1.26).
pub(crate) const REQUIRED_STRUCTS: &[&str] = &[
    "runtime.g",
    "runtime.gobuf",
    "runtime.stack",
    "runtime.m",
    "runtime.p",
    "runtime.schedt",
    "runtime.moduledata",
    "runtime.ancestorInfo",
    "runtime.gQueue",
    "runtime._func",
    "runtime.pcHeader",
];

/// Why no usable layout could be produced.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum LayoutError {
    /// The binary carries no `.debug_info` (built with `-w` or stripped).
    #[error("the binary has no DWARF debug info")]
    NoDwarf,
    /// DWARF is there but lacks runtime structs gopeek needs.
    #[error("the binary's DWARF lacks {}", .missing.join(", "))]
    DwarfIncomplete {
        /// Fully qualified names of the missing structs.
        missing: Vec<String>,
    },
    /// A struct the typed offsets need is absent from the layout.
    #[error("runtime layout ({source_desc}) has no struct {name}")]
    MissingStruct {
        /// Where the layout came from, for the message.
        source_desc: String,
        /// The struct, e.g. `runtime.gQueue`.
        name: String,
    },
    /// A field the typed offsets need is absent from the layout.
    #[error("runtime layout ({source_desc}) has no field {structure}.{field}")]
    MissingField {
        /// Where the layout came from, for the message.
        source_desc: String,
        /// The struct, e.g. `runtime.g`.
        structure: String,
        /// The field (or the alternatives tried, joined by `/`).
        field: String,
    },
    /// No DWARF route and no built-in table for this Go version.
    #[error(
        "no runtime struct layouts for {version}: {dwarf}, and gopeek has built-in tables only for {supported}. \
         To add go1.{minor}: install go1.{minor} and run scripts/gen-layouts (it regenerates src/layout/tables.rs), \
         or run gopeek on a build of the target that keeps its DWARF (no -ldflags=-w)"
    )]
    UnsupportedVersion {
        /// The version string of the binary.
        version: String,
        /// Its Go minor number.
        minor: u32,
        /// The supported versions, formatted (`go1.19, go1.21, ...`).
        supported: String,
        /// Why the binary's DWARF could not be used.
        dwarf: String,
    },
    /// A `[N]string` table could not be read from an unstripped binary.
    #[error("cannot read {symbol}: {reason}")]
    Symbol {
        /// The symbol, e.g. `runtime.waitReasonStrings`.
        symbol: String,
        /// What went wrong.
        reason: String,
    },
}

/// The layout of one struct: its size and every field's byte offset, in
/// declaration order (as DWARF lists them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StructLayout {
    /// Fully qualified Go name, e.g. `runtime.g`.
    pub name: String,
    /// `unsafe.Sizeof`: needed to step through arrays of the struct and to
    /// copy a whole one out of the target in a single read.
    pub size: u64,
    /// `(field name, byte offset)` for every field, including padding
    /// fields named `_` and embedded ones (named after their type). Names
    /// may repeat (`_`); [`StructLayout::offset`] returns the first.
    pub fields: Vec<(String, u64)>,
}

impl StructLayout {
    /// Byte offset of `field` (the first one of that name).
    pub fn offset(&self, field: &str) -> Option<u64> {
        self.fields
            .iter()
            .find(|(n, _)| n == field)
            .map(|&(_, o)| o)
    }
}

/// Where a [`RuntimeLayout`] came from, for messages, `gopeek info` and the
/// JSON report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum LayoutSource {
    /// The binary's own DWARF.
    Dwarf,
    /// gopeek's built-in table for Go `1.<version>`.
    Table {
        /// The Go minor version of the table.
        version: u32,
    },
}

impl std::fmt::Display for LayoutSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LayoutSource::Dwarf => f.write_str("from DWARF"),
            LayoutSource::Table { version } => write!(f, "built-in table for go1.{version}"),
        }
    }
}

/// The layouts of all the runtime structs in [`RUNTIME_STRUCTS`] for one
/// binary: the single source of field offsets for every reader of the
/// target's memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeLayout {
    /// Where the offsets come from.
    pub source: LayoutSource,
    structs: BTreeMap<String, StructLayout>,
}

impl RuntimeLayout {
    /// Builds a layout from already extracted structs (tests, tools).
    pub fn new(source: LayoutSource, structs: impl IntoIterator<Item = StructLayout>) -> Self {
        RuntimeLayout {
            source,
            structs: structs.into_iter().map(|s| (s.name.clone(), s)).collect(),
        }
    }

    /// The layout of struct `name` (fully qualified: `runtime.g`).
    pub fn struct_layout(&self, name: &str) -> Option<&StructLayout> {
        self.structs.get(name)
    }

    /// Byte offset of `field` in struct `name` (`field("runtime.g", "goid")`).
    pub(crate) fn field(&self, name: &str, field: &str) -> Option<u64> {
        self.structs.get(name)?.offset(field)
    }

    /// Size of struct `name`.
    pub fn size(&self, name: &str) -> Option<u64> {
        self.structs.get(name).map(|s| s.size)
    }

    /// Every struct, sorted by name (for the generator and the tests).
    pub fn structs(&self) -> impl Iterator<Item = &StructLayout> {
        self.structs.values()
    }

    /// Reads the layouts from the binary's DWARF. Fails with
    /// [`LayoutError::NoDwarf`] without `.debug_info`, and with
    /// [`LayoutError::DwarfIncomplete`] if any of [`REQUIRED_STRUCTS`] is
    /// missing.
    pub fn from_dwarf(bin: &GoBinary) -> Result<Self, LayoutError> {
        if !bin.has_dwarf() {
            return Err(LayoutError::NoDwarf);
        }
        let structs = dwarf::dwarf_structs(bin, RUNTIME_STRUCTS)?;
        let missing: Vec<String> = REQUIRED_STRUCTS
            .iter()
            .filter(|n| !structs.contains_key(**n))
            .map(|&n| n.to_string())
            .collect();
        if !missing.is_empty() {
            return Err(LayoutError::DwarfIncomplete { missing });
        }
        Ok(RuntimeLayout {
            source: LayoutSource::Dwarf,
            structs,
        })
    }

    /// The built-in table for Go `1.<minor>` on linux/amd64, or `None` if
    /// gopeek has no table for that version (see [`supported_minors`]).
    pub fn from_table(minor: u32) -> Option<Self> {
        Self::from_table_for(minor, Arch::Amd64)
    }

    /// The built-in table for Go `1.<minor>` on `arch`. The generator reads
    /// both architectures; they differ only where the runtime itself does
    /// (e.g. `runtime.p` grows by the arm64 `xRegs` state in 1.26+).
    pub fn from_table_for(minor: u32, arch: Arch) -> Option<Self> {
        let t = version_table(minor)?;
        let structs = t.structs.iter().map(|s| {
            let s = match arch {
                Arch::Amd64 => s,
                Arch::Arm64 => t
                    .arm64_overrides
                    .iter()
                    .find(|o| o.name == s.name)
                    .unwrap_or(s),
            };
            s.to_layout()
        });
        Some(Self::new(LayoutSource::Table { version: minor }, structs))
    }

    /// The layout gopeek uses for `bin`: its DWARF when present and
    /// complete (any Go version), else the built-in table for its Go minor
    /// version and architecture. The error says which versions have tables
    /// and how to add one.
    pub fn for_binary(bin: &GoBinary, version: &GoVersion) -> Result<Self, LayoutError> {
        let dwarf_problem = match Self::from_dwarf(bin) {
            Ok(layout) => match RuntimeOffsets::from_layout(&layout) {
                Ok(_) => return Ok(layout),
                Err(e) => e.to_string(),
            },
            Err(e) => e.to_string(),
        };
        if version.major == 1 {
            if let Some(layout) = Self::from_table_for(version.minor, bin.arch()) {
                return Ok(layout);
            }
        }
        let supported = supported_minors()
            .iter()
            .map(|m| format!("go1.{m}"))
            .collect::<Vec<_>>()
            .join(", ");
        Err(LayoutError::UnsupportedVersion {
            version: version.raw.clone(),
            minor: version.minor,
            supported,
            dwarf: dwarf_problem,
        })
    }

    /// Typed, composed offsets for the walker; shorthand for
    /// [`RuntimeOffsets::from_layout`].
    pub fn offsets(&self) -> Result<RuntimeOffsets, LayoutError> {
        RuntimeOffsets::from_layout(self)
    }
}

/// One struct of a generated table (static data in [`tables`]).
#[derive(Debug)]
pub struct StructTable {
    /// Fully qualified name, e.g. `runtime.g`.
    pub(crate) name: &'static str,
    /// Size in bytes.
    pub(crate) size: u64,
    /// `(field, offset)` in declaration order.
    pub(crate) fields: &'static [(&'static str, u64)],
}

impl StructTable {
    /// The owned form used by [`RuntimeLayout`].
    pub fn to_layout(&self) -> StructLayout {
        StructLayout {
            name: self.name.to_string(),
            size: self.size,
            fields: self
                .fields
                .iter()
                .map(|&(n, o)| (n.to_string(), o))
                .collect(),
        }
    }
}

/// Everything generated for one Go minor version: what a stripped binary of
/// that version needs and cannot tell about itself.
#[derive(Debug)]
pub struct VersionTable {
    /// Go minor version (`27` for go1.27.x).
    pub(crate) minor: u32,
    /// The toolchain the table was generated from (`go1.27.4`), for
    /// provenance.
    pub toolchain: &'static str,
    /// linux/amd64 layouts of [`RUNTIME_STRUCTS`].
    pub structs: &'static [StructTable],
    /// linux/arm64 layouts of the structs whose arm64 layout differs from
    /// amd64 (usually none).
    pub arm64_overrides: &'static [StructTable],
    /// `runtime.gStatusStrings`: the status names Go prints, by
    /// `g.atomicstatus &^ _Gscan`.
    pub gstatus: &'static [&'static str],
    /// `runtime.waitReasonStrings`: the wait reasons Go prints, by
    /// `g.waitreason`. The enum is reordered between versions (1.26).
    pub wait_reasons: &'static [&'static str],
}

/// Reads a Go `[N]string` array global (`runtime.waitReasonStrings`,
/// `runtime.gStatusStrings`) from an unstripped binary's initialized data:
/// the symbol table gives its address and size (N = size / 16), the string
/// headers and bytes are read through the binary's static image. Used by the
/// table generator and by the tests that check the tables against real
/// binaries.
pub fn symbol_string_array(bin: &GoBinary, symbol: &str) -> Result<Vec<String>, LayoutError> {
    use object::{Object, ObjectSymbol};
    let err = |reason: &str| LayoutError::Symbol {
        symbol: symbol.to_string(),
        reason: reason.to_string(),
    };
    let file = object::File::parse(bin.data()).map_err(|e| err(&e.to_string()))?;
    let sym = file
        .symbol_by_name(symbol)
        .ok_or_else(|| err("no such symbol (stripped binary?)"))?;
    let (addr, size) = (sym.address(), sym.size());
    if size % 16 != 0 || size > 16 * 4096 {
        return Err(err(&format!(
            "symbol size {size} is not that of a [N]string"
        )));
    }
    (0..size / 16)
        .map(|i| {
            bin.read_go_string(addr + 16 * i, 4096)
                .map_err(|e| err(&e.to_string()))
        })
        .collect()
}

/// Analyses `bin` and picks its runtime layout (DWARF, else the table for
/// its version), using the layout to locate `runtime.sched` too (the one
/// global the locator needs struct offsets for). The layout error is
/// returned beside the program: `gopeek info` still has plenty to say
/// about a binary whose layout is unknown.
pub fn load_program(
    bin: &GoBinary,
) -> Result<
    (
        crate::binary::program::GoProgram<'_>,
        Result<RuntimeLayout, LayoutError>,
    ),
    crate::binary::program::ProgramError,
> {
    let mut prog = crate::binary::program::GoProgram::load(bin, None)?;
    let layout = RuntimeLayout::for_binary(bin, &prog.version);
    let hint = layout
        .as_ref()
        .ok()
        .and_then(|l| l.offsets().ok())
        .map(|o| crate::binary::locate::SchedHint {
            midle: o.sched.midle,
            nmidle: o.sched.nmidle,
            lock: o.sched.lock,
        });
    if let (Some(h), None) = (hint, &prog.globals.sched) {
        prog.globals.sched =
            crate::binary::locate::locate_sched(bin, &prog.pclntab, prog.moduledata.as_ref(), h);
    }
    let start_sema = layout
        .as_ref()
        .ok()
        .and_then(|l| l.field("runtime.workType", "startSema"));
    prog.globals.sched_extra = crate::binary::locate_sched::locate_sched_globals(
        bin,
        &prog.pclntab,
        prog.moduledata.as_ref(),
        start_sema,
    );
    Ok((prog, layout))
}

impl crate::exit::ExitStatus for LayoutError {
    fn exit_code(&self) -> u8 {
        crate::exit::NOT_GO
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn struct_layout_lookup() {
        let s = StructLayout {
            name: "runtime.x".into(),
            size: 16,
            fields: vec![("a".into(), 0), ("_".into(), 4), ("_".into(), 8)],
        };
        assert_eq!(s.offset("a"), Some(0));
        assert_eq!(s.offset("_"), Some(4));
        assert_eq!(s.offset("b"), None);
        let l = RuntimeLayout::new(LayoutSource::Dwarf, [s]);
        assert_eq!(l.field("runtime.x", "_"), Some(4));
        assert_eq!(l.size("runtime.x"), Some(16));
        assert_eq!(l.field("runtime.y", "a"), None);
    }

    #[test]
    fn every_table_has_every_required_struct() {
        for &minor in supported_minors() {
            for arch in [Arch::Amd64, Arch::Arm64] {
                let l = RuntimeLayout::from_table_for(minor, arch).unwrap();
                for name in REQUIRED_STRUCTS {
                    assert!(
                        l.struct_layout(name).is_some(),
                        "go1.{minor} {arch:?} lacks {name}"
                    );
                }
                assert_eq!(l.source, LayoutSource::Table { version: minor });
            }
        }
        assert!(RuntimeLayout::from_table(20).is_none());
        assert!(RuntimeLayout::from_table(18).is_none());
    }

    #[test]
    fn unknown_version_error_says_how_to_add_it() {
        let e = LayoutError::UnsupportedVersion {
            version: "go1.28.0".into(),
            minor: 28,
            supported: "go1.19, go1.27".into(),
            dwarf: "the binary has no DWARF debug info".into(),
        };
        let msg = e.to_string();
        assert!(
            msg.contains("install go1.28 and run scripts/gen-layouts"),
            "{msg}"
        );
        assert!(msg.contains("go1.19, go1.27"), "{msg}");
    }
}
