//! A frame's arguments and local variables, from DWARF: the
//! `DW_TAG_subprogram` whose `low_pc`/`high_pc` hold the frame's PC, its
//! `DW_TAG_formal_parameter` and `DW_TAG_variable` children and those of
//! the lexical blocks and inlined calls (`DW_TAG_inlined_subroutine`, by
//! their `DW_AT_abstract_origin`) whose ranges hold the PC, each located
//! by its `DW_AT_location` at that PC: an expression, or the entry of its
//! location list (`.debug_loc`, DWARF 4; `.debug_loclists`, DWARF 5) that
//! covers the PC. Go's expressions use `DW_OP_call_frame_cfa` (its frame
//! base is the CFA too), `DW_OP_fbreg`, `DW_OP_addr`, registers and
//! `DW_OP_piece`.
//!
//! A variable in a register at the PC is readable only in the innermost
//! frame of a goroutine that was running when its thread was held (or a
//! core written), from that thread's registers ([`FrameRegs::Held`]): a
//! parked goroutine's registers are not its frame's, and Go keeps nothing
//! in callee-saved registers. Elsewhere such a variable (and one with no
//! location list entry at the PC) is "optimized out", in Delve's words.
//!
//! The DWARF comes from the target's executable: every walk is bounded
//! (entries, nesting, expression steps, piece sizes) and nothing panics.

use super::dwarf::{type_ref, DwarfInfo, Header, Slice};
pub use super::overlay::{slot, Overlay, Slot, OVERLAY_BASE};
use super::regs::{reg_name, FrameRegs};
use super::types::TypeId;
use gimli::{AttributeValue, EvaluationResult, LittleEndian, Location};

/// Most entries visited under one function.
const MAX_ENTRIES: usize = 200_000;
/// Deepest nesting of blocks and inlined calls followed.
const MAX_NEST: usize = 64;
/// Steps of one location expression.
const MAX_STEPS: u32 = 10_000;
/// Entries of one location or range list read.
const MAX_LIST: usize = 100_000;

/// Where a frame is: what the lookup needs.
#[derive(Debug, Clone, Copy)]
pub struct FrameAt {
    /// The PC to look variables up at, as linked (runtime PC minus the
    /// load bias): the innermost frame's PC, or a caller's return address
    /// minus one (the call instruction), as Delve does.
    pub pc: u64,
    /// The frame's canonical frame address: the caller's SP (Go's `fp`).
    pub cfa: u64,
    /// Runtime minus link address.
    pub bias: u64,
    /// 0 for the physical function's own variables, N for those of the
    /// N-th nested inlined call holding the PC.
    pub inline_level: usize,
    /// The frame's own registers, when it has them.
    pub regs: FrameRegs,
    /// An arm64 executable (register names in messages).
    pub arm64: bool,
}

/// Where (part of) a variable is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PieceLoc {
    /// In memory at this (runtime) address.
    Addr(u64),
    /// In a register of the frame, whose value this is.
    Reg(u64),
    /// Not readable here; why, in Delve's words.
    Unavailable(String),
}

/// One `DW_OP_piece` (or the whole variable when `size` is `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    /// Bytes, or the whole variable.
    pub size: Option<u64>,
    /// Where.
    pub loc: PieceLoc,
}

/// One argument or local.
#[derive(Debug, Clone)]
pub struct FrameVar {
    /// Its Go name (an escaped variable's `&x` as `x`).
    pub name: String,
    /// Its type (for an escaped variable: the type of `x`).
    pub ty: TypeId,
    /// A function argument (or result).
    pub param: bool,
    /// Go moved it to the heap: the location holds a pointer to it.
    pub escaped: bool,
    /// Where it is at the PC, or why it cannot be read.
    pub loc: Result<Vec<Piece>, String>,
}

/// The variables of one frame.
#[derive(Debug, Clone, Default)]
pub struct FrameVars {
    /// The function (or inlined function) DWARF names.
    pub function: String,
    /// Parameters first, then locals, in DWARF order; inner blocks after
    /// outer ones (a shadowing variable comes after the one it hides).
    pub vars: Vec<FrameVar>,
    /// Nested inlined calls holding the PC.
    pub inline_levels: usize,
}

/// How a unit's `DW_FORM_addrx` addresses resolve (DWARF 5).
pub(super) struct AddrCtx<'b> {
    pub(super) addr: gimli::DebugAddr<Slice<'b>>,
    pub(super) base: gimli::DebugAddrBase<usize>,
    pub(super) size: u8,
}

impl<'b> AddrCtx<'b> {
    /// The unit `root` heads: its `DW_AT_addr_base`.
    pub(super) fn of(
        d: &'b crate::layout::Sections<'b>,
        h: &Header<'b>,
        root: &gimli::DebuggingInformationEntry<'_, '_, Slice<'b>>,
    ) -> Self {
        let base = match root.attr_value(gimli::DW_AT_addr_base) {
            Ok(Some(AttributeValue::DebugAddrBase(a))) => a,
            _ => gimli::DebugAddrBase(0),
        };
        AddrCtx {
            addr: gimli::DebugAddr::from(gimli::EndianSlice::new(&d.addr, LittleEndian)),
            base,
            size: h.address_size(),
        }
    }

    fn resolve(&self, v: AttributeValue<Slice<'b>>) -> Option<u64> {
        match v {
            AttributeValue::Addr(a) => Some(a),
            AttributeValue::DebugAddrIndex(i) => {
                self.addr.get_address(self.size, self.base, i).ok()
            }
            _ => None,
        }
    }
}

/// The low and high PC of an entry with one contiguous range.
pub(super) fn pc_range(
    e: &gimli::DebuggingInformationEntry<'_, '_, Slice<'_>>,
    ctx: &AddrCtx<'_>,
) -> Option<(u64, u64)> {
    let lo = ctx.resolve(e.attr_value(gimli::DW_AT_low_pc).ok()??)?;
    let hi = match e.attr_value(gimli::DW_AT_high_pc).ok()?? {
        v @ (AttributeValue::Addr(_) | AttributeValue::DebugAddrIndex(_)) => ctx.resolve(v)?,
        v => lo.checked_add(v.udata_value()?)?,
    };
    (lo < hi).then_some((lo, hi))
}

/// The unit-level facts list lookups need.
struct UnitBase {
    low_pc: u64,
    addr_base: gimli::DebugAddrBase<usize>,
    loclists_base: gimli::DebugLocListsBase<usize>,
    rnglists_base: gimli::DebugRngListsBase<usize>,
}

struct Walk<'d, 'b> {
    d: &'d DwarfInfo<'b>,
    h: &'d Header<'b>,
    abbrevs: &'d gimli::Abbreviations,
    base: UnitBase,
    addrs: AddrCtx<'b>,
    at: FrameAt,
    seen: usize,
    out: FrameVars,
}

type Node<'a, 'b, 'c, 'd> = gimli::EntriesTreeNode<'a, 'b, 'c, Slice<'d>>;

impl DwarfInfo<'_> {
    /// The variables of the frame at `at`, or why none can be listed (no
    /// function holds the PC, malformed DWARF).
    pub fn frame_vars(&self, at: &FrameAt) -> Result<FrameVars, String> {
        let i = self.funcs.partition_point(|f| f.0 <= at.pc);
        let &(lo, hi, off) = i
            .checked_sub(1)
            .and_then(|i| self.funcs.get(i))
            .filter(|f| at.pc < f.1)
            .ok_or_else(|| {
                format!(
                    "no function in the DWARF holds pc {:#x}",
                    at.pc.wrapping_add(at.bias)
                )
            })?;
        let _ = (lo, hi);
        let h = self.unit_of(off).ok_or("function outside every unit")?;
        let abbrevs = self
            .abbrevs
            .get(&(h.debug_abbrev_offset().0 as u64))
            .ok_or("no abbreviations")?;
        let (base, addrs) = unit_base(self.sections, h, abbrevs).ok_or("unreadable unit entry")?;
        let uoff = gimli::DebugInfoOffset(off as usize)
            .to_unit_offset(h)
            .ok_or("bad function offset")?;
        let mut tree = h
            .entries_tree(abbrevs, Some(uoff))
            .map_err(|e| e.to_string())?;
        let root = tree.root().map_err(|e| e.to_string())?;
        let mut w = Walk {
            d: self,
            h,
            abbrevs,
            base,
            addrs,
            at: *at,
            seen: 0,
            out: FrameVars::default(),
        };
        w.out.function = w.name_of(root.entry()).unwrap_or_default();
        w.visit(root, 0, 0)?;
        if at.inline_level > w.out.inline_levels {
            return Err(format!(
                "the DWARF has {} inlined calls at pc {:#x}, not {}",
                w.out.inline_levels,
                at.pc.wrapping_add(at.bias),
                at.inline_level
            ));
        }
        Ok(w.out)
    }
}

fn unit_base<'b>(
    sections: &'b crate::layout::Sections<'b>,
    h: &Header<'b>,
    abbrevs: &gimli::Abbreviations,
) -> Option<(UnitBase, AddrCtx<'b>)> {
    let mut c = h.entries(abbrevs);
    let (_, root) = c.next_dfs().ok()??;
    let addrs = AddrCtx::of(sections, h, root);
    let low_pc = root
        .attr_value(gimli::DW_AT_low_pc)
        .ok()
        .flatten()
        .and_then(|v| addrs.resolve(v))
        .unwrap_or(0);
    let mut b = UnitBase {
        low_pc,
        addr_base: gimli::DebugAddrBase(0),
        loclists_base: gimli::DebugLocListsBase(0),
        rnglists_base: gimli::DebugRngListsBase(0),
    };
    if let Ok(Some(AttributeValue::DebugAddrBase(a))) = root.attr_value(gimli::DW_AT_addr_base) {
        b.addr_base = a;
    }
    if let Ok(Some(AttributeValue::DebugLocListsBase(a))) =
        root.attr_value(gimli::DW_AT_loclists_base)
    {
        b.loclists_base = a;
    }
    if let Ok(Some(AttributeValue::DebugRngListsBase(a))) =
        root.attr_value(gimli::DW_AT_rnglists_base)
    {
        b.rnglists_base = a;
    }
    Some((b, addrs))
}

impl<'b> Walk<'_, 'b> {
    fn visit(
        &mut self,
        node: Node<'_, '_, '_, 'b>,
        level: usize,
        nest: usize,
    ) -> Result<(), String> {
        if nest > MAX_NEST {
            return Err("blocks nested too deeply".into());
        }
        let mut children = node.children();
        while let Some(child) = children.next().map_err(|e| e.to_string())? {
            self.seen += 1;
            if self.seen > MAX_ENTRIES {
                return Err("too many entries under one function".into());
            }
            let e = child.entry();
            match e.tag() {
                gimli::DW_TAG_formal_parameter | gimli::DW_TAG_variable
                    if level == self.at.inline_level =>
                {
                    if let Some(v) = self.var(e) {
                        self.out.vars.push(v);
                    }
                }
                gimli::DW_TAG_lexical_block if self.holds_pc(e) => {
                    self.visit(child, level, nest + 1)?;
                }
                gimli::DW_TAG_inlined_subroutine if self.holds_pc(e) => {
                    self.out.inline_levels = self.out.inline_levels.max(level + 1);
                    if level + 1 == self.at.inline_level {
                        self.out.function = self.name_of(e).unwrap_or_default();
                    }
                    self.visit(child, level + 1, nest + 1)?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The entry `e`'s `DW_AT_abstract_origin`, if any.
    fn origin(
        &self,
        e: &gimli::DebuggingInformationEntry<'_, '_, Slice<'b>>,
    ) -> Option<gimli::DebuggingInformationEntry<'_, '_, Slice<'b>>> {
        let off = type_ref(self.h, e.attr_value(gimli::DW_AT_abstract_origin))?;
        let uoff = gimli::DebugInfoOffset(off.0 as usize).to_unit_offset(self.h)?;
        self.h.entry(self.abbrevs, uoff).ok()
    }

    fn name_of(&self, e: &gimli::DebuggingInformationEntry<'_, '_, Slice<'b>>) -> Option<String> {
        let direct = e
            .attr_value(gimli::DW_AT_name)
            .ok()
            .flatten()
            .and_then(|v| self.d.string(v));
        match direct {
            Some(n) => Some(n.to_string()),
            None => {
                let o = self.origin(e)?;
                let n = o.attr_value(gimli::DW_AT_name).ok().flatten()?;
                self.d.string(n).map(str::to_string)
            }
        }
    }

    fn var(&self, e: &gimli::DebuggingInformationEntry<'_, '_, Slice<'b>>) -> Option<FrameVar> {
        let name = self.name_of(e)?;
        let ty = type_ref(self.h, e.attr_value(gimli::DW_AT_type)).or_else(|| {
            let o = self.origin(e)?;
            type_ref(self.h, o.attr_value(gimli::DW_AT_type))
        })?;
        let param = e.tag() == gimli::DW_TAG_formal_parameter;
        let (name, escaped) = match name.strip_prefix('&') {
            Some(n) => (n.to_string(), true),
            None => (name, false),
        };
        let loc = match e.attr_value(gimli::DW_AT_location) {
            Ok(Some(v)) => self.locate(v),
            Ok(None) => Err("optimized out: no location".to_string()),
            Err(err) => Err(format!("unreadable location: {err}")),
        };
        Some(FrameVar {
            name,
            ty,
            param,
            escaped,
            loc,
        })
    }

    fn holds_pc(&self, e: &gimli::DebuggingInformationEntry<'_, '_, Slice<'b>>) -> bool {
        let pc = self.at.pc;
        if let Some((lo, hi)) = pc_range(e, &self.addrs) {
            return lo <= pc && pc < hi;
        }
        let off = match e.attr_value(gimli::DW_AT_ranges).ok().flatten() {
            Some(AttributeValue::RangeListsRef(r)) => gimli::RangeListsOffset(r.0),
            Some(AttributeValue::DebugRngListsIndex(i)) => {
                match self
                    .ranges()
                    .get_offset(self.h.encoding(), self.base.rnglists_base, i)
                {
                    Ok(o) => o,
                    Err(_) => return false,
                }
            }
            _ => return false,
        };
        let addr =
            gimli::DebugAddr::from(gimli::EndianSlice::new(&self.d.sections.addr, LittleEndian));
        let Ok(mut it) = self.ranges().ranges(
            off,
            self.h.encoding(),
            self.base.low_pc,
            &addr,
            self.base.addr_base,
        ) else {
            return false;
        };
        for _ in 0..MAX_LIST {
            match it.next() {
                Ok(Some(r)) if r.begin <= pc && pc < r.end => return true,
                Ok(Some(_)) => {}
                _ => return false,
            }
        }
        false
    }

    fn ranges(&self) -> gimli::RangeLists<Slice<'b>> {
        let s = self.d.sections;
        gimli::RangeLists::new(
            gimli::DebugRanges::new(&s.ranges, LittleEndian),
            gimli::DebugRngLists::new(&s.rnglists, LittleEndian),
        )
    }

    fn locate(&self, v: AttributeValue<Slice<'b>>) -> Result<Vec<Piece>, String> {
        let s = self.d.sections;
        let lists = gimli::LocationLists::new(
            gimli::DebugLoc::new(&s.loc, LittleEndian),
            gimli::DebugLocLists::new(&s.loclists, LittleEndian),
        );
        let off = match v {
            AttributeValue::Exprloc(e) => return self.eval(e),
            AttributeValue::LocationListsRef(o) => o,
            AttributeValue::DebugLocListsIndex(i) => lists
                .get_offset(self.h.encoding(), self.base.loclists_base, i)
                .map_err(|e| format!("unreadable location list index: {e}"))?,
            v => return Err(format!("unreadable location attribute {v:?}")),
        };
        let addr = gimli::DebugAddr::from(gimli::EndianSlice::new(&s.addr, LittleEndian));
        let pc = self.at.pc;
        let mut it = lists
            .locations(
                off,
                self.h.encoding(),
                self.base.low_pc,
                &addr,
                self.base.addr_base,
            )
            .map_err(|e| format!("unreadable location list at {:#x}: {e}", off.0))?;
        for _ in 0..MAX_LIST {
            match it.next() {
                Ok(Some(l)) if l.range.begin <= pc && pc < l.range.end => return self.eval(l.data),
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => return Err(format!("unreadable location list at {:#x}: {e}", off.0)),
            }
        }
        Err(format!(
            "optimized out: could not find loclist entry at {:#x} for address {:#x}",
            off.0,
            pc.wrapping_add(self.at.bias)
        ))
    }

    /// A piece in DWARF register `n` at the PC.
    fn register(&self, n: u16) -> PieceLoc {
        let name = reg_name(n, self.at.arm64);
        match self.at.regs {
            FrameRegs::Held(r) => match r.get(n) {
                Some(v) => PieceLoc::Reg(v),
                None => PieceLoc::Unavailable(format!(
                    "in register {name} at this pc, which gopeek does not read (only integer registers)"
                )),
            },
            FrameRegs::Running => PieceLoc::Unavailable(format!(
                "in register {name} at this pc, and the goroutine is running: --consistent reads its registers and frame at one instant"
            )),
            FrameRegs::NotOwn => PieceLoc::Unavailable(format!(
                "optimized out: in register {name} at this pc, which only the innermost frame of a running goroutine has"
            )),
        }
    }

    fn eval(&self, e: gimli::Expression<Slice<'b>>) -> Result<Vec<Piece>, String> {
        if e.0.is_empty() {
            return Err("optimized out: no location at this pc".into());
        }
        let mut ev = e.evaluation(self.h.encoding());
        ev.set_max_iterations(MAX_STEPS);
        let err = |e: gimli::Error| format!("location expression: {e}");
        let mut r = ev.evaluate().map_err(err)?;
        let mut done = false;
        for _ in 0..64 {
            r = match r {
                EvaluationResult::Complete => {
                    done = true;
                    break;
                }
                EvaluationResult::RequiresCallFrameCfa => {
                    ev.resume_with_call_frame_cfa(self.at.cfa)
                }
                // Go's DW_AT_frame_base is DW_OP_call_frame_cfa.
                EvaluationResult::RequiresFrameBase => ev.resume_with_frame_base(self.at.cfa),
                EvaluationResult::RequiresRelocatedAddress(a) => {
                    ev.resume_with_relocated_address(a.wrapping_add(self.at.bias))
                }
                other => return Err(format!("location expression needs {other:?}")),
            }
            .map_err(err)?;
        }
        if !done {
            return Err("location expression did not complete".into());
        }
        let pieces = ev.result();
        if pieces.is_empty() {
            return Err("optimized out: empty location".into());
        }
        Ok(pieces
            .into_iter()
            .map(|p| Piece {
                size: p.size_in_bits.map(|b| b / 8),
                loc: match p.location {
                    Location::Address { address } => PieceLoc::Addr(address),
                    Location::Register { register } => self.register(register.0),
                    Location::Empty => PieceLoc::Unavailable("optimized out".into()),
                    _ => PieceLoc::Unavailable("optimized out: not in memory".into()),
                },
            })
            .collect())
    }
}
