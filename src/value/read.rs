//! The value decoder: memory and a DWARF type in, a [`Value`] tree out,
//! bounded by [`Limits`] everywhere.
//!
//! A value's own bytes are read in one copy (`unsafe.Sizeof` of its type,
//! or only the elements that will be shown of a large array) and decoded
//! from that copy; what it points at (string bytes, slice elements, map
//! buckets, pointees, an interface's data) is read next, each in one copy,
//! each counted against the byte budget. Depth stops descent, `max_len`
//! stops elements and string bytes, and a pointer to a (type, address)
//! already on the path is a cycle. A read that fails, or a type that does
//! not fit the bytes, is an error for that node only: a wrong type at a
//! garbage address gives errors, never a panic or an unbounded read.

use super::dwarf::DwarfInfo;
use super::rtype::JsonMeta;
use super::tree::{Body, Cut, FieldValue, Value};
use super::types::{go_name, GoType, TypeId, TypeKind};
use crate::memory::Memory;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

/// The bounds of one `gopeek print`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Nesting levels followed below the printed value (struct fields,
    /// elements, pointees, interface values, map entries).
    pub max_depth: u32,
    /// Elements of an array, slice or map, and bytes of a string.
    pub max_len: u64,
    /// Bytes read from the target in all.
    pub max_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 16,
            max_len: 100,
            max_bytes: 16 << 20,
        }
    }
}

/// A value's own bytes above this are read part by part (fields, the
/// shown prefix of an array), never in one copy.
const WHOLE_READ_MAX: u64 = 64 << 10;
/// Addresses above this are not user-space addresses on linux/amd64 or
/// arm64 (a length or pointer this large is garbage).
const MAX_ADDR: u64 = 1 << 56;

/// Decodes values of one process. The budget and the cycle path live
/// here, so one decoder is one `gopeek print` invocation's worth.
pub struct Decoder<'a, 'b, M: Memory + ?Sized> {
    /// The executable's types.
    pub(crate) dwarf: &'a DwarfInfo<'b>,
    /// The target's memory.
    pub(crate) mem: &'a M,
    /// The bounds.
    pub(crate) limits: Limits,
    /// `moduledata.types` in the target (interfaces' dynamic types).
    pub(crate) types_base: Option<u64>,
    /// A code address to its function's name.
    pub(crate) func_name: &'a dyn Fn(u64) -> Option<String>,
    /// Runtime minus link address (PIE).
    pub(crate) bias: u64,
    used: Cell<u64>,
    path: RefCell<Vec<(u64, TypeId)>>,
    meta: RefCell<HashMap<u64, Option<Rc<JsonMeta>>>>,
}

/// Why bytes could not be had.
pub(crate) enum ReadFail {
    /// The byte budget is spent.
    Budget,
    /// The memory read failed.
    Memory(String),
}

impl<'a, 'b, M: Memory + ?Sized> Decoder<'a, 'b, M> {
    /// A decoder with a fresh budget.
    pub fn new(
        dwarf: &'a DwarfInfo<'b>,
        mem: &'a M,
        limits: Limits,
        types_base: Option<u64>,
        func_name: &'a dyn Fn(u64) -> Option<String>,
    ) -> Self {
        Decoder {
            dwarf,
            mem,
            limits,
            types_base,
            func_name,
            bias: 0,
            used: Cell::new(0),
            path: RefCell::new(Vec::new()),
            meta: RefCell::new(HashMap::new()),
        }
    }

    /// Sets the load bias (a PIE's runtime minus link address).
    pub fn with_bias(mut self, bias: u64) -> Self {
        self.bias = bias;
        self
    }

    /// Bytes read so far.
    pub fn bytes_used(&self) -> u64 {
        self.used.get()
    }

    /// Starts over with a fresh budget (a retry of a torn read).
    pub fn reset(&self) {
        self.used.set(0);
        self.path.borrow_mut().clear();
    }

    /// `len` bytes at `addr`, counted against the budget.
    pub(crate) fn read(&self, addr: u64, len: u64) -> Result<Vec<u8>, ReadFail> {
        if len == 0 {
            return Ok(Vec::new());
        }
        let used = self.used.get();
        if used.saturating_add(len) > self.limits.max_bytes {
            return Err(ReadFail::Budget);
        }
        if addr == 0 || addr >= MAX_ADDR || addr.checked_add(len).is_none_or(|e| e > MAX_ADDR) {
            return Err(ReadFail::Memory(format!(
                "{addr:#x} is not a valid address"
            )));
        }
        self.used.set(used + len);
        let mut buf = vec![0u8; len as usize];
        self.mem
            .read_at(addr, &mut buf)
            .map_err(|e| ReadFail::Memory(e.to_string()))?;
        Ok(buf)
    }

    /// Go's name of a type, as reflect prints it.
    pub fn name_of(&self, t: &GoType) -> String {
        go_name(&t.name, &|p| self.dwarf.package_name(p).map(str::to_string))
    }

    /// encoding/json's facts of a named type (cached per descriptor).
    fn meta_of(&self, t: &GoType) -> Option<Rc<JsonMeta>> {
        if t.rtype == 0 {
            return None;
        }
        if let Some(m) = self.meta.borrow().get(&t.rtype) {
            return m.clone();
        }
        let m = self.json_meta(t).map(Rc::new);
        self.meta.borrow_mut().insert(t.rtype, m.clone());
        m
    }

    /// The type of entry `id`.
    pub(crate) fn ty(&self, id: TypeId) -> Result<Rc<GoType>, String> {
        self.dwarf.get(id).map_err(|e| e.to_string())
    }

    /// The value of type `id` at `addr`, read from the target.
    pub fn load(&self, id: TypeId, addr: u64, depth: u32) -> Value {
        let t = match self.ty(id) {
            Ok(t) => t,
            Err(e) => return Value::error("?", e),
        };
        let name = self.name_of(&t);
        if t.size > WHOLE_READ_MAX {
            return self.load_large(&t, &name, addr, depth);
        }
        match self.read(addr, t.size) {
            Ok(buf) => self.decode(&t, addr, &buf, depth),
            Err(ReadFail::Budget) => {
                cut(name, Body::Error("byte budget spent".into()), Cut::Budget)
            }
            Err(ReadFail::Memory(e)) => Value::error(name, e),
        }
    }

    /// A value too large for one copy: a struct field by field, an array
    /// by the elements shown.
    fn load_large(&self, t: &GoType, name: &str, addr: u64, depth: u32) -> Value {
        match &t.kind {
            TypeKind::Struct { fields } => {
                if depth >= self.limits.max_depth {
                    return cut(name, Body::Struct(Vec::new()), Cut::Depth);
                }
                let fv = fields
                    .iter()
                    .map(|f| FieldValue {
                        name: f.name.clone(),
                        embedded: f.embedded,
                        json_tag: None,
                        value: self.load(f.ty, addr.wrapping_add(f.offset), depth + 1),
                    })
                    .collect();
                Value::new(name, Body::Struct(fv))
            }
            TypeKind::Array { elem, len } => {
                let (elems, c) = self.elems(*elem, addr, *len, depth, None);
                let mut v = Value::new(name, Body::Array { len: *len, elems });
                v.cut = c;
                v
            }
            _ => Value::error(
                name,
                format!("a {}-byte {} is not a Go value", t.size, t.kind.label()),
            ),
        }
    }

    /// `n` elements of type `elem` from `addr` (at most `max_len`), read
    /// in one copy unless `inline` holds them already.
    pub(crate) fn elems(
        &self,
        elem: TypeId,
        addr: u64,
        n: u64,
        depth: u32,
        inline: Option<&[u8]>,
    ) -> (Vec<Value>, Option<Cut>) {
        if n == 0 {
            return (Vec::new(), None);
        }
        if depth >= self.limits.max_depth {
            return (Vec::new(), Some(Cut::Depth));
        }
        let et = match self.ty(elem) {
            Ok(t) => t,
            Err(e) => return (vec![Value::error("?", e)], None),
        };
        let shown = n.min(self.limits.max_len);
        let mut c = (shown < n).then_some(Cut::Len);
        let es = et.size;
        let total = es.saturating_mul(shown);
        let owned;
        let buf: &[u8] = match inline {
            Some(b) if (b.len() as u64) >= total => b,
            _ if total > WHOLE_READ_MAX => {
                // Element by element (each its own bounded read).
                let mut v = Vec::new();
                for i in 0..shown {
                    let x = self.load(elem, addr.wrapping_add(i * es), depth + 1);
                    let stop = x.cut == Some(Cut::Budget);
                    v.push(x);
                    if stop {
                        c = Some(Cut::Budget);
                        break;
                    }
                }
                return (v, c);
            }
            _ => match self.read(addr, total) {
                Ok(b) => {
                    owned = b;
                    &owned
                }
                Err(ReadFail::Budget) => return (Vec::new(), Some(Cut::Budget)),
                Err(ReadFail::Memory(e)) => {
                    return (vec![Value::error(self.name_of(&et), e)], None)
                }
            },
        };
        let v = (0..shown)
            .map(|i| {
                let off = (i * es) as usize;
                let a = addr.wrapping_add(i * es);
                self.decode(&et, a, &buf[off..off + es as usize], depth + 1)
            })
            .collect();
        (v, c)
    }

    /// A value of type `t` whose own bytes (`t.size` of them) are `buf`,
    /// read from `addr`.
    pub fn decode(&self, t: &GoType, addr: u64, buf: &[u8], depth: u32) -> Value {
        let mut v = self.decode_kind(t, addr, buf, depth);
        // A named non-struct type may marshal itself too (json.RawMessage,
        // json.Number, a named string with MarshalText).
        let named = t.name.contains('.') && !t.name.starts_with('*');
        if named && !matches!(t.kind, TypeKind::Struct { .. }) {
            v.json_marshaler = self.meta_of(t).is_some_and(|m| m.marshaler);
        }
        v
    }

    fn decode_kind(&self, t: &GoType, addr: u64, buf: &[u8], depth: u32) -> Value {
        let name = self.name_of(t);
        if (buf.len() as u64) < t.size.min(WHOLE_READ_MAX)
            && !matches!(t.kind, TypeKind::Array { .. })
        {
            return Value::error(name, "value shorter than its type");
        }
        let w = |off: usize| word(buf, off);
        match &t.kind {
            TypeKind::Bool => Value::new(name, Body::Bool(buf[0] != 0)),
            TypeKind::Int => Value::new(name, Body::Int(sign_extend(buf, t.size as usize))),
            TypeKind::Uint => Value::new(name, Body::Uint(w_n(buf, t.size as usize))),
            TypeKind::Float => Value::new(name, float(buf, t.size)),
            TypeKind::Complex => {
                let h = (t.size / 2) as usize;
                let (Body::Float(re, _), Body::Float(im, _)) =
                    (float(buf, h as u64), float(&buf[h..], h as u64))
                else {
                    return Value::error(name, "bad complex");
                };
                Value::new(name, Body::Complex(re, im, (h * 8) as u8))
            }
            TypeKind::String => self.string(name, w(0), w(8)),
            TypeKind::Array { elem, len } => {
                let (elems, c) = self.elems(*elem, addr, *len, depth, Some(buf));
                let mut v = Value::new(name, Body::Array { len: *len, elems });
                v.cut = c;
                v
            }
            TypeKind::Slice { elem } => self.slice(name, *elem, w(0), w(8), w(16), depth),
            TypeKind::Struct { fields } => {
                if depth >= self.limits.max_depth && !fields.is_empty() {
                    return cut(name, Body::Struct(Vec::new()), Cut::Depth);
                }
                let meta = self.meta_of(t);
                let mut fv = Vec::with_capacity(fields.len());
                for (i, f) in fields.iter().enumerate() {
                    let value = match self.ty(f.ty) {
                        Err(e) => Value::error("?", e),
                        Ok(ft) => {
                            let (s, e) = (f.offset as usize, (f.offset + ft.size) as usize);
                            match buf.get(s..e) {
                                Some(b) => {
                                    self.decode(&ft, addr.wrapping_add(f.offset), b, depth + 1)
                                }
                                None => self.load(f.ty, addr.wrapping_add(f.offset), depth + 1),
                            }
                        }
                    };
                    fv.push(FieldValue {
                        name: f.name.clone(),
                        embedded: f.embedded,
                        json_tag: meta.as_ref().and_then(|m| m.tags.get(i).cloned().flatten()),
                        value,
                    });
                }
                let mut v = Value::new(name, Body::Struct(fv));
                v.json_marshaler = meta.is_some_and(|m| m.marshaler);
                v
            }
            TypeKind::Pointer { elem } => self.pointer(name, *elem, w(0), depth),
            TypeKind::UnsafePointer => Value::new(name, Body::UnsafePointer(w(0))),
            TypeKind::Map { key, elem, header } => {
                self.map(name, *key, *elem, *header, w(0), depth)
            }
            TypeKind::Chan { elem, header } => self.chan(name, *elem, *header, w(0), depth),
            TypeKind::Func => {
                let p = w(0);
                if p == 0 {
                    return Value::new(name, Body::Func { pc: 0, name: None });
                }
                match self.read(p, 8) {
                    Ok(b) => {
                        let pc = word(&b, 0);
                        Value::new(
                            name,
                            Body::Func {
                                pc,
                                name: (self.func_name)(pc),
                            },
                        )
                    }
                    Err(ReadFail::Budget) => {
                        cut(name, Body::Error("byte budget spent".into()), Cut::Budget)
                    }
                    Err(ReadFail::Memory(e)) => Value::error(name, e),
                }
            }
            TypeKind::Interface { empty } => self.interface(name, *empty, w(0), w(8), depth),
            TypeKind::Unsupported(what) => {
                Value::error(name, format!("unsupported DWARF type ({what})"))
            }
        }
    }

    fn string(&self, name: String, ptr: u64, len: u64) -> Value {
        if len == 0 {
            return Value::new(
                name,
                Body::Str {
                    bytes: Vec::new(),
                    len,
                },
            );
        }
        if len > MAX_ADDR || ptr == 0 {
            return Value::error(
                name,
                format!("not a string header (ptr {ptr:#x}, len {len})"),
            );
        }
        let n = len.min(self.limits.max_len);
        match self.read(ptr, n) {
            Ok(bytes) => {
                let mut v = Value::new(name, Body::Str { bytes, len });
                v.cut = (n < len).then_some(Cut::Len);
                v
            }
            Err(ReadFail::Budget) => cut(
                name,
                Body::Str {
                    bytes: Vec::new(),
                    len,
                },
                Cut::Budget,
            ),
            Err(ReadFail::Memory(e)) => Value::error(name, e),
        }
    }

    fn slice(&self, name: String, elem: TypeId, ptr: u64, len: u64, cap: u64, depth: u32) -> Value {
        if len > cap || cap > MAX_ADDR || (ptr == 0 && cap != 0) {
            return Value::error(name, format!("not a slice header (len {len}, cap {cap})"));
        }
        let bytes = self
            .ty(elem)
            .is_ok_and(|t| matches!(t.kind, TypeKind::Uint) && t.size == 1);
        let (elems, c) = self.elems(elem, ptr, len, depth, None);
        let mut v = Value::new(
            name,
            Body::Slice {
                ptr,
                len,
                cap,
                elems,
                bytes,
            },
        );
        v.cut = c;
        v
    }

    fn pointer(&self, name: String, elem: TypeId, ptr: u64, depth: u32) -> Value {
        let body = |target| Body::Pointer { ptr, target };
        if ptr == 0 {
            return Value::new(name, body(None));
        }
        if depth >= self.limits.max_depth {
            return cut(name, body(None), Cut::Depth);
        }
        if self.path.borrow().contains(&(ptr, elem)) {
            return cut(name, body(None), Cut::Cycle);
        }
        self.path.borrow_mut().push((ptr, elem));
        let target = self.load(elem, ptr, depth + 1);
        self.path.borrow_mut().pop();
        Value::new(name, body(Some(Box::new(target))))
    }
}

/// The offset of the member `name` of struct type `t`.
pub(crate) fn field(t: &GoType, name: &str) -> Option<u64> {
    match &t.kind {
        TypeKind::Struct { fields } => fields.iter().find(|f| f.name == name).map(|f| f.offset),
        _ => None,
    }
}

pub(crate) fn cut(name: impl Into<String>, body: Body, c: Cut) -> Value {
    let mut v = Value::new(name, body);
    v.cut = Some(c);
    v
}

/// A little-endian word at `off` (0 where the bytes run out).
pub(crate) fn word(buf: &[u8], off: usize) -> u64 {
    buf.get(off..off + 8).map_or(0, |b| w_n(b, 8))
}

/// An unsigned little-endian integer of `n` bytes.
pub(crate) fn w_n(buf: &[u8], n: usize) -> u64 {
    let mut v = [0u8; 8];
    let n = n.min(8).min(buf.len());
    v[..n].copy_from_slice(&buf[..n]);
    u64::from_le_bytes(v)
}

fn sign_extend(buf: &[u8], n: usize) -> i64 {
    let v = w_n(buf, n);
    let shift = 64 - 8 * n.clamp(1, 8) as u32;
    ((v << shift) as i64) >> shift
}

fn float(buf: &[u8], size: u64) -> Body {
    if size == 4 {
        Body::Float(f32::from_bits(w_n(buf, 4) as u32) as f64, 32)
    } else {
        Body::Float(f64::from_bits(w_n(buf, 8)), 64)
    }
}
