//! Map entries in both of the runtime's forms, from the types the linker
//! synthesizes for each map type in the DWARF (so offsets never come from
//! a table of ours):
//!
//! - up to Go 1.23, `hash<K,V>` (`runtime.hmap`: `count`, `flags`, `B`,
//!   `buckets`, `oldbuckets`) and `bucket<K,V>` (`tophash [8]uint8`, `keys`,
//!   `values`, `overflow`). A cell is live when its tophash is at least
//!   `minTopHash` (5); during growth the old buckets' cells that were not
//!   evacuated yet are still live there (evacuated ones hold 2..4), so every
//!   entry is found exactly once in the union.
//! - from Go 1.24, Swiss tables: `map<K,V>` (`used`, `dirPtr`, `dirLen`),
//!   `table<K,V>` (`groups` = `{data, lengthMask}`) and the group struct
//!   (`ctrl uint64`, `slots [8]struct{key; elem}`). With `dirLen == 0`,
//!   `dirPtr` is one group (a small map); else it is `dirLen` table
//!   pointers, where a table appears once per directory slot it covers. A
//!   slot is full when its control byte's high bit is clear.
//!
//! Keys and values larger than 128 bytes are stored indirectly: the DWARF
//! slot type is then a pointer to the map's key (or value) type.
//!
//! Everything is bounded: `B` and `dirLen` by sanity limits, buckets and
//! groups by the byte budget, overflow chains by the number of buckets,
//! entries by `max_len`.

use super::read::{cut, field, word, Decoder, ReadFail};
use super::tree::{Body, Cut, MapKeys, Value};
use super::types::{GoType, TypeId, TypeKind};
use crate::memory::Memory;
use std::collections::HashSet;
use std::rc::Rc;

/// `minTopHash` of the bucket form (Go 1.19–1.23).
const MIN_TOP_HASH: u8 = 5;
/// `sameSizeGrow` in `hmap.flags`.
const SAME_SIZE_GROW: u8 = 8;
/// 2^B buckets: more than 2^40 is not a map in memory.
const MAX_B: u8 = 40;
/// Directory entries of a Swiss map: more is garbage.
const MAX_DIR: u64 = 1 << 24;

/// The entries read so far and whether a limit stopped reading.
struct Acc {
    entries: Vec<(Value, Value)>,
    want: u64,
    cut: Option<Cut>,
}

impl Acc {
    fn full(&self) -> bool {
        self.entries.len() as u64 >= self.want || self.cut.is_some()
    }
}

impl<M: Memory + ?Sized> Decoder<'_, '_, M> {
    /// A map value whose header pointer is `ptr`.
    pub(crate) fn map(
        &self,
        name: String,
        key: TypeId,
        elem: TypeId,
        header: Option<TypeId>,
        ptr: u64,
        depth: u32,
    ) -> Value {
        let keys = match self.ty(key).map(|k| k.kind.clone()) {
            Ok(TypeKind::String) => MapKeys::Str,
            Ok(TypeKind::Int | TypeKind::Uint) => MapKeys::Int,
            Ok(TypeKind::Float) => MapKeys::Float,
            Ok(TypeKind::Bool) => MapKeys::Bool,
            _ => MapKeys::Other,
        };
        let mk = |len, entries| Body::Map {
            ptr,
            len,
            entries,
            keys,
        };
        if ptr == 0 {
            return Value::new(name, mk(0, Vec::new()));
        }
        let Some(h) = header.and_then(|h| self.ty(h).ok()) else {
            return Value::error(name, "the DWARF has no header type for this map");
        };
        let hdr = match self.read(ptr, h.size) {
            Ok(b) => b,
            Err(ReadFail::Budget) => return cut(name, mk(0, Vec::new()), Cut::Budget),
            Err(ReadFail::Memory(e)) => return Value::error(name, e),
        };
        let swiss = field(&h, "dirPtr").is_some();
        let len_field = if swiss { "used" } else { "count" };
        let Some(len) = field(&h, len_field).map(|o| word(&hdr, o as usize)) else {
            return Value::error(name, format!("map header lacks {len_field}"));
        };
        if len > (1u64 << 56) {
            return Value::error(name, format!("not a map header (len {len})"));
        }
        if depth >= self.limits.max_depth && len > 0 {
            return cut(name, mk(len, Vec::new()), Cut::Depth);
        }
        let mut acc = Acc {
            entries: Vec::new(),
            want: len.min(self.limits.max_len),
            cut: None,
        };
        let r = if swiss {
            self.swiss(&h, &hdr, key, elem, depth, &mut acc)
        } else {
            self.buckets(&h, &hdr, key, elem, depth, &mut acc)
        };
        if let Err(e) = r {
            return Value::error(name, e);
        }
        if acc.cut.is_none() && (acc.entries.len() as u64) < len {
            acc.cut = Some(Cut::Len);
        }
        let mut entries = acc.entries;
        entries.sort_by(|a, b| super::order::compare(&a.0, &b.0));
        let mut v = Value::new(name, mk(len, entries));
        v.cut = acc.cut;
        v
    }

    fn struct_of_ptr(&self, t: &GoType, member: &str) -> Result<(u64, Rc<GoType>), String> {
        let TypeKind::Struct { fields } = &t.kind else {
            return Err(format!("{} is not a struct", t.name));
        };
        let f = fields
            .iter()
            .find(|f| f.name == member)
            .ok_or_else(|| format!("{} lacks {member}", t.name))?;
        match self.ty(f.ty)?.kind {
            TypeKind::Pointer { elem } => Ok((f.offset, self.ty(elem)?)),
            _ => Err(format!("{}.{member} is not a pointer", t.name)),
        }
    }

    /// Go 1.19–1.23: buckets (and old buckets while growing).
    fn buckets(
        &self,
        h: &GoType,
        hdr: &[u8],
        key: TypeId,
        elem: TypeId,
        depth: u32,
        acc: &mut Acc,
    ) -> Result<(), String> {
        let (b_off, flags_off) = (field(h, "B"), field(h, "flags"));
        let (Some(b_off), Some(flags_off)) = (b_off, flags_off) else {
            return Err("hash header lacks B/flags".into());
        };
        let b = hdr.get(b_off as usize).copied().unwrap_or(0);
        let flags = hdr.get(flags_off as usize).copied().unwrap_or(0);
        if b > MAX_B {
            return Err(format!("not a map header (B = {b})"));
        }
        let (buckets_off, bt) = self.struct_of_ptr(h, "buckets")?;
        let old = field(h, "oldbuckets").map_or(0, |o| word(hdr, o as usize));
        let nb = 1u64 << b;
        let cells = BucketCells::new(self, &bt, key, elem)?;
        self.bucket_array(word(hdr, buckets_off as usize), nb, &bt, &cells, depth, acc)?;
        if old != 0 && !acc.full() {
            let onb = if flags & SAME_SIZE_GROW != 0 {
                nb
            } else {
                (nb / 2).max(1)
            };
            self.bucket_array(old, onb, &bt, &cells, depth, acc)?;
        }
        Ok(())
    }

    fn bucket_array(
        &self,
        base: u64,
        nb: u64,
        bt: &GoType,
        cells: &BucketCells,
        depth: u32,
        acc: &mut Acc,
    ) -> Result<(), String> {
        if base == 0 {
            return Ok(());
        }
        // Overflow buckets are bounded by the bucket count (Go keeps
        // noverflow below 2^B... roughly; this bound is ours).
        let mut overflow_budget = nb.saturating_mul(4).max(64);
        for i in 0..nb {
            let mut addr = base.wrapping_add(i.wrapping_mul(bt.size));
            while addr != 0 && !acc.full() {
                let buf = match self.read(addr, bt.size) {
                    Ok(b) => b,
                    Err(ReadFail::Budget) => {
                        acc.cut = Some(Cut::Budget);
                        return Ok(());
                    }
                    Err(ReadFail::Memory(e)) => return Err(e),
                };
                for j in 0..8u64 {
                    let th = buf.get((cells.tophash + j) as usize).copied().unwrap_or(0);
                    if th < MIN_TOP_HASH || acc.full() {
                        continue;
                    }
                    let k = self.cell(
                        &cells.key,
                        addr,
                        &buf,
                        cells.keys + j * cells.key.slot_size,
                        depth,
                    );
                    let v = self.cell(
                        &cells.elem,
                        addr,
                        &buf,
                        cells.values + j * cells.elem.slot_size,
                        depth,
                    );
                    acc.entries.push((k, v));
                }
                addr = word(&buf, cells.overflow as usize);
                if addr != 0 {
                    if overflow_budget == 0 {
                        return Err("overflow chain longer than the map allows".into());
                    }
                    overflow_budget -= 1;
                }
            }
            if acc.full() {
                break;
            }
        }
        Ok(())
    }

    /// Go 1.24+: Swiss tables.
    fn swiss(
        &self,
        h: &GoType,
        hdr: &[u8],
        key: TypeId,
        elem: TypeId,
        depth: u32,
        acc: &mut Acc,
    ) -> Result<(), String> {
        let (dir_off, tt) = self.struct_of_ptr(h, "dirPtr")?;
        let dir_len = field(h, "dirLen").map_or(0, |o| word(hdr, o as usize));
        let dir_ptr = word(hdr, dir_off as usize);
        // dirPtr is **table: its pointee is *table.
        let TypeKind::Pointer { elem: table_id } = tt.kind else {
            return Err("map dirPtr is not **table".into());
        };
        let table = self.ty(table_id)?;
        let groups_off = field(&table, "groups").ok_or("table lacks groups")?;
        let gref = match &table.kind {
            TypeKind::Struct { fields } => fields
                .iter()
                .find(|f| f.name == "groups")
                .map(|f| f.ty)
                .ok_or("table lacks groups")?,
            _ => return Err("table is not a struct".into()),
        };
        let gref = self.ty(gref)?;
        let (data_off, gt) = self.struct_of_ptr(&gref, "data")?;
        let mask_off = field(&gref, "lengthMask").ok_or("groupReference lacks lengthMask")?;
        let cells = GroupCells::new(self, &gt, key, elem)?;
        if dir_ptr == 0 {
            return Ok(());
        }
        if dir_len == 0 {
            return self.group(dir_ptr, &gt, &cells, depth, acc);
        }
        if dir_len > MAX_DIR {
            return Err(format!("not a map header (dirLen = {dir_len})"));
        }
        let dir = match self.read(dir_ptr, dir_len * 8) {
            Ok(b) => b,
            Err(ReadFail::Budget) => {
                acc.cut = Some(Cut::Budget);
                return Ok(());
            }
            Err(ReadFail::Memory(e)) => return Err(e),
        };
        let mut seen = HashSet::new();
        for i in 0..dir_len as usize {
            let t = word(&dir, i * 8);
            if t == 0 || !seen.insert(t) {
                continue;
            }
            let tb = match self.read(t, table.size) {
                Ok(b) => b,
                Err(ReadFail::Budget) => {
                    acc.cut = Some(Cut::Budget);
                    return Ok(());
                }
                Err(ReadFail::Memory(e)) => return Err(e),
            };
            let data = word(&tb, (groups_off + data_off) as usize);
            let mask = word(&tb, (groups_off + mask_off) as usize);
            if mask >= MAX_DIR * 1024 {
                return Err(format!("not a table (lengthMask = {mask})"));
            }
            for g in 0..=mask {
                if acc.full() {
                    return Ok(());
                }
                self.group(
                    data.wrapping_add(g.wrapping_mul(gt.size)),
                    &gt,
                    &cells,
                    depth,
                    acc,
                )?;
            }
        }
        Ok(())
    }

    fn group(
        &self,
        addr: u64,
        gt: &GoType,
        cells: &GroupCells,
        depth: u32,
        acc: &mut Acc,
    ) -> Result<(), String> {
        let buf = match self.read(addr, gt.size) {
            Ok(b) => b,
            Err(ReadFail::Budget) => {
                acc.cut = Some(Cut::Budget);
                return Ok(());
            }
            Err(ReadFail::Memory(e)) => return Err(e),
        };
        let ctrl = word(&buf, cells.ctrl as usize);
        for j in 0..8u64 {
            if acc.full() {
                break;
            }
            if (ctrl >> (8 * j)) & 0x80 != 0 {
                continue;
            }
            let slot = cells.slots + j * cells.slot_size;
            let k = self.cell(&cells.key, addr, &buf, slot + cells.key_off, depth);
            let v = self.cell(&cells.elem, addr, &buf, slot + cells.elem_off, depth);
            acc.entries.push((k, v));
        }
        Ok(())
    }

    /// A key or value stored in a bucket or slot at `off` of `buf`.
    fn cell(&self, c: &Cell, base: u64, buf: &[u8], off: u64, depth: u32) -> Value {
        let Some(b) = buf.get(off as usize..(off + c.stored.size) as usize) else {
            return Value::error(self.name_of(&c.stored), "cell past the end of its bucket");
        };
        if c.indirect {
            let p = word(b, 0);
            return self.load(c.want, p, depth + 1);
        }
        self.decode(&c.stored, base.wrapping_add(off), b, depth + 1)
    }
}

/// How one key or value is stored in a bucket or slot.
struct Cell {
    /// The map's key (or value) type.
    want: TypeId,
    /// The stored type: `want`, or a pointer to it.
    stored: Rc<GoType>,
    indirect: bool,
    /// Bytes from one cell to the next in the bucket form.
    slot_size: u64,
}

fn cell<M: Memory + ?Sized>(
    d: &Decoder<'_, '_, M>,
    stored: TypeId,
    want: TypeId,
) -> Result<Cell, String> {
    let st = d.ty(stored)?;
    let indirect = stored != want && matches!(st.kind, TypeKind::Pointer { elem } if elem == want);
    Ok(Cell {
        want,
        slot_size: st.size,
        stored: st,
        indirect,
    })
}

struct BucketCells {
    tophash: u64,
    keys: u64,
    values: u64,
    overflow: u64,
    key: Cell,
    elem: Cell,
}

impl BucketCells {
    fn new<M: Memory + ?Sized>(
        d: &Decoder<'_, '_, M>,
        bt: &GoType,
        key: TypeId,
        elem: TypeId,
    ) -> Result<Self, String> {
        let TypeKind::Struct { fields } = &bt.kind else {
            return Err("bucket is not a struct".into());
        };
        let f = |n: &str| {
            fields
                .iter()
                .find(|f| f.name == n)
                .ok_or(format!("bucket lacks {n}"))
        };
        let arr_elem = |id: TypeId| match d.ty(id)?.kind {
            TypeKind::Array { elem, .. } => Ok(elem),
            _ => Err("bucket keys/values are not arrays".to_string()),
        };
        let (keys, values) = (f("keys")?, f("values")?);
        Ok(BucketCells {
            tophash: f("tophash")?.offset,
            keys: keys.offset,
            values: values.offset,
            overflow: f("overflow")?.offset,
            key: cell(d, arr_elem(keys.ty)?, key)?,
            elem: cell(d, arr_elem(values.ty)?, elem)?,
        })
    }
}

struct GroupCells {
    ctrl: u64,
    slots: u64,
    slot_size: u64,
    key_off: u64,
    elem_off: u64,
    key: Cell,
    elem: Cell,
}

impl GroupCells {
    fn new<M: Memory + ?Sized>(
        d: &Decoder<'_, '_, M>,
        gt: &GoType,
        key: TypeId,
        elem: TypeId,
    ) -> Result<Self, String> {
        let TypeKind::Struct { fields } = &gt.kind else {
            return Err("group is not a struct".into());
        };
        let f = |n: &str| {
            fields
                .iter()
                .find(|f| f.name == n)
                .ok_or(format!("group lacks {n}"))
        };
        let slots = f("slots")?;
        let TypeKind::Array { elem: slot_id, .. } = d.ty(slots.ty)?.kind else {
            return Err("group slots is not an array".into());
        };
        let st = d.ty(slot_id)?;
        let TypeKind::Struct { fields: sf } = &st.kind else {
            return Err("slot is not a struct".into());
        };
        let g = |n: &str| {
            sf.iter()
                .find(|f| f.name == n)
                .ok_or(format!("slot lacks {n}"))
        };
        let (k, e) = (g("key")?, g("elem")?);
        Ok(GroupCells {
            ctrl: f("ctrl")?.offset,
            slots: slots.offset,
            slot_size: st.size,
            key_off: k.offset,
            elem_off: e.offset,
            key: cell(d, k.ty, key)?,
            elem: cell(d, e.ty, elem)?,
        })
    }
}
