//! Live values: Go variables read out of a target's memory with the types
//! its DWARF describes, printed as Go's `%#v` and `encoding/json` would.
//!
//! - `dwarf.rs` — the index of the executable's DWARF (globals, types by
//!   name and by runtime type descriptor) and lazy type decoding, over
//!   `layout`'s shared [`crate::layout::Sections`].
//! - `types.rs` — [`GoType`], and Go's (reflect's) spelling of type names.
//! - `read.rs`, `maps.rs` — the decoder: bounded by [`Limits`], errors per
//!   node, both map forms.
//! - `expr.rs` — the expressions `gopeek print` takes.
//! - `tree.rs` — the decoded [`Value`] and its typed JSON tree;
//!   `gofmt.rs` (`%#v`), `gojson.rs` (encoding/json), `numfmt.rs` (Go's
//!   float and string spellings), `order.rs` (fmtsort's key order).
//! - `rtype.rs` — struct tags and Marshal methods from the runtime's type
//!   descriptors (what encoding/json sees and DWARF does not say).
//! - `stable.rs` — reads of a running target kept only when a second read
//!   agrees.
//!
//! Generic over [`crate::memory::Memory`], so the fuzzer and unit tests run
//! it on `RegionMemory`, and `snapshot::values` on a live process.

pub mod dwarf;
pub mod expr;
pub mod gofmt;
pub mod gojson;
mod iface;
mod maps;
pub mod numfmt;
mod order;
pub mod read;
pub mod rtype;
pub mod stable;
pub mod tree;
pub mod types;

pub use dwarf::DwarfInfo;
pub use read::{Decoder, Limits};
pub use tree::Value;
pub use types::{GoType, TypeId, TypeKind};

use crate::memory::Memory;

/// One expression's outcome.
#[derive(Debug, Clone)]
pub struct Printed {
    /// The expression as given.
    pub expr: String,
    /// The value, when it could be evaluated.
    pub value: Option<Value>,
    /// Why not.
    pub error: Option<String>,
}

/// What evaluation needs besides memory: the DWARF, where the executable
/// is loaded, where the runtime's type descriptors start, and function
/// names for func values.
pub struct Program<'a, 'b> {
    /// The executable's DWARF.
    pub dwarf: &'a DwarfInfo<'b>,
    /// Runtime minus link address (PIE).
    pub bias: u64,
    /// `moduledata.types` in the target.
    pub types_base: Option<u64>,
    /// A code address in the target to its function's name.
    pub func_name: &'a dyn Fn(u64) -> Option<String>,
}

/// How many times a value whose two reads disagreed is read again.
pub const READ_ATTEMPTS: usize = 4;

/// Evaluates each expression. With `double_read` (the target runs), each
/// value is decoded, its bytes read again, and kept only when both agree
/// (up to [`READ_ATTEMPTS`] decodings). The byte budget of `limits` is for
/// all expressions together.
pub fn evaluate<M: Memory + ?Sized>(
    p: &Program<'_, '_>,
    mem: &M,
    limits: Limits,
    exprs: &[String],
    double_read: bool,
) -> Vec<Printed> {
    let mut left = limits.max_bytes;
    exprs
        .iter()
        .map(|src| {
            let mut out = Printed {
                expr: src.clone(),
                value: None,
                error: None,
            };
            let e = match expr::parse(src) {
                Ok(e) => e,
                Err(err) => {
                    out.error = Some(format!("cannot parse: {err}"));
                    return out;
                }
            };
            let lim = Limits {
                max_bytes: left,
                ..limits
            };
            for attempt in 0..READ_ATTEMPTS {
                let rec = stable::Recording::new(mem);
                let d =
                    Decoder::new(p.dwarf, &rec, lim, p.types_base, p.func_name).with_bias(p.bias);
                let r = d.place(&e, p.bias, &|_| None).map(|pl| match pl {
                    expr::Place::Mem { ty, addr } => d.load(ty, addr, 0),
                    expr::Place::Val(v) => v,
                });
                let same = !double_read || rec.still_equal().unwrap_or(false);
                if same {
                    left = left.saturating_sub(d.bytes_used());
                    match r {
                        Ok(v) => out.value = Some(v),
                        Err(err) => out.error = Some(err),
                    }
                    return out;
                }
                if attempt + 1 == READ_ATTEMPTS {
                    left = left.saturating_sub(d.bytes_used());
                }
            }
            out.error = Some(format!(
                "the value changed between reads {READ_ATTEMPTS} times; try --consistent"
            ));
            out
        })
        .collect()
}
