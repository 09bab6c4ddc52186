//! A value as Go's `encoding/json.Marshal` would encode it, or the error
//! Marshal would return (`json: unsupported type: complex128`, NaN, a
//! cycle), from the decoded tree alone.
//!
//! Rules kept: exported fields only, in order; embedded structs' fields
//! promoted (a shallower field hides a deeper one of the same name, two at
//! the same depth hide each other); `[]byte` as base64; nil slices, maps,
//! pointers and interfaces as `null`; map keys from strings and integers,
//! sorted; HTML-safe strings; `json:"..."` tags (name, `-`, `omitempty`,
//! `omitzero` from Go 1.24, `string`) as read from the runtime's type
//! descriptors (`rtype.rs`). A type with a `MarshalJSON`/`MarshalText`
//! method gets no JSON: gopeek cannot run the method.

use super::numfmt::{base64, json_float, json_string};
use super::tree::{Body, Cut, MapKeys, Value};

/// Why a value has no JSON encoding.
pub type JsonError = String;

/// The JSON text of `v`, or why there is none (unsupported by
/// encoding/json, or incomplete: cut by a limit or unreadable).
pub fn encode(v: &Value, go_minor: u32) -> Result<String, JsonError> {
    let mut s = String::new();
    enc(&mut s, v, go_minor)?;
    Ok(s)
}

fn unsupported(v: &Value) -> JsonError {
    format!("json: unsupported type: {}", v.ty)
}

fn enc(s: &mut String, v: &Value, minor: u32) -> Result<(), JsonError> {
    if v.json_marshaler {
        return Err(format!(
            "{} has a MarshalJSON or MarshalText method, which encoding/json would call and gopeek cannot run",
            v.ty
        ));
    }
    match v.cut {
        Some(Cut::Cycle) => {
            return Err(format!(
                "json: unsupported value: encountered a cycle via {}",
                v.ty
            ))
        }
        Some(c) => {
            return Err(format!(
                "value cut by {} (no JSON for a partial value)",
                c.label()
            ))
        }
        None => {}
    }
    match &v.body {
        Body::Bool(b) => s.push_str(if *b { "true" } else { "false" }),
        Body::Int(i) => s.push_str(&i.to_string()),
        Body::Uint(u) => s.push_str(&u.to_string()),
        Body::Float(f, bits) => match json_float(*f, *bits) {
            Some(t) => s.push_str(&t),
            None => {
                return Err(format!(
                    "json: unsupported value: {}",
                    super::numfmt::go_g(*f, *bits)
                ))
            }
        },
        Body::Complex(..) | Body::Chan { .. } | Body::Func { .. } | Body::UnsafePointer(_) => {
            return Err(unsupported(v))
        }
        Body::Str { bytes, .. } => s.push_str(&json_string(bytes, minor)),
        Body::Array { elems, .. } => array(s, elems, minor)?,
        Body::Slice {
            ptr, elems, bytes, ..
        } => {
            if *ptr == 0 {
                s.push_str("null");
            } else if *bytes {
                let raw: Vec<u8> = elems
                    .iter()
                    .map(|e| match e.body {
                        Body::Uint(u) => u as u8,
                        _ => 0,
                    })
                    .collect();
                s.push('"');
                s.push_str(&base64(&raw));
                s.push('"');
            } else {
                array(s, elems, minor)?
            }
        }
        Body::Struct(_) => {
            let mut fields = Vec::new();
            collect(v, 0, &mut Vec::new(), &mut fields);
            let fields = dominant(fields);
            s.push('{');
            let mut first = true;
            for c in &fields {
                if (c.omitempty && empty(c.value)) || (c.omitzero && minor >= 24 && zero(c.value)) {
                    continue;
                }
                if !first {
                    s.push(',');
                }
                first = false;
                s.push_str(&json_string(c.name.as_bytes(), minor));
                s.push(':');
                if c.quoted && quotable(c.value) {
                    let mut inner = String::new();
                    enc(&mut inner, c.value, minor)?;
                    match &c.value.body {
                        Body::Str { .. } => s.push_str(&json_string(inner.as_bytes(), minor)),
                        _ => {
                            s.push('"');
                            s.push_str(&inner);
                            s.push('"');
                        }
                    }
                } else {
                    enc(s, c.value, minor)?;
                }
            }
            s.push('}');
        }
        Body::Pointer { ptr, target } => match (ptr, target) {
            (0, _) => s.push_str("null"),
            (_, Some(t)) => enc(s, t, minor)?,
            (_, None) => return Err("pointer not followed".into()),
        },
        Body::Map {
            ptr, entries, keys, ..
        } => {
            // Go 1.27's encoding/json is v2's, which also takes float and
            // bool keys.
            let ok = match keys {
                MapKeys::Str | MapKeys::Int => true,
                MapKeys::Float | MapKeys::Bool => minor >= 27,
                MapKeys::Other => false,
            };
            if !ok {
                return Err(unsupported(v));
            }
            if *ptr == 0 {
                s.push_str("null");
                return Ok(());
            }
            let mut kv = Vec::with_capacity(entries.len());
            for (k, e) in entries {
                let key = match &k.body {
                    Body::Str { bytes, .. } if k.cut.is_none() => {
                        String::from_utf8_lossy(bytes).into_owned()
                    }
                    Body::Int(i) => i.to_string(),
                    Body::Uint(u) => u.to_string(),
                    Body::Bool(b) => b.to_string(),
                    Body::Float(f, bits) => match json_float(*f, *bits) {
                        Some(t) => t,
                        None => {
                            return Err(format!(
                                "json: unsupported value: {}",
                                super::numfmt::go_g(*f, *bits)
                            ))
                        }
                    },
                    _ => return Err(format!("map key of {} not readable", k.ty)),
                };
                kv.push((key, e));
            }
            kv.sort_by(|a, b| a.0.cmp(&b.0));
            s.push('{');
            for (i, (k, e)) in kv.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                s.push_str(&json_string(k.as_bytes(), minor));
                s.push(':');
                enc(s, e, minor)?;
            }
            s.push('}');
        }
        Body::Interface(d) => match d {
            None => s.push_str("null"),
            Some(d) => enc(s, d, minor)?,
        },
        Body::Error(e) => return Err(e.clone()),
    }
    Ok(())
}

fn array(s: &mut String, elems: &[Value], minor: u32) -> Result<(), JsonError> {
    s.push('[');
    for (i, e) in elems.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        enc(s, e, minor)?;
    }
    s.push(']');
    Ok(())
}

/// A field encoding/json would consider, embedded structs flattened.
#[derive(Clone)]
struct Candidate<'v> {
    name: String,
    depth: usize,
    path: Vec<usize>,
    tagged: bool,
    omitempty: bool,
    omitzero: bool,
    quoted: bool,
    value: &'v Value,
}

fn exported(name: &str) -> bool {
    name.chars().next().is_some_and(char::is_uppercase)
}

fn collect<'v>(v: &'v Value, depth: usize, path: &mut Vec<usize>, out: &mut Vec<Candidate<'v>>) {
    let Body::Struct(fields) = &v.body else {
        return;
    };
    for (i, f) in fields.iter().enumerate() {
        let tag = f.json_tag.as_deref().unwrap_or("");
        if tag == "-" {
            continue;
        }
        let mut parts = tag.split(',');
        let tag_name = parts.next().unwrap_or("");
        let opts: Vec<&str> = parts.collect();
        path.push(i);
        let inner = match &f.value.body {
            Body::Pointer {
                target: Some(t), ..
            } => Some(&**t),
            Body::Pointer { target: None, .. } => None,
            _ => Some(&f.value),
        };
        let is_struct = inner.is_some_and(|t| matches!(t.body, Body::Struct(_)));
        if f.embedded && tag_name.is_empty() && is_struct {
            // Embedded struct (or pointer to one): its fields are promoted.
            if let Some(t) = inner {
                collect(t, depth + 1, path, out);
            }
        } else if exported(&f.name) {
            out.push(Candidate {
                name: if tag_name.is_empty() {
                    f.name.clone()
                } else {
                    tag_name.to_string()
                },
                depth,
                path: path.clone(),
                tagged: !tag_name.is_empty(),
                omitempty: opts.contains(&"omitempty"),
                omitzero: opts.contains(&"omitzero"),
                quoted: opts.contains(&"string"),
                value: &f.value,
            });
        }
        path.pop();
    }
}

/// encoding/json's dominance: per name, the shallowest fields compete; a
/// single tagged one among them wins, else a single one; else none. Output
/// in index order.
fn dominant(mut c: Vec<Candidate<'_>>) -> Vec<Candidate<'_>> {
    c.sort_by(|a, b| a.name.cmp(&b.name).then(a.depth.cmp(&b.depth)));
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let mut j = i + 1;
        while j < c.len() && c[j].name == c[i].name {
            j += 1;
        }
        let top: Vec<&Candidate<'_>> = c[i..j].iter().filter(|x| x.depth == c[i].depth).collect();
        let tagged: Vec<&&Candidate<'_>> = top.iter().filter(|x| x.tagged).collect();
        if tagged.len() == 1 {
            out.push((*tagged[0]).clone());
        } else if top.len() == 1 {
            out.push(top[0].clone());
        }
        i = j;
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// encoding/json's `isEmptyValue` (omitempty).
fn empty(v: &Value) -> bool {
    match &v.body {
        Body::Bool(b) => !b,
        Body::Int(i) => *i == 0,
        Body::Uint(u) => *u == 0,
        Body::Float(f, _) => *f == 0.0,
        Body::Str { len, .. } => *len == 0,
        Body::Array { len, .. } => *len == 0,
        Body::Slice { len, .. } | Body::Map { len, .. } => *len == 0,
        Body::Pointer { ptr, .. } => *ptr == 0,
        Body::Interface(d) => d.is_none(),
        _ => false,
    }
}

/// The zero value (omitzero, Go 1.24+).
fn zero(v: &Value) -> bool {
    match &v.body {
        Body::Struct(f) => f.iter().all(|f| zero(&f.value)),
        Body::Array { elems, .. } => elems.iter().all(zero),
        Body::Slice { ptr, .. } | Body::Map { ptr, .. } | Body::Chan { ptr, .. } => *ptr == 0,
        Body::Complex(r, i, _) => *r == 0.0 && *i == 0.0,
        Body::Func { pc, .. } => *pc == 0,
        Body::UnsafePointer(p) => *p == 0,
        _ => empty(v),
    }
}

/// The `,string` option applies to strings, numbers and bools.
fn quotable(v: &Value) -> bool {
    matches!(
        v.body,
        Body::Str { .. } | Body::Int(_) | Body::Uint(_) | Body::Float(..) | Body::Bool(_)
    )
}
