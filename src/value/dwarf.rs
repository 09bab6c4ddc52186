//! Go's types and globals as its DWARF describes them, read lazily.
//!
//! One pass over `.debug_info` indexes the top-level entries of every unit:
//! globals (`DW_TAG_variable` with a `DW_OP_addr` location) by Go name,
//! types by name, and types by their runtime type descriptor
//! (`DW_AT_go_runtime_type`, Go's attribute 0x2904: the descriptor's offset
//! from `moduledata.types`), which is how an interface's dynamic type is
//! found. A type's members are parsed only when a value of it is decoded,
//! and cached. Go's own attributes say what DWARF cannot: `DW_AT_go_kind`
//! (0x2900, reflect's Kind), `DW_AT_go_key`/`DW_AT_go_elem` (0x2901/0x2902)
//! for maps, channels and slices, `DW_AT_go_embedded_field` (0x2903).
//!
//! The bytes come from the target's executable and are not trusted: every
//! malformed entry is an error for the type that needs it (or is skipped by
//! the index), chains of typedefs are bounded, and nothing here panics.

use super::types::{Field, GoType, TypeId, TypeKind};
use crate::layout::Sections;
use gimli::{AttributeValue, EndianSlice, LittleEndian, Reader, UnitSectionOffset};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

pub(super) type Slice<'a> = EndianSlice<'a, LittleEndian>;
pub(super) type Header<'a> = gimli::UnitHeader<Slice<'a>>;

const DW_AT_GO_KIND: gimli::DwAt = gimli::DwAt(0x2900);
const DW_AT_GO_KEY: gimli::DwAt = gimli::DwAt(0x2901);
const DW_AT_GO_ELEM: gimli::DwAt = gimli::DwAt(0x2902);
const DW_AT_GO_EMBEDDED: gimli::DwAt = gimli::DwAt(0x2903);
const DW_AT_GO_RUNTIME_TYPE: gimli::DwAt = gimli::DwAt(0x2904);
const DW_AT_GO_PACKAGE_NAME: gimli::DwAt = gimli::DwAt(0x2905);

/// reflect.Kind numbers, as `DW_AT_go_kind` carries them.
mod kind {
    pub(super) const CHAN: u64 = 18;
    pub(super) const FUNC: u64 = 19;
    pub(super) const INTERFACE: u64 = 20;
    pub(super) const MAP: u64 = 21;
    pub(super) const SLICE: u64 = 23;
    pub(super) const STRING: u64 = 24;
}

/// Units are skipped after this many entries (a bound on a corrupt unit).
const MAX_ENTRIES_PER_UNIT: usize = 50_000_000;
/// Typedef chains longer than this are not followed.
const MAX_TYPEDEF_CHAIN: usize = 16;
/// More members than this in one struct is not a Go struct.
const MAX_MEMBERS: usize = 100_000;

/// A global variable: where it lives (link address) and its type.
#[derive(Debug, Clone, Copy)]
pub struct Global {
    /// Link-time address (add the load bias for a PIE).
    pub addr: u64,
    /// Its type's entry.
    pub ty: TypeId,
}

/// The index of one binary's DWARF, and the types decoded so far.
pub struct DwarfInfo<'b> {
    pub(super) sections: &'b Sections<'b>,
    /// Unit headers by start offset in `.debug_info`.
    units: Vec<(u64, Header<'b>)>,
    pub(super) abbrevs: HashMap<u64, Rc<gimli::Abbreviations>>,
    globals: HashMap<String, Global>,
    names: HashMap<String, TypeId>,
    rtypes: HashMap<u64, TypeId>,
    /// Package path → package name, where the units say
    /// (`DW_AT_go_package_name`).
    packages: HashMap<String, String>,
    cache: RefCell<HashMap<TypeId, Rc<GoType>>>,
    /// Functions with code: (low_pc, high_pc, entry offset), sorted, for
    /// a frame's variables (`locals.rs`).
    pub(super) funcs: Vec<(u64, u64, u64)>,
}

/// Why a type could not be read.
#[derive(Debug, Clone, thiserror::Error)]
#[error("DWARF type at {offset:#x}: {what}")]
pub struct TypeError {
    /// The entry's `.debug_info` offset.
    pub offset: u64,
    /// What is wrong with it.
    pub what: String,
}

impl<'b> DwarfInfo<'b> {
    /// Indexes every unit of `sections`. Never fails: what cannot be parsed
    /// is left out of the index.
    pub fn new(sections: &'b Sections<'b>) -> Self {
        let mut me = DwarfInfo {
            sections,
            units: Vec::new(),
            abbrevs: HashMap::new(),
            globals: HashMap::new(),
            names: HashMap::new(),
            rtypes: HashMap::new(),
            packages: HashMap::new(),
            cache: RefCell::new(HashMap::new()),
            funcs: Vec::new(),
        };
        let info = gimli::DebugInfo::new(&sections.info, LittleEndian);
        let mut iter = info.units();
        while let Ok(Some(h)) = iter.next() {
            let UnitSectionOffset::DebugInfoOffset(off) = h.offset() else {
                continue;
            };
            me.units.push((off.0 as u64, h));
        }
        for i in 0..me.units.len() {
            me.index_unit(i);
        }
        me.funcs.sort_unstable();
        me
    }

    fn abbreviations(&mut self, h: &Header<'b>) -> Option<Rc<gimli::Abbreviations>> {
        let key = h.debug_abbrev_offset().0 as u64;
        if let Some(a) = self.abbrevs.get(&key) {
            return Some(a.clone());
        }
        let abbrev = gimli::DebugAbbrev::new(&self.sections.abbrev, LittleEndian);
        let a = Rc::new(h.abbreviations(&abbrev).ok()?);
        self.abbrevs.insert(key, a.clone());
        Some(a)
    }

    pub(super) fn string(&self, v: AttributeValue<Slice<'b>>) -> Option<&'b str> {
        let s = match v {
            AttributeValue::String(s) => s,
            AttributeValue::DebugStrRef(off) => {
                gimli::DebugStr::new(&self.sections.str, LittleEndian)
                    .get_str(off)
                    .ok()?
            }
            _ => return None,
        };
        std::str::from_utf8(s.slice()).ok()
    }

    fn index_unit(&mut self, i: usize) {
        let h = self.units[i].1;
        let Some(abbrevs) = self.abbreviations(&h) else {
            return;
        };
        let mut cursor = h.entries(&abbrevs);
        let Ok(Some((_, root))) = cursor.next_dfs() else {
            return;
        };
        let unit_name = root
            .attr_value(gimli::DW_AT_name)
            .ok()
            .flatten()
            .and_then(|v| self.string(v));
        let pkg_name = root
            .attr_value(DW_AT_GO_PACKAGE_NAME)
            .ok()
            .flatten()
            .and_then(|v| self.string(v));
        if let (Some(path), Some(name)) = (unit_name, pkg_name) {
            self.packages.insert(path.to_string(), name.to_string());
        }
        let addrs = super::locals::AddrCtx::of(self.sections, &h, root);
        let mut depth: isize = 0;
        let mut seen = 0usize;
        while let Ok(Some((delta, e))) = cursor.next_dfs() {
            depth += delta;
            seen += 1;
            if depth <= 0 || seen > MAX_ENTRIES_PER_UNIT {
                break;
            }
            if depth != 1 {
                continue;
            }
            let Some(off) = e.offset().to_debug_info_offset(&h) else {
                continue;
            };
            let id = TypeId(off.0 as u64);
            let name = e
                .attr_value(gimli::DW_AT_name)
                .ok()
                .flatten()
                .and_then(|v| self.string(v));
            if e.tag() == gimli::DW_TAG_subprogram {
                if let Some((lo, hi)) = super::locals::pc_range(e, &addrs) {
                    self.funcs.push((lo, hi, id.0));
                }
                continue;
            }
            if e.tag() == gimli::DW_TAG_variable {
                let (Some(name), Some(ty)) = (name, type_ref(&h, e.attr_value(gimli::DW_AT_type)))
                else {
                    continue;
                };
                if let Some(addr) = static_address(e.attr_value(gimli::DW_AT_location), &h) {
                    self.globals
                        .entry(name.to_string())
                        .or_insert(Global { addr, ty });
                }
                continue;
            }
            if let Some(n) = name {
                self.names.entry(n.to_string()).or_insert(id);
            }
            if let Ok(Some(v)) = e.attr_value(DW_AT_GO_RUNTIME_TYPE) {
                if let Some(rt) = attr_u64(v).filter(|&rt| rt != 0) {
                    self.rtypes.entry(rt).or_insert(id);
                }
            }
        }
    }

    /// A global by its Go name (`main.cfg`, `net/http.DefaultClient`).
    pub fn global(&self, name: &str) -> Option<Global> {
        self.globals.get(name).copied()
    }

    /// Every global, sorted by name (for the fuzzer and tests).
    pub fn globals(&self) -> Vec<(&str, Global)> {
        let mut v: Vec<(&str, Global)> =
            self.globals.iter().map(|(k, g)| (k.as_str(), *g)).collect();
        v.sort_by(|a, b| a.0.cmp(b.0));
        v
    }

    /// Names of globals that start with `prefix` (suggestions for a name
    /// that was not found), at most `max`, sorted.
    pub fn globals_like(&self, prefix: &str, max: usize) -> Vec<String> {
        let mut v: Vec<String> = self
            .globals
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect();
        v.sort();
        v.truncate(max);
        v
    }

    /// A type by its DWARF name (`runtime.hchan`, `runtime.moduledata`).
    pub fn type_named(&self, name: &str) -> Option<TypeId> {
        self.names.get(name).copied()
    }

    /// The type whose runtime descriptor sits `offset` bytes after
    /// `moduledata.types`.
    pub fn type_of_runtime(&self, offset: u64) -> Option<TypeId> {
        self.rtypes.get(&offset).copied()
    }

    /// The package name Go's units give for a package path, if any.
    pub fn package_name(&self, path: &str) -> Option<&str> {
        self.packages.get(path).map(String::as_str)
    }

    /// The unit holding `.debug_info` offset `off`.
    pub(super) fn unit_of(&self, off: u64) -> Option<&Header<'b>> {
        let i = self.units.partition_point(|(start, _)| *start <= off);
        let (start, h) = self.units.get(i.checked_sub(1)?)?;
        (off < start + h.length_including_self() as u64).then_some(h)
    }

    /// The decoded type of entry `id` (cached).
    pub fn get(&self, id: TypeId) -> Result<Rc<GoType>, TypeError> {
        if let Some(t) = self.cache.borrow().get(&id) {
            return Ok(t.clone());
        }
        let t = Rc::new(self.parse(id, 0)?);
        self.cache.borrow_mut().insert(id, t.clone());
        Ok(t)
    }

    fn parse(&self, id: TypeId, chain: usize) -> Result<GoType, TypeError> {
        let err = |what: &str| TypeError {
            offset: id.0,
            what: what.to_string(),
        };
        let h = self
            .unit_of(id.0)
            .ok_or_else(|| err("outside every unit"))?;
        let abbrevs = self
            .abbrevs
            .get(&(h.debug_abbrev_offset().0 as u64))
            .ok_or_else(|| err("no abbreviations"))?;
        let uoff = gimli::DebugInfoOffset(id.0 as usize)
            .to_unit_offset(h)
            .ok_or_else(|| err("bad offset"))?;
        let mut cursor = h
            .entries_at_offset(abbrevs, uoff)
            .map_err(|e| err(&e.to_string()))?;
        let e = match cursor.next_dfs() {
            Ok(Some((_, e))) => e.clone(),
            _ => return Err(err("unreadable entry")),
        };
        let attr = |a| e.attr_value(a).ok().flatten();
        let name = attr(gimli::DW_AT_name)
            .and_then(|v| self.string(v))
            .unwrap_or("")
            .to_string();
        let size = attr(gimli::DW_AT_byte_size).and_then(|v| v.udata_value());
        let go_kind = attr(DW_AT_GO_KIND).and_then(|v| v.udata_value());
        let rtype = attr(DW_AT_GO_RUNTIME_TYPE).and_then(attr_u64).unwrap_or(0);
        let target = type_ref(h, e.attr_value(gimli::DW_AT_type));
        let go_ref = |a| type_ref(h, e.attr_value(a));
        let mk = |kind, size: u64| GoType {
            name: name.clone(),
            size,
            kind,
            rtype,
        };
        let t = match e.tag() {
            gimli::DW_TAG_typedef => match go_kind {
                Some(kind::MAP) => mk(
                    TypeKind::Map {
                        key: go_ref(DW_AT_GO_KEY).ok_or_else(|| err("map without a key"))?,
                        elem: go_ref(DW_AT_GO_ELEM).ok_or_else(|| err("map without an elem"))?,
                        header: self.pointee(target),
                    },
                    8,
                ),
                Some(kind::CHAN) => mk(
                    TypeKind::Chan {
                        elem: go_ref(DW_AT_GO_ELEM).ok_or_else(|| err("chan without an elem"))?,
                        header: self.pointee(target),
                    },
                    8,
                ),
                Some(kind::INTERFACE) => {
                    let under = target.ok_or_else(|| err("interface without a struct"))?;
                    let empty = match self.get(under)?.kind {
                        TypeKind::Struct { ref fields } => {
                            fields.first().is_some_and(|f| f.name == "_type")
                        }
                        _ => return Err(err("interface not over iface/eface")),
                    };
                    mk(TypeKind::Interface { empty }, 16)
                }
                Some(kind::FUNC) => mk(TypeKind::Func, 8),
                _ => {
                    if chain >= MAX_TYPEDEF_CHAIN {
                        return Err(err("typedef chain too long"));
                    }
                    let t = target.ok_or_else(|| err("typedef without a type"))?;
                    let mut under = self.parse(t, chain + 1)?;
                    if under.name.is_empty() {
                        under.name = name.clone();
                    }
                    under
                }
            },
            gimli::DW_TAG_base_type => {
                let enc = match attr(gimli::DW_AT_encoding) {
                    Some(AttributeValue::Encoding(enc)) => enc,
                    _ => return Err(err("base type without an encoding")),
                };
                let size = size.ok_or_else(|| err("base type without a size"))?;
                let kind = match enc {
                    gimli::DW_ATE_boolean => TypeKind::Bool,
                    gimli::DW_ATE_signed | gimli::DW_ATE_signed_char => TypeKind::Int,
                    gimli::DW_ATE_unsigned | gimli::DW_ATE_unsigned_char => TypeKind::Uint,
                    gimli::DW_ATE_float => TypeKind::Float,
                    gimli::DW_ATE_complex_float => TypeKind::Complex,
                    _ => TypeKind::Unsupported(format!("base encoding {enc}")),
                };
                let ok = match kind {
                    TypeKind::Bool => size == 1,
                    TypeKind::Int | TypeKind::Uint => matches!(size, 1 | 2 | 4 | 8),
                    TypeKind::Float => matches!(size, 4 | 8),
                    TypeKind::Complex => matches!(size, 8 | 16),
                    _ => true,
                };
                if !ok {
                    return Err(err("base type of an impossible size"));
                }
                mk(kind, size)
            }
            gimli::DW_TAG_pointer_type => match target {
                None => mk(TypeKind::UnsafePointer, 8),
                Some(t) => mk(TypeKind::Pointer { elem: t }, 8),
            },
            gimli::DW_TAG_subroutine_type => mk(TypeKind::Func, 8),
            gimli::DW_TAG_structure_type => {
                let size = size.ok_or_else(|| err("struct without a size"))?;
                match go_kind {
                    Some(kind::STRING) => mk(TypeKind::String, size),
                    Some(kind::SLICE) => mk(
                        TypeKind::Slice {
                            elem: go_ref(DW_AT_GO_ELEM).ok_or_else(|| err("slice without elem"))?,
                        },
                        size,
                    ),
                    _ => {
                        let fields = self.members(h, &mut cursor, size).map_err(|w| err(&w))?;
                        mk(TypeKind::Struct { fields }, size)
                    }
                }
            }
            gimli::DW_TAG_array_type => {
                let elem = target.ok_or_else(|| err("array without elem"))?;
                let len = array_len(&mut cursor).ok_or_else(|| err("array without a count"))?;
                mk(TypeKind::Array { elem, len }, size.unwrap_or(0))
            }
            t => mk(TypeKind::Unsupported(format!("{t}")), size.unwrap_or(0)),
        };
        if let TypeKind::Struct { fields } = &t.kind {
            if fields.iter().any(|f| f.offset > t.size) {
                return Err(err("member past the end of its struct"));
            }
        }
        Ok(t)
    }

    /// `DW_TAG_member` children after the struct entry `cursor` is on.
    fn members(
        &self,
        h: &Header<'b>,
        cursor: &mut gimli::EntriesCursor<'_, '_, Slice<'b>>,
        _size: u64,
    ) -> Result<Vec<Field>, String> {
        let mut fields = Vec::new();
        let Some(parent) = cursor.current() else {
            return Ok(fields);
        };
        if !parent.has_children() {
            return Ok(fields);
        }
        let mut depth: isize = 0;
        while let Ok(Some((delta, e))) = cursor.next_dfs() {
            depth += delta;
            if depth <= 0 {
                break;
            }
            if depth != 1 || e.tag() != gimli::DW_TAG_member {
                continue;
            }
            if fields.len() >= MAX_MEMBERS {
                return Err("too many members".into());
            }
            let name = e
                .attr_value(gimli::DW_AT_name)
                .ok()
                .flatten()
                .and_then(|v| self.string(v))
                .ok_or("member without a name")?;
            let offset = member_offset(e).ok_or("member without an offset")?;
            let ty = type_ref(h, e.attr_value(gimli::DW_AT_type)).ok_or("member without a type")?;
            let embedded =
                e.attr_value(DW_AT_GO_EMBEDDED)
                    .ok()
                    .flatten()
                    .is_some_and(|v| match v {
                        AttributeValue::Flag(f) => f,
                        v => v.udata_value().is_some_and(|v| v != 0),
                    });
            fields.push(Field {
                name: name.to_string(),
                offset,
                ty,
                embedded,
            });
        }
        Ok(fields)
    }

    /// What a pointer type points at (for maps and channels, whose
    /// typedefs point at their header).
    fn pointee(&self, ptr: Option<TypeId>) -> Option<TypeId> {
        match self.get(ptr?).ok()?.kind {
            TypeKind::Pointer { elem } => Some(elem),
            _ => None,
        }
    }
}

/// A constant or address attribute (Go writes its runtime type
/// reference with `DW_FORM_addr`).
fn attr_u64(v: AttributeValue<Slice<'_>>) -> Option<u64> {
    match v {
        AttributeValue::Addr(a) => Some(a),
        v => v.udata_value(),
    }
}

/// A reference attribute as a `.debug_info` offset (Go uses both the
/// unit-relative and the section-relative forms).
pub(super) fn type_ref(
    h: &Header<'_>,
    v: gimli::Result<Option<AttributeValue<Slice<'_>>>>,
) -> Option<TypeId> {
    match v.ok()?? {
        AttributeValue::UnitRef(u) => Some(TypeId(u.to_debug_info_offset(h)?.0 as u64)),
        AttributeValue::DebugInfoRef(d) => Some(TypeId(d.0 as u64)),
        _ => None,
    }
}

/// A location that is exactly one `DW_OP_addr`.
fn static_address(
    v: gimli::Result<Option<AttributeValue<Slice<'_>>>>,
    h: &Header<'_>,
) -> Option<u64> {
    let mut expr = match v.ok()?? {
        AttributeValue::Exprloc(e) => e.0,
        AttributeValue::Block(b) => b,
        _ => return None,
    };
    if expr.read_u8().ok()? != gimli::DW_OP_addr.0 {
        return None;
    }
    let addr = expr.read_address(h.address_size()).ok()?;
    expr.is_empty().then_some(addr)
}

fn member_offset(e: &gimli::DebuggingInformationEntry<'_, '_, Slice<'_>>) -> Option<u64> {
    match e.attr_value(gimli::DW_AT_data_member_location).ok()?? {
        AttributeValue::Exprloc(expr) => {
            let mut r = expr.0;
            if r.read_u8().ok()? != gimli::DW_OP_plus_uconst.0 {
                return None;
            }
            r.read_uleb128().ok()
        }
        AttributeValue::Sdata(v) => u64::try_from(v).ok(),
        v => v.udata_value(),
    }
}

/// The element count of the array entry `cursor` is on, from its
/// `DW_TAG_subrange_type` child.
fn array_len(cursor: &mut gimli::EntriesCursor<'_, '_, Slice<'_>>) -> Option<u64> {
    if !cursor.current()?.has_children() {
        return None;
    }
    let (delta, e) = cursor.next_dfs().ok()??;
    if delta != 1 || e.tag() != gimli::DW_TAG_subrange_type {
        return None;
    }
    if let Some(n) = e
        .attr_value(gimli::DW_AT_count)
        .ok()
        .flatten()
        .and_then(|v| v.udata_value())
    {
        return Some(n);
    }
    e.attr_value(gimli::DW_AT_upper_bound)
        .ok()
        .flatten()
        .and_then(|v| v.udata_value())
        .and_then(|u| u.checked_add(1))
}
