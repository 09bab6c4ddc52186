//! A decoded value as plain data: what the text (`%#v`) and JSON writers
//! print. Every node carries its Go type name (as reflect writes it) and,
//! where the limits cut it, why.

use serde_json::{json, Map, Value as Json};

/// One decoded value.
#[derive(Debug, Clone)]
pub struct Value {
    /// Go's name for its type (`main.Config`, `[]string`, `*http.Client`).
    pub ty: String,
    /// What was read.
    pub body: Body,
    /// Set where a limit stopped the decoder inside this node (fewer
    /// elements or string bytes than there are, a pointer not followed).
    pub cut: Option<Cut>,
    /// Its type (or pointer type) has `MarshalJSON`/`MarshalText`, which
    /// encoding/json would call (so gopeek gives no `json`).
    pub json_marshaler: bool,
}

/// Why a value is incomplete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// `--max-len`: fewer elements (or string bytes) than the value has.
    Len,
    /// `--max-depth`: not followed deeper.
    Depth,
    /// The byte budget (`--max-bytes`) ran out.
    Budget,
    /// A pointer back to a value already being printed.
    Cycle,
}

impl Cut {
    /// The words used in the text and the JSON tree.
    pub fn label(self) -> &'static str {
        match self {
            Cut::Len => "max-len",
            Cut::Depth => "max-depth",
            Cut::Budget => "max-bytes",
            Cut::Cycle => "cycle",
        }
    }
}

/// What a value holds, by kind.
#[derive(Debug, Clone)]
pub enum Body {
    /// `bool`.
    Bool(bool),
    /// Signed integers.
    Int(i64),
    /// Unsigned integers; `uintptr` too.
    Uint(u64),
    /// A float and its size in bits (32 or 64).
    Float(f64, u8),
    /// Real and imaginary parts and the size of each in bits.
    Complex(f64, f64, u8),
    /// String bytes read (maybe fewer than `len`) and the length.
    Str {
        /// The bytes read.
        bytes: Vec<u8>,
        /// The string's length.
        len: u64,
    },
    /// An array: its length and the elements read.
    Array {
        /// The type's length.
        len: u64,
        /// Elements read.
        elems: Vec<Value>,
    },
    /// A slice header and the elements read.
    Slice {
        /// Data pointer (0: nil).
        ptr: u64,
        /// `len`.
        len: u64,
        /// `cap`.
        cap: u64,
        /// Elements read.
        elems: Vec<Value>,
        /// Elements are bytes (`[]byte` prints and encodes as bytes).
        bytes: bool,
    },
    /// A struct's fields in order.
    Struct(Vec<FieldValue>),
    /// A pointer and, when followed, what it points at.
    Pointer {
        /// The address (0: nil).
        ptr: u64,
        /// The pointee, if it was read.
        target: Option<Box<Value>>,
    },
    /// `unsafe.Pointer`.
    UnsafePointer(u64),
    /// A map: the header address, `len`, and the entries read.
    Map {
        /// The map header (0: nil).
        ptr: u64,
        /// `len(m)`.
        len: u64,
        /// Entries read, in the map's own order.
        entries: Vec<(Value, Value)>,
        /// What the key type is, for encoding/json's rules on object keys.
        keys: MapKeys,
    },
    /// A channel.
    Chan {
        /// `hchan` address (0: nil).
        ptr: u64,
        /// Buffered elements.
        len: u64,
        /// Buffer size.
        cap: u64,
        /// `close` was called.
        closed: bool,
        /// Go's name of the element type.
        elem: String,
        /// The buffered elements in receive order (from `recvx`), up to
        /// `--max-len`.
        elems: Vec<Value>,
    },
    /// A func value.
    Func {
        /// The code address (0: nil).
        pc: u64,
        /// The function's name (from the pclntab), if found.
        name: Option<String>,
    },
    /// An interface: nil, or its dynamic value.
    Interface(Option<Box<Value>>),
    /// The value could not be read; the message says why.
    Error(String),
}

/// The kind of a map's key type, as encoding/json decides whether it can
/// be an object key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapKeys {
    /// Strings.
    Str,
    /// Integers of any size, signed or not.
    Int,
    /// Floats (object keys from Go 1.27, whose encoding/json is v2's).
    Float,
    /// Booleans (likewise).
    Bool,
    /// Anything else: never an object key.
    Other,
}

/// One field of a struct value.
#[derive(Debug, Clone)]
pub struct FieldValue {
    /// The field name (an embedded field's is its type's name).
    pub name: String,
    /// Embedded (promoted fields show through in JSON).
    pub embedded: bool,
    /// Its `json:"..."` struct tag, from the runtime type descriptor.
    pub json_tag: Option<String>,
    /// Its value.
    pub value: Value,
}

impl Value {
    /// A value of type `ty` holding `body`.
    pub fn new(ty: impl Into<String>, body: Body) -> Self {
        Value {
            ty: ty.into(),
            body,
            cut: None,
            json_marshaler: false,
        }
    }

    /// A value that could not be read.
    pub fn error(ty: impl Into<String>, msg: impl Into<String>) -> Self {
        Value::new(ty, Body::Error(msg.into()))
    }

    /// `true` if this node or any below it was cut or failed.
    pub fn incomplete(&self) -> bool {
        if self.cut.is_some() {
            return true;
        }
        match &self.body {
            Body::Error(_) => true,
            Body::Array { elems, .. } | Body::Slice { elems, .. } => {
                elems.iter().any(Value::incomplete)
            }
            Body::Struct(f) => f.iter().any(|f| f.value.incomplete()),
            Body::Pointer { target, .. } => target.as_ref().is_some_and(|t| t.incomplete()),
            Body::Interface(d) => d.as_ref().is_some_and(|d| d.incomplete()),
            Body::Map { entries, .. } => entries
                .iter()
                .any(|(k, v)| k.incomplete() || v.incomplete()),
            _ => false,
        }
    }

    /// The typed tree of `--format json` (`value` of schema
    /// `gopeek.print/1`): `{"type", "kind", ...}` with the kind's fields;
    /// addresses as `0x` strings; `"cut"` where a limit stopped.
    pub fn tree(&self) -> Json {
        let mut m = Map::new();
        m.insert("type".into(), json!(self.ty));
        let hex = |a: u64| json!(format!("{a:#x}"));
        let list = |v: &[Value]| Json::Array(v.iter().map(Value::tree).collect());
        let kind = match &self.body {
            Body::Bool(b) => {
                m.insert("value".into(), json!(b));
                "bool"
            }
            Body::Int(i) => {
                m.insert("value".into(), json!(i));
                "int"
            }
            Body::Uint(u) => {
                m.insert("value".into(), json!(u));
                "uint"
            }
            Body::Float(f, _) => {
                m.insert("value".into(), float_json(*f));
                "float"
            }
            Body::Complex(re, im, _) => {
                m.insert("real".into(), float_json(*re));
                m.insert("imag".into(), float_json(*im));
                "complex"
            }
            Body::Str { bytes, len } => {
                m.insert("value".into(), json!(String::from_utf8_lossy(bytes)));
                m.insert("len".into(), json!(len));
                "string"
            }
            Body::Array { len, elems } => {
                m.insert("len".into(), json!(len));
                m.insert("elems".into(), list(elems));
                "array"
            }
            Body::Slice {
                ptr,
                len,
                cap,
                elems,
                ..
            } => {
                if *ptr == 0 {
                    m.insert("nil".into(), json!(true));
                }
                m.insert("len".into(), json!(len));
                m.insert("cap".into(), json!(cap));
                m.insert("elems".into(), list(elems));
                "slice"
            }
            Body::Struct(fields) => {
                let f: Vec<Json> = fields
                    .iter()
                    .map(|f| {
                        let mut o = Map::new();
                        o.insert("name".into(), json!(f.name));
                        if f.embedded {
                            o.insert("embedded".into(), json!(true));
                        }
                        o.insert("value".into(), f.value.tree());
                        Json::Object(o)
                    })
                    .collect();
                m.insert("fields".into(), Json::Array(f));
                "struct"
            }
            Body::Pointer { ptr, target } => {
                if *ptr == 0 {
                    m.insert("nil".into(), json!(true));
                } else {
                    m.insert("addr".into(), hex(*ptr));
                }
                if let Some(t) = target {
                    m.insert("target".into(), t.tree());
                }
                "ptr"
            }
            Body::UnsafePointer(p) => {
                m.insert("addr".into(), hex(*p));
                "unsafe.Pointer"
            }
            Body::Map {
                ptr, len, entries, ..
            } => {
                if *ptr == 0 {
                    m.insert("nil".into(), json!(true));
                }
                m.insert("len".into(), json!(len));
                let e: Vec<Json> = entries
                    .iter()
                    .map(|(k, v)| json!({"key": k.tree(), "value": v.tree()}))
                    .collect();
                m.insert("entries".into(), Json::Array(e));
                "map"
            }
            Body::Chan {
                ptr,
                len,
                cap,
                closed,
                elem,
                elems,
            } => {
                if *ptr == 0 {
                    m.insert("nil".into(), json!(true));
                } else {
                    m.insert("addr".into(), hex(*ptr));
                }
                m.insert("len".into(), json!(len));
                m.insert("cap".into(), json!(cap));
                m.insert("closed".into(), json!(closed));
                m.insert("elem".into(), json!(elem));
                if !elems.is_empty() {
                    let e: Vec<Json> = elems.iter().map(Value::tree).collect();
                    m.insert("elems".into(), Json::Array(e));
                }
                "chan"
            }
            Body::Func { pc, name } => {
                if *pc == 0 {
                    m.insert("nil".into(), json!(true));
                } else {
                    m.insert("pc".into(), hex(*pc));
                }
                if let Some(n) = name {
                    m.insert("func".into(), json!(n));
                }
                "func"
            }
            Body::Interface(d) => {
                match d {
                    None => {
                        m.insert("nil".into(), json!(true));
                    }
                    Some(d) => {
                        m.insert("dynamic".into(), d.tree());
                    }
                }
                "interface"
            }
            Body::Error(e) => {
                m.insert("error".into(), json!(e));
                "error"
            }
        };
        m.insert("kind".into(), json!(kind));
        if let Some(c) = self.cut {
            m.insert("cut".into(), json!(c.label()));
        }
        Json::Object(m)
    }
}

/// A float in the typed tree: a number, or `"NaN"`/`"+Inf"`/`"-Inf"`,
/// which JSON cannot hold.
fn float_json(f: f64) -> Json {
    if f.is_nan() {
        json!("NaN")
    } else if f.is_infinite() {
        json!(if f > 0.0 { "+Inf" } else { "-Inf" })
    } else {
        json!(f)
    }
}
