//! Channels and interfaces: the `hchan` fields that say a channel's
//! length, capacity and state, and an interface's dynamic type (through
//! the itab or `_type` word and `DW_AT_go_runtime_type`) and value
//! (stored in the data word itself for pointer-shaped types).

use super::read::{cut, field, w_n, word, Decoder, ReadFail};
use super::tree::{Body, Cut, Value};
use super::types::{GoType, TypeId, TypeKind};
use crate::memory::Memory;

impl<M: Memory + ?Sized> Decoder<'_, '_, M> {
    pub(crate) fn chan(
        &self,
        name: String,
        elem: TypeId,
        header: Option<TypeId>,
        ptr: u64,
        depth: u32,
    ) -> Value {
        let elem_name = self.ty(elem).map(|t| self.name_of(&t)).unwrap_or_default();
        let mk = |len, cap, closed, elems| Body::Chan {
            ptr,
            len,
            cap,
            closed,
            elem: elem_name.clone(),
            elems,
        };
        if ptr == 0 {
            return Value::new(name, mk(0, 0, false, Vec::new()));
        }
        let Some(h) = header.and_then(|h| self.ty(h).ok()) else {
            return Value::error(name, "no hchan type in the DWARF");
        };
        let (Some(q), Some(d), Some(c)) = (
            field(&h, "qcount"),
            field(&h, "dataqsiz"),
            field(&h, "closed"),
        ) else {
            return Value::error(name, "hchan lacks qcount/dataqsiz/closed");
        };
        match self.read(ptr, h.size) {
            Ok(b) => {
                let get =
                    |off: u64, n: usize| b.get(off as usize..off as usize + n).map(|s| w_n(s, n));
                match (get(q, 8), get(d, 8), get(c, 4)) {
                    (Some(len), Some(cap), Some(closed)) => {
                        // The buffered elements, oldest first: the ring
                        // from recvx, up to --max-len and the depth limit.
                        let ring = (field(&h, "buf"), field(&h, "recvx"));
                        let elems = match (ring, self.ty(elem)) {
                            ((Some(bo), Some(ro)), Ok(et))
                                if cap > 0 && len <= cap && depth < self.limits.max_depth =>
                            {
                                let (buf, recvx) =
                                    (get(bo, 8).unwrap_or(0), get(ro, 8).unwrap_or(0));
                                (0..len.min(self.limits.max_len))
                                    .map(|i| {
                                        let slot = recvx.wrapping_add(i) % cap;
                                        let at = buf.wrapping_add(slot.wrapping_mul(et.size));
                                        self.load(elem, at, depth + 1)
                                    })
                                    .collect()
                            }
                            _ => Vec::new(),
                        };
                        Value::new(name, mk(len, cap, closed != 0, elems))
                    }
                    _ => Value::error(name, "hchan fields past its size"),
                }
            }
            Err(ReadFail::Budget) => {
                cut(name, Body::Error("byte budget spent".into()), Cut::Budget)
            }
            Err(ReadFail::Memory(e)) => Value::error(name, e),
        }
    }

    pub(crate) fn interface(
        &self,
        name: String,
        empty: bool,
        w0: u64,
        data: u64,
        depth: u32,
    ) -> Value {
        if w0 == 0 {
            return Value::new(name, Body::Interface(None));
        }
        if depth >= self.limits.max_depth {
            return cut(name, Body::Interface(None), Cut::Depth);
        }
        let rtype = if empty {
            w0
        } else {
            // itab: {inter, _type, ...}
            match self.read(w0.wrapping_add(8), 8) {
                Ok(b) => word(&b, 0),
                Err(ReadFail::Budget) => return cut(name, Body::Interface(None), Cut::Budget),
                Err(ReadFail::Memory(e)) => return Value::error(name, format!("itab: {e}")),
            }
        };
        let Some(base) = self.types_base else {
            return Value::error(
                name,
                "moduledata.types unknown: dynamic types cannot be named",
            );
        };
        // The attribute holds the offset from moduledata.types (some
        // releases write a few as link addresses instead).
        let id = rtype
            .checked_sub(base)
            .and_then(|o| self.dwarf.type_of_runtime(o))
            .or_else(|| self.dwarf.type_of_runtime(rtype.wrapping_sub(self.bias)));
        let Some(id) = id else {
            return Value::error(name, format!("dynamic type {rtype:#x} is not in the DWARF"));
        };
        let dt = match self.ty(id) {
            Ok(t) => t,
            Err(e) => return Value::error(name, e),
        };
        let dynamic = if self.direct_iface(&dt, 0) {
            self.decode(&dt, 0, &data.to_le_bytes(), depth + 1)
        } else {
            if data == 0 {
                return Value::error(name, "interface data is nil");
            }
            self.load(id, data, depth + 1)
        };
        Value::new(name, Body::Interface(Some(Box::new(dynamic))))
    }

    /// Go stores pointer-shaped types in the interface's data word itself
    /// (the compiler's `isdirectiface`).
    fn direct_iface(&self, t: &GoType, n: u32) -> bool {
        if n > 16 {
            return false;
        }
        match &t.kind {
            TypeKind::Pointer { .. }
            | TypeKind::UnsafePointer
            | TypeKind::Chan { .. }
            | TypeKind::Map { .. }
            | TypeKind::Func => true,
            TypeKind::Array { elem, len: 1 } => {
                self.ty(*elem).is_ok_and(|e| self.direct_iface(&e, n + 1))
            }
            TypeKind::Struct { fields } if fields.len() == 1 => self
                .ty(fields[0].ty)
                .is_ok_and(|e| self.direct_iface(&e, n + 1)),
            _ => false,
        }
    }
}
