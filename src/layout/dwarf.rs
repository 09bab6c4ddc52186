//! Struct layouts and global addresses straight from a Go binary's DWARF.
//!
//! This is the route for every unstripped binary, including Go versions that
//! are newer than the built-in tables: the runtime describes its own structs
//! (`runtime.g`, `runtime.m`, ...) as `DW_TAG_structure_type` entries with a
//! `DW_TAG_member` per field, and its globals as `DW_TAG_variable` entries
//! with a `DW_OP_addr` location. Go emits DWARF 4 up to 1.24 and DWARF 5 from
//! 1.25; gimli reads both, and only the constant forms Go uses are needed.
//!
//! Speed: the runtime's types and globals live in the compilation units named
//! `runtime` (verified on go1.19 and go1.21 to go1.27: the struct DIEs sit in
//! one of the several `runtime` CUs). The scan reads those units first and
//! only falls back to the remaining units for names it has not found, so the
//! result never depends on that placement, only the time does. Only the
//! sections the scan needs (`.debug_info`, `.debug_abbrev`, `.debug_str`,
//! `.debug_addr`) are decompressed.
//!
//! The DWARF comes from the file and is not trusted: malformed entries are
//! skipped, a unit that fails to parse ends the scan of that unit only, and
//! nothing here panics on bad input.

use super::{LayoutError, StructLayout};
use crate::binary::elf::GoBinary;
use gimli::{AttributeValue, DebugAbbrevOffset, EndianSlice, LittleEndian, Reader};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

type Slice<'a> = EndianSlice<'a, LittleEndian>;

/// `DW_OP_addr`: the 8-byte address form Go uses for globals.
const DW_OP_ADDR: u8 = 0x03;
/// `DW_OP_addrx`: DWARF 5 indexed address (not emitted by Go so far, read for
/// robustness).
const DW_OP_ADDRX: u8 = 0xa1;
/// `DW_OP_plus_uconst`: the DWARF 2 way of writing a member offset.
const DW_OP_PLUS_UCONST: u8 = 0x23;

/// The decompressed DWARF sections gopeek reads. Owned here because Go
/// compresses its DWARF (`SHF_COMPRESSED`), so the bytes are not in the file
/// as they are. Shared by the layout scan and `value`'s type and variable
/// reader, so that a binary's DWARF is found and decompressed one way.
pub struct Sections<'b> {
    pub(crate) info: Cow<'b, [u8]>,
    pub(crate) abbrev: Cow<'b, [u8]>,
    pub(crate) str: Cow<'b, [u8]>,
    pub(crate) addr: Cow<'b, [u8]>,
    /// Location and range lists (DWARF 4 and 5 forms), for a frame's
    /// variables (`value::locals`).
    pub(crate) loc: Cow<'b, [u8]>,
    pub(crate) loclists: Cow<'b, [u8]>,
    pub(crate) ranges: Cow<'b, [u8]>,
    pub(crate) rnglists: Cow<'b, [u8]>,
}

impl<'b> Sections<'b> {
    /// The binary's sections; [`LayoutError::NoDwarf`] without
    /// `.debug_info` (stripped with `-ldflags=-w` or `-s`).
    pub fn load(bin: &'b GoBinary) -> Result<Self, LayoutError> {
        let get = |name: &str| bin.section_uncompressed(name).unwrap_or(Cow::Borrowed(&[]));
        let info = get(".debug_info");
        if info.is_empty() {
            return Err(LayoutError::NoDwarf);
        }
        Ok(Sections {
            info,
            abbrev: get(".debug_abbrev"),
            str: get(".debug_str"),
            addr: get(".debug_addr"),
            loc: get(".debug_loc"),
            loclists: get(".debug_loclists"),
            ranges: get(".debug_ranges"),
            rnglists: get(".debug_rnglists"),
        })
    }

    /// Sections given as bytes (the fuzzer's input; unit tests).
    pub fn from_bytes(info: &'b [u8], abbrev: &'b [u8], str: &'b [u8]) -> Self {
        Sections {
            info: Cow::Borrowed(info),
            abbrev: Cow::Borrowed(abbrev),
            str: Cow::Borrowed(str),
            addr: Cow::Borrowed(&[]),
            loc: Cow::Borrowed(&[]),
            loclists: Cow::Borrowed(&[]),
            ranges: Cow::Borrowed(&[]),
            rnglists: Cow::Borrowed(&[]),
        }
    }

    /// The location and range list sections too (the locals fuzzer).
    pub fn with_lists(
        mut self,
        loc: &'b [u8],
        loclists: &'b [u8],
        ranges: &'b [u8],
        rnglists: &'b [u8],
    ) -> Self {
        self.loc = Cow::Borrowed(loc);
        self.loclists = Cow::Borrowed(loclists);
        self.ranges = Cow::Borrowed(ranges);
        self.rnglists = Cow::Borrowed(rnglists);
        self
    }
}

/// One pass of the scan over a set of compilation units. It is generic over
/// what it collects so that struct layouts and variable addresses share the
/// unit filtering, the abbreviation cache and the error handling.
struct Scanner<'a> {
    info: gimli::DebugInfo<Slice<'a>>,
    abbrev: gimli::DebugAbbrev<Slice<'a>>,
    str: gimli::DebugStr<Slice<'a>>,
    addr: gimli::DebugAddr<Slice<'a>>,
    abbrevs: HashMap<u64, Arc<gimli::Abbreviations>>,
}

/// What a pass does with the top-level entries of a unit (the children of
/// its root entry, where Go puts every type and global).
trait Visitor {
    /// `true` once nothing more is wanted (ends the scan early).
    fn done(&self) -> bool;
    /// Sees a top-level entry; returns `true` to be shown its direct
    /// children through [`Visitor::child`], then [`Visitor::end`].
    fn top(&mut self, scanner: &Scanner<'_>, unit: &UnitInfo, entry: &Die<'_, '_, '_>) -> bool;
    /// A direct child of the entry `top` accepted.
    fn child(&mut self, _scanner: &Scanner<'_>, _entry: &Die<'_, '_, '_>) {}
    /// The children of the accepted entry are over.
    fn end(&mut self) {}
}

type Die<'abbrev, 'unit, 'a> = gimli::DebuggingInformationEntry<'abbrev, 'unit, Slice<'a>>;

/// Per-unit facts some attribute forms need.
struct UnitInfo {
    address_size: u8,
    addr_base: gimli::DebugAddrBase<usize>,
}

impl<'a> Scanner<'a> {
    fn new(s: &'a Sections<'_>) -> Self {
        Scanner {
            info: gimli::DebugInfo::new(&s.info, LittleEndian),
            abbrev: gimli::DebugAbbrev::new(&s.abbrev, LittleEndian),
            str: gimli::DebugStr::new(&s.str, LittleEndian),
            addr: gimli::DebugAddr::from(EndianSlice::new(&s.addr, LittleEndian)),
            abbrevs: HashMap::new(),
        }
    }

    fn abbreviations(
        &mut self,
        header: &gimli::UnitHeader<Slice<'a>>,
    ) -> Option<Arc<gimli::Abbreviations>> {
        let DebugAbbrevOffset(off) = header.debug_abbrev_offset();
        let key = off as u64;
        if let Some(a) = self.abbrevs.get(&key) {
            return Some(a.clone());
        }
        let a = Arc::new(header.abbreviations(&self.abbrev).ok()?);
        self.abbrevs.insert(key, a.clone());
        Some(a)
    }

    /// A string attribute in the forms Go uses (inline, or `.debug_str`).
    fn string(&self, v: AttributeValue<Slice<'a>>) -> Option<&'a str> {
        let s = match v {
            AttributeValue::String(s) => s,
            AttributeValue::DebugStrRef(off) => self.str.get_str(off).ok()?,
            _ => return None,
        };
        std::str::from_utf8(s.slice()).ok()
    }

    /// Runs `visitor` over units in two passes: first the units whose name
    /// `prefer` accepts, then (only if the visitor still wants something)
    /// all the others.
    fn scan(&mut self, prefer: &dyn Fn(&str) -> bool, visitor: &mut dyn Visitor) {
        let mut skipped = Vec::new();
        let mut headers = self.info.units();
        // A corrupt unit header ends the walk: later offsets are not
        // trustworthy either.
        while let Ok(Some(header)) = headers.next() {
            if visitor.done() {
                return;
            }
            let name = self.unit_name(&header);
            if name.as_deref().is_some_and(prefer) {
                self.scan_unit(&header, visitor);
            } else {
                skipped.push(header);
            }
        }
        for header in skipped {
            if visitor.done() {
                return;
            }
            self.scan_unit(&header, visitor);
        }
    }

    fn unit_name(&mut self, header: &gimli::UnitHeader<Slice<'a>>) -> Option<String> {
        let abbrevs = self.abbreviations(header)?;
        let mut cursor = header.entries(&abbrevs);
        let (_, root) = cursor.next_dfs().ok()??;
        let v = root.attr_value(gimli::DW_AT_name).ok()??;
        self.string(v).map(str::to_string)
    }

    fn scan_unit(&mut self, header: &gimli::UnitHeader<Slice<'a>>, visitor: &mut dyn Visitor) {
        let Some(abbrevs) = self.abbreviations(header) else {
            return;
        };
        let mut cursor = header.entries(&abbrevs);
        let addr_base = match cursor.next_dfs() {
            Ok(Some((_, root))) => match root.attr_value(gimli::DW_AT_addr_base) {
                Ok(Some(AttributeValue::DebugAddrBase(b))) => b,
                _ => gimli::DebugAddrBase(0),
            },
            _ => return,
        };
        let unit = UnitInfo {
            address_size: header.address_size(),
            addr_base,
        };
        // Depth-first walk; `depth` is relative to the unit's root entry
        // (next_dfs reports depth changes and skips null entries).
        let mut depth: isize = 0;
        let mut collecting = false;
        while let Ok(Some((delta, entry))) = cursor.next_dfs() {
            depth += delta;
            if depth <= 0 {
                break;
            }
            if depth == 1 {
                if collecting {
                    visitor.end();
                }
                if visitor.done() {
                    return;
                }
                collecting = visitor.top(self, &unit, entry);
            } else if depth == 2 && collecting {
                visitor.child(self, entry);
            }
        }
        if collecting {
            visitor.end();
        }
    }
}

/// Collects struct layouts by name.
struct StructVisitor<'n> {
    wanted: &'n HashSet<&'n str>,
    found: BTreeMap<String, StructLayout>,
    /// The struct whose members are being read.
    pending: Option<StructLayout>,
}

impl Visitor for StructVisitor<'_> {
    fn done(&self) -> bool {
        self.pending.is_none() && self.found.len() == self.wanted.len()
    }

    fn top(&mut self, scanner: &Scanner<'_>, _unit: &UnitInfo, entry: &Die<'_, '_, '_>) -> bool {
        if entry.tag() != gimli::DW_TAG_structure_type {
            return false;
        }
        let Some(name) = entry
            .attr_value(gimli::DW_AT_name)
            .ok()
            .flatten()
            .and_then(|v| scanner.string(v))
        else {
            return false;
        };
        if !self.wanted.contains(name) || self.found.contains_key(name) {
            return false;
        }
        // A declaration without a size is not the definition.
        let Some(size) = entry
            .attr_value(gimli::DW_AT_byte_size)
            .ok()
            .flatten()
            .and_then(|v| v.udata_value())
        else {
            return false;
        };
        let layout = StructLayout {
            name: name.to_string(),
            size,
            fields: Vec::new(),
        };
        if entry.has_children() {
            self.pending = Some(layout);
            true
        } else {
            self.found.insert(layout.name.clone(), layout);
            false
        }
    }

    fn child(&mut self, scanner: &Scanner<'_>, entry: &Die<'_, '_, '_>) {
        if entry.tag() != gimli::DW_TAG_member {
            return;
        }
        if let (Some(layout), Some(f)) = (self.pending.as_mut(), member(scanner, entry)) {
            layout.fields.push(f);
        }
    }

    fn end(&mut self) {
        if let Some(layout) = self.pending.take() {
            // A field past the end is not a layout to trust; leave the
            // struct out (a later definition may still be found).
            if layout.fields.iter().all(|&(_, off)| off <= layout.size) {
                self.found.insert(layout.name.clone(), layout);
            }
        }
    }
}

/// `(name, offset)` of a `DW_TAG_member`, or `None` if it is malformed.
fn member(
    scanner: &Scanner<'_>,
    e: &gimli::DebuggingInformationEntry<'_, '_, Slice<'_>>,
) -> Option<(String, u64)> {
    let name = scanner.string(e.attr_value(gimli::DW_AT_name).ok()??)?;
    let off = match e.attr_value(gimli::DW_AT_data_member_location).ok()?? {
        AttributeValue::Exprloc(expr) => {
            let mut r = expr.0;
            if r.read_u8().ok()? != DW_OP_PLUS_UCONST {
                return None;
            }
            r.read_uleb128().ok()?
        }
        AttributeValue::Sdata(v) => u64::try_from(v).ok()?,
        v => v.udata_value()?,
    };
    Some((name.to_string(), off))
}

/// Collects global variable addresses by name.
struct VarVisitor<'n> {
    wanted: &'n HashSet<&'n str>,
    found: HashMap<String, u64>,
}

impl Visitor for VarVisitor<'_> {
    fn done(&self) -> bool {
        self.found.len() == self.wanted.len()
    }

    fn top(&mut self, scanner: &Scanner<'_>, unit: &UnitInfo, entry: &Die<'_, '_, '_>) -> bool {
        if entry.tag() != gimli::DW_TAG_variable {
            return false;
        }
        let Some(name) = entry
            .attr_value(gimli::DW_AT_name)
            .ok()
            .flatten()
            .and_then(|v| scanner.string(v))
        else {
            return false;
        };
        if !self.wanted.contains(name) || self.found.contains_key(name) {
            return false;
        }
        let expr = match entry.attr_value(gimli::DW_AT_location) {
            Ok(Some(AttributeValue::Exprloc(e))) => e.0,
            Ok(Some(AttributeValue::Block(b))) => b,
            _ => return false,
        };
        if let Some(addr) = static_address(scanner, unit, expr) {
            self.found.insert(name.to_string(), addr);
        }
        false
    }
}

/// The address of a location expression that is exactly one `DW_OP_addr`
/// (or `DW_OP_addrx`); anything else is not a plain global.
fn static_address(scanner: &Scanner<'_>, unit: &UnitInfo, mut expr: Slice<'_>) -> Option<u64> {
    let addr = match expr.read_u8().ok()? {
        DW_OP_ADDR => expr.read_address(unit.address_size).ok()?,
        DW_OP_ADDRX => {
            let index = expr.read_uleb128().ok()?;
            let index = gimli::DebugAddrIndex(usize::try_from(index).ok()?);
            scanner
                .addr
                .get_address(unit.address_size, unit.addr_base, index)
                .ok()?
        }
        _ => return None,
    };
    if !expr.is_empty() {
        return None;
    }
    Some(addr)
}

/// The name of the Go package a symbol belongs to (`runtime.allgs` →
/// `runtime`, `internal/runtime/atomic.Uint32` → `internal/runtime/atomic`),
/// which is also the name of the compilation unit that defines it.
fn package_of(symbol: &str) -> &str {
    let slash = symbol.rfind('/').map_or(0, |i| i + 1);
    match symbol[slash..].find('.') {
        Some(dot) => &symbol[..slash + dot],
        None => symbol,
    }
}

/// Reads the layouts of the named structs (`runtime.g`, ...) from the
/// binary's DWARF. Structs that are not found are simply absent from the
/// map; the caller decides which ones it cannot do without.
pub fn dwarf_structs(
    bin: &GoBinary,
    names: &[&str],
) -> Result<BTreeMap<String, StructLayout>, LayoutError> {
    let sections = Sections::load(bin)?;
    let mut scanner = Scanner::new(&sections);
    let wanted: HashSet<&str> = names.iter().copied().collect();
    let packages: HashSet<&str> = names.iter().map(|n| package_of(n)).collect();
    let mut v = StructVisitor {
        wanted: &wanted,
        found: BTreeMap::new(),
        pending: None,
    };
    scanner.scan(&|cu| packages.contains(cu), &mut v);
    Ok(v.found)
}

/// Addresses of the named global variables (`runtime.allgs`,
/// `runtime.allglen`, `runtime.sched`, ...) from their `DW_TAG_variable`
/// entries. This is the unstripped-binary route to the runtime's globals,
/// used to cross-check the stripped-binary locator. Names that are absent,
/// or whose location is not a single static address, are left out; a binary
/// without DWARF gives an empty map.
pub fn dwarf_variables(bin: &GoBinary, names: &[&str]) -> HashMap<String, u64> {
    let Ok(sections) = Sections::load(bin) else {
        return HashMap::new();
    };
    let mut scanner = Scanner::new(&sections);
    let wanted: HashSet<&str> = names.iter().copied().collect();
    let packages: HashSet<&str> = names.iter().map(|n| package_of(n)).collect();
    let mut v = VarVisitor {
        wanted: &wanted,
        found: HashMap::new(),
    };
    scanner.scan(&|cu| packages.contains(cu), &mut v);
    v.found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_names() {
        assert_eq!(package_of("runtime.allgs"), "runtime");
        assert_eq!(
            package_of("internal/runtime/atomic.Uint32"),
            "internal/runtime/atomic"
        );
        assert_eq!(package_of("main"), "main");
        assert_eq!(package_of("a.b/c.d"), "a.b/c");
    }
}
