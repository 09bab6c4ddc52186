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
//! - `locals.rs` — a frame's arguments and locals: found by PC, located
//!   by their DWARF location (lists) at that PC; `overlay.rs`, variables
//!   assembled from pieces; `regs.rs`, the registers of a running
//!   goroutine's innermost frame.
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
pub mod locals;
mod maps;
pub mod numfmt;
mod order;
mod overlay;
pub mod read;
pub mod regs;
pub mod rtype;
pub mod stable;
pub mod tree;
pub mod types;

pub use dwarf::DwarfInfo;
pub use read::{Decoder, Limits};
pub use tree::Value;
pub use types::{GoType, TypeId, TypeKind};

use crate::memory::Memory;
use std::collections::HashMap;

/// One expression's outcome.
#[derive(Debug, Clone)]
pub struct Printed {
    /// The expression as given.
    pub expr: String,
    /// The value, when it could be evaluated.
    pub value: Option<Value>,
    /// Why not.
    pub error: Option<String>,
    /// The error is that the variable is optimized out at the frame's PC
    /// (a local Go keeps only in registers there, or nowhere).
    pub optimized_out: bool,
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

/// A frame's variables by name, each where it is (an address, maybe in
/// the overlay of assembled pieces) or why it cannot be read.
pub type FrameSlots = HashMap<String, Result<(TypeId, u64), String>>;

/// The slots of `vars`, pieces assembled into `overlay` (read from it
/// now). A name given twice (a shadowed variable) resolves to the last,
/// innermost one.
pub fn frame_slots<M: Memory + ?Sized>(
    dwarf: &DwarfInfo<'_>,
    vars: &locals::FrameVars,
    overlay: &mut locals::Overlay<'_, M>,
) -> FrameSlots {
    let mut out = FrameSlots::new();
    for v in &vars.vars {
        let r = dwarf
            .get(v.ty)
            .map_err(|e| e.to_string())
            .and_then(|t| locals::slot(v, t.size, &*overlay))
            .map(|s| match s {
                locals::Slot::At(a) => (v.ty, a),
                locals::Slot::Bytes(b) => (v.ty, overlay.place(b)),
            });
        out.insert(v.name.clone(), r);
    }
    out
}

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
    evaluate_in(p, mem, limits, exprs, double_read, &FrameSlots::new())
}

/// The name an expression starts from (`req` of `req.URL[0]`).
fn root_name(e: &expr::Expr) -> &str {
    use expr::Expr::*;
    match e {
        Name(n) => n.split('.').next().unwrap_or(n),
        Field(x, _) | Index(x, _) | Deref(x) | Len(x) | Cap(x) => root_name(x),
    }
}

/// [`evaluate`] in a frame: names resolve to `frame`'s variables first,
/// then to globals.
pub fn evaluate_in<M: Memory + ?Sized>(
    p: &Program<'_, '_>,
    mem: &M,
    limits: Limits,
    exprs: &[String],
    double_read: bool,
    frame: &FrameSlots,
) -> Vec<Printed> {
    let local = |n: &str| match frame.get(n) {
        Some(Ok((ty, addr))) => Some(expr::Place::Mem {
            ty: *ty,
            addr: *addr,
        }),
        _ => None,
    };
    let mut left = limits.max_bytes;
    exprs
        .iter()
        .map(|src| {
            let mut out = Printed {
                expr: src.clone(),
                value: None,
                error: None,
                optimized_out: false,
            };
            let e = match expr::parse(src) {
                Ok(e) => e,
                Err(err) => {
                    out.error = Some(format!("cannot parse: {err}"));
                    return out;
                }
            };
            if let Some(Err(why)) = frame.get(root_name(&e)) {
                out.optimized_out = why.starts_with("optimized out");
                out.error = Some(why.clone());
                return out;
            }
            let lim = Limits {
                max_bytes: left,
                ..limits
            };
            for attempt in 0..READ_ATTEMPTS {
                let rec = stable::Recording::new(mem);
                let d =
                    Decoder::new(p.dwarf, &rec, lim, p.types_base, p.func_name).with_bias(p.bias);
                let r = d.place(&e, p.bias, &local).map(|pl| match pl {
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
