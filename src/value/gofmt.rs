//! A value as Go's `fmt.Sprintf("%#v", v)` prints it, rule for rule
//! (fmt's `printValue` with its `depth`): unsigned integers in hex, a
//! pointer to a struct, array, slice or map shown as `&T{...}` only at the
//! top, deeper pointers, channels and funcs as `(T)(0xADDR)`, nil as
//! `T(nil)`, an interface by its dynamic value, map keys sorted
//! (`internal/fmtsort`), top-level `[]uint8` named `[]byte`.
//!
//! Where gopeek's limits cut a value, the text says so in Go-comment form
//! (`/* 99998 more */`, `/* max-depth */`), which Go's own `%#v` never
//! prints; an unreadable node is `/* error: ... */`.

use super::numfmt::{go_complex, go_g, go_quote};
use super::tree::{Body, Cut, Value};

/// `%#v` of a top-level value.
pub fn go_syntax(v: &Value) -> String {
    let mut s = String::new();
    write(&mut s, v, 0);
    s
}

fn note(s: &mut String, c: Option<Cut>, shown: usize, total: u64) {
    match c {
        Some(Cut::Len) | Some(Cut::Budget) if total > shown as u64 => {
            let sep = if shown > 0 { ", " } else { "" };
            s.push_str(&format!(
                "{sep}/* {} more, {} */",
                total - shown as u64,
                c.map_or("", |c| c.label())
            ));
        }
        Some(c) => s.push_str(&format!("/* {} */", c.label())),
        None => {}
    }
}

fn hex_or_nil(p: u64) -> String {
    if p == 0 {
        "nil".into()
    } else {
        format!("{p:#x}")
    }
}

fn write(s: &mut String, v: &Value, depth: u32) {
    match &v.body {
        Body::Bool(b) => s.push_str(if *b { "true" } else { "false" }),
        Body::Int(i) => s.push_str(&i.to_string()),
        Body::Uint(u) => s.push_str(&format!("{u:#x}")),
        Body::Float(f, bits) => s.push_str(&go_g(*f, *bits)),
        Body::Complex(re, im, bits) => s.push_str(&go_complex(*re, *im, *bits)),
        Body::Str { bytes, len } => {
            s.push_str(&go_quote(bytes));
            if v.cut.is_some() {
                s.push_str(&format!("/* {} of {} bytes */", bytes.len(), len));
            }
        }
        Body::Array { len: _, elems } => {
            s.push_str(&v.ty);
            s.push('{');
            list(s, elems, depth);
            if let Body::Array { len, .. } = &v.body {
                note(s, v.cut, elems.len(), *len);
            }
            s.push('}');
        }
        Body::Slice {
            ptr,
            len,
            elems,
            bytes,
            ..
        } => {
            let ty = if depth == 0 && *bytes && v.ty == "[]uint8" {
                "[]byte"
            } else {
                &v.ty
            };
            s.push_str(ty);
            if *ptr == 0 {
                s.push_str("(nil)");
                return;
            }
            s.push('{');
            list(s, elems, depth);
            note(s, v.cut, elems.len(), *len);
            s.push('}');
        }
        Body::Struct(fields) => {
            s.push_str(&v.ty);
            s.push('{');
            for (i, f) in fields.iter().enumerate() {
                if i > 0 {
                    s.push_str(", ");
                }
                s.push_str(&f.name);
                s.push(':');
                write(s, &f.value, depth + 1);
            }
            if v.cut.is_some() {
                note(s, v.cut, 0, 0);
            }
            s.push('}');
        }
        Body::Pointer { ptr, target } => {
            if depth == 0 && *ptr != 0 {
                if let Some(t) = target {
                    if matches!(
                        t.body,
                        Body::Struct(_)
                            | Body::Array { .. }
                            | Body::Slice { .. }
                            | Body::Map { .. }
                    ) {
                        s.push('&');
                        write(s, t, depth + 1);
                        return;
                    }
                }
            }
            s.push_str(&format!("({})({})", v.ty, hex_or_nil(*ptr)));
        }
        Body::UnsafePointer(p) => s.push_str(&format!("({})({})", v.ty, hex_or_nil(*p))),
        Body::Chan { ptr, .. } => s.push_str(&format!("({})({})", v.ty, hex_or_nil(*ptr))),
        Body::Func { pc, .. } => s.push_str(&format!("({})({})", v.ty, hex_or_nil(*pc))),
        Body::Map {
            ptr, len, entries, ..
        } => {
            s.push_str(&v.ty);
            if *ptr == 0 {
                s.push_str("(nil)");
                return;
            }
            s.push('{');
            for (i, (k, e)) in entries.iter().enumerate() {
                if i > 0 {
                    s.push_str(", ");
                }
                write(s, k, depth + 1);
                s.push(':');
                write(s, e, depth + 1);
            }
            note(s, v.cut, entries.len(), *len);
            s.push('}');
        }
        Body::Interface(d) => match d {
            None if depth == 0 && v.cut.is_none() => s.push_str("<nil>"),
            None if v.cut.is_some() => {
                s.push_str(&v.ty);
                note(s, v.cut, 0, 0);
            }
            None => {
                s.push_str(&v.ty);
                s.push_str("(nil)");
            }
            // At the top fmt is handed the dynamic value itself.
            Some(d) if depth == 0 => write(s, d, 0),
            Some(d) => write(s, d, depth + 1),
        },
        Body::Error(e) => {
            if v.cut == Some(Cut::Budget) {
                s.push_str("/* max-bytes */");
            } else {
                s.push_str(&format!("/* error: {e} */"));
            }
        }
    }
}

fn list(s: &mut String, elems: &[Value], depth: u32) {
    for (i, e) in elems.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        write(s, e, depth + 1);
    }
}
