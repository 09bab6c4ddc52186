//! What encoding/json sees that DWARF does not say, read from the runtime
//! type descriptors (`abi.Type`, found through `DW_AT_go_runtime_type`):
//! struct field tags, and whether a type (or its pointer type) has a
//! `MarshalJSON` or `MarshalText` method, which encoding/json would call
//! and gopeek cannot.
//!
//! Layouts, the same from Go 1.19 to 1.27 on 64-bit: `abi.Type` is 48
//! bytes (tflag at 20, `PtrToThis` at 44); a struct type adds `PkgPath`
//! and `Fields []StructField` (at 56; 24 bytes a field, the name first);
//! a pointer type adds `Elem`. With `TFlagUncommon`, an `UncommonType`
//! (`Mcount u16` at 4, `Moff u32` at 8) follows the kind's struct, and
//! `Mcount` methods of 16 bytes (a `NameOff` first) sit `Moff` bytes after
//! it. A name is a flags byte (2: has a tag), a varint length, the bytes,
//! then the tag the same way. The field names read are checked against
//! the DWARF's; any mismatch means "unknown", never a guess.

use super::read::{word, Decoder};
use super::types::{GoType, TypeKind};
use crate::memory::Memory;

const TYPE_SIZE: u64 = 48;
const TFLAG_UNCOMMON: u8 = 1;
/// More fields or methods than this is not a descriptor.
const MAX_ITEMS: u64 = 1 << 16;

/// encoding/json facts of one type.
#[derive(Debug, Clone, Default)]
pub struct JsonMeta {
    /// The `json:"..."` tag of each field (struct types), in order.
    pub tags: Vec<Option<String>>,
    /// The type or its pointer type has `MarshalJSON` or `MarshalText`.
    pub marshaler: bool,
}

impl<M: Memory + ?Sized> Decoder<'_, '_, M> {
    /// The facts for `t`, or `None` when its descriptor is unknown.
    pub(crate) fn json_meta(&self, t: &GoType) -> Option<JsonMeta> {
        let base = self.types_base?;
        if t.rtype == 0 {
            return None;
        }
        let addr = base.checked_add(t.rtype)?;
        let hdr = self.raw(addr, TYPE_SIZE + 32)?;
        let mut meta = JsonMeta::default();
        if let TypeKind::Struct { fields } = &t.kind {
            let (ptr, n) = (word(&hdr, 56), word(&hdr, 64));
            if n != fields.len() as u64 || n > MAX_ITEMS {
                return None;
            }
            let table = self.raw(ptr, n * 24)?;
            for (i, f) in fields.iter().enumerate() {
                let (name, tag) = self.rt_name(word(&table, i * 24))?;
                if name != f.name {
                    return None;
                }
                meta.tags.push(tag.and_then(|t| lookup(&t, "json")));
            }
        }
        let own = kind_size(t).and_then(|sz| self.has_marshaler(addr, &hdr, sz));
        // *T's method set includes T's: look there when the runtime has it.
        let ptr_to = u32::from_le_bytes(hdr[44..48].try_into().ok()?);
        let via_ptr = if ptr_to != 0 {
            let p = base.checked_add(ptr_to as u64)?;
            let ph = self.raw(p, TYPE_SIZE + 8)?;
            self.has_marshaler(p, &ph, TYPE_SIZE + 8)
        } else {
            None
        };
        meta.marshaler = own.unwrap_or(false) || via_ptr.unwrap_or(false);
        Some(meta)
    }

    fn raw(&self, addr: u64, n: u64) -> Option<Vec<u8>> {
        self.read(addr, n).ok()
    }

    /// `Some(true)` if the descriptor at `addr` (whose kind-specific
    /// struct is `size` bytes) lists MarshalJSON or MarshalText.
    fn has_marshaler(&self, addr: u64, hdr: &[u8], size: u64) -> Option<bool> {
        if hdr.get(20)? & TFLAG_UNCOMMON == 0 {
            return Some(false);
        }
        let base = self.types_base?;
        let u = self.raw(addr + size, 16)?;
        let mcount = u16::from_le_bytes([u[4], u[5]]) as u64;
        let moff = u32::from_le_bytes([u[8], u[9], u[10], u[11]]) as u64;
        if mcount > MAX_ITEMS {
            return None;
        }
        let methods = self.raw(addr + size + moff, mcount * 16)?;
        for i in 0..mcount as usize {
            let off = u32::from_le_bytes(methods[i * 16..i * 16 + 4].try_into().ok()?);
            let (name, _) = self.rt_name(base + off as u64)?;
            if name == "MarshalJSON" || name == "MarshalText" {
                return Some(true);
            }
        }
        Some(false)
    }

    /// A runtime `name`: (name, tag).
    fn rt_name(&self, addr: u64) -> Option<(String, Option<String>)> {
        let b = self.raw(addr, 3)?;
        let flags = b[0];
        let (len, n) = varint(&b[1..])?;
        if len > 1 << 16 {
            return None;
        }
        let all = self.raw(addr, 1 + n as u64 + len + 3)?;
        let start = 1 + n;
        let name = String::from_utf8_lossy(all.get(start..start + len as usize)?).into_owned();
        if flags & 2 == 0 {
            return Some((name, None));
        }
        let t = start + len as usize;
        let (tlen, tn) = varint(all.get(t..)?)?;
        if tlen > 1 << 16 {
            return None;
        }
        let tag = self.raw(addr + (t + tn) as u64, tlen)?;
        Some((name, Some(String::from_utf8_lossy(&tag).into_owned())))
    }
}

/// Bytes of the kind-specific descriptor before the uncommon type.
fn kind_size(t: &GoType) -> Option<u64> {
    Some(match t.kind {
        TypeKind::Struct { .. } => TYPE_SIZE + 32,
        TypeKind::Pointer { .. } | TypeKind::Slice { .. } => TYPE_SIZE + 8,
        TypeKind::Array { .. } => TYPE_SIZE + 24,
        TypeKind::Bool
        | TypeKind::Int
        | TypeKind::Uint
        | TypeKind::Float
        | TypeKind::Complex
        | TypeKind::String => TYPE_SIZE,
        _ => return None,
    })
}

fn varint(b: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, &c) in b.iter().enumerate().take(3) {
        v |= ((c & 0x7f) as u64) << (7 * i);
        if c & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// `reflect.StructTag.Get(key)`.
pub fn lookup(tag: &str, key: &str) -> Option<String> {
    let mut t = tag;
    loop {
        t = t.trim_start_matches(' ');
        if t.is_empty() {
            return None;
        }
        let i = t
            .find(|c: char| c <= ' ' || c == ':' || c == '"' || c == '\x7f')
            .unwrap_or(t.len());
        if i == 0 || !t[i..].starts_with(":\"") {
            return None;
        }
        let name = &t[..i];
        t = &t[i + 1..];
        // The quoted value, with backslash escapes.
        let b = t.as_bytes();
        let mut j = 1;
        while j < b.len() && b[j] != b'"' {
            if b[j] == b'\\' {
                j += 1;
            }
            j += 1;
        }
        if j >= b.len() {
            return None;
        }
        let quoted = &t[..=j];
        t = &t[j + 1..];
        if name == key {
            return serde_json::from_str::<String>(quoted).ok();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::lookup;

    #[test]
    fn struct_tags_as_reflect_reads_them() {
        let t = r#"json:"addr,omitempty" yaml:"a""#;
        assert_eq!(lookup(t, "json").as_deref(), Some("addr,omitempty"));
        assert_eq!(lookup(t, "yaml").as_deref(), Some("a"));
        assert_eq!(lookup(t, "xml"), None);
        assert_eq!(lookup(r#"json:"-""#, "json").as_deref(), Some("-"));
        assert_eq!(lookup("json:bad", "json"), None);
    }
}
