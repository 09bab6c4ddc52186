//! The expressions `gopeek print` takes: a global by its Go name
//! (`main.cfg`, `net/http.DefaultClient`; a bare `cfg` means `main.cfg`),
//! then any of `.Field` (through pointers, promoted fields included),
//! `[N]` (arrays, slices, strings), `["key"]`/`[N]` on maps, `*x`,
//! `len(x)` and `cap(x)`.

use super::read::{word, Decoder, ReadFail};
use super::tree::{Body, Value};
use super::types::{TypeId, TypeKind};
use crate::memory::Memory;

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A dotted name: a global, maybe followed by field names.
    Name(String),
    /// `x.F`.
    Field(Box<Expr>, String),
    /// `x[i]`.
    Index(Box<Expr>, Key),
    /// `*x`.
    Deref(Box<Expr>),
    /// `len(x)`.
    Len(Box<Expr>),
    /// `cap(x)`.
    Cap(Box<Expr>),
}

/// An index: a number or a quoted string (map keys).
#[derive(Debug, Clone, PartialEq)]
pub enum Key {
    /// `[3]`, `[-1]` (map keys only).
    Int(i128),
    /// `["k"]`.
    Str(String),
}

/// Longest expression accepted.
const MAX_EXPR: usize = 4096;
/// Deepest nesting accepted.
const MAX_NEST: usize = 64;

/// Parses one expression.
pub fn parse(s: &str) -> Result<Expr, String> {
    if s.len() > MAX_EXPR {
        return Err(format!("expression longer than {MAX_EXPR} bytes"));
    }
    let mut p = Parser {
        s: s.as_bytes(),
        i: 0,
    };
    let e = p.unary(0)?;
    p.ws();
    if p.i != p.s.len() {
        return Err(format!("unexpected {:?} at byte {}", &s[p.i..], p.i));
    }
    Ok(e)
}

struct Parser<'s> {
    s: &'s [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(|c| c.is_ascii_whitespace()) {
            self.i += 1;
        }
    }

    fn eat(&mut self, t: &str) -> bool {
        self.ws();
        if self.s[self.i..].starts_with(t.as_bytes()) {
            self.i += t.len();
            true
        } else {
            false
        }
    }

    fn unary(&mut self, n: usize) -> Result<Expr, String> {
        if n > MAX_NEST {
            return Err("expression nested too deeply".into());
        }
        if self.eat("*") {
            return Ok(Expr::Deref(Box::new(self.unary(n + 1)?)));
        }
        for (f, mk) in [
            ("len(", Expr::Len as fn(Box<Expr>) -> Expr),
            ("cap(", Expr::Cap),
        ] {
            if self.eat(f) {
                let e = self.unary(n + 1)?;
                if !self.eat(")") {
                    return Err(format!("missing ) after {f}"));
                }
                return self.postfix(mk(Box::new(e)), n);
            }
        }
        let e = if self.eat("(") {
            let e = self.unary(n + 1)?;
            if !self.eat(")") {
                return Err("missing )".into());
            }
            e
        } else {
            Expr::Name(self.name()?)
        };
        self.postfix(e, n)
    }

    fn name(&mut self) -> Result<String, String> {
        self.ws();
        let start = self.i;
        while let Some(&c) = self.s.get(self.i) {
            if c.is_ascii_alphanumeric()
                || matches!(c, b'_' | b'.' | b'/' | b'-' | b'~')
                || c >= 0x80
            {
                self.i += 1;
            } else {
                break;
            }
        }
        if start == self.i {
            return Err(format!("expected a name at byte {start}"));
        }
        let n = std::str::from_utf8(&self.s[start..self.i]).map_err(|e| e.to_string())?;
        Ok(n.trim_end_matches('.').to_string())
    }

    fn postfix(&mut self, mut e: Expr, n: usize) -> Result<Expr, String> {
        for _ in 0..MAX_NEST * 4 {
            if self.eat("[") {
                self.ws();
                let k = if self.s.get(self.i) == Some(&b'"') {
                    Key::Str(self.quoted()?)
                } else {
                    let start = self.i;
                    while self
                        .s
                        .get(self.i)
                        .is_some_and(|c| c.is_ascii_digit() || *c == b'-')
                    {
                        self.i += 1;
                    }
                    let t = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("");
                    Key::Int(t.parse().map_err(|_| format!("bad index {t:?}"))?)
                };
                if !self.eat("]") {
                    return Err("missing ]".into());
                }
                e = Expr::Index(Box::new(e), k);
            } else if self.eat(".") {
                e = Expr::Field(Box::new(e), self.name()?);
            } else {
                return Ok(e);
            }
        }
        let _ = n;
        Err("expression too long".into())
    }

    fn quoted(&mut self) -> Result<String, String> {
        self.i += 1;
        let mut out = Vec::new();
        while let Some(&c) = self.s.get(self.i) {
            self.i += 1;
            match c {
                b'"' => return String::from_utf8(out).map_err(|e| e.to_string()),
                b'\\' => {
                    let Some(&d) = self.s.get(self.i) else { break };
                    self.i += 1;
                    out.push(match d {
                        b'n' => b'\n',
                        b't' => b'\t',
                        d => d,
                    });
                }
                c => out.push(c),
            }
        }
        Err("unterminated string".into())
    }
}

/// Where an expression's value is.
pub enum Place {
    /// In memory: a value of type `ty` at `addr`.
    Mem {
        /// Its type.
        ty: TypeId,
        /// Its address.
        addr: u64,
    },
    /// Already decoded (`len(x)`, a map element).
    Val(Value),
}

impl<M: Memory + ?Sized> Decoder<'_, '_, M> {
    /// Evaluates `e` with globals from the DWARF, `bias` added to their
    /// link addresses; `local` resolves names first (a frame's variables).
    pub fn place(
        &self,
        e: &Expr,
        bias: u64,
        local: &dyn Fn(&str) -> Option<Place>,
    ) -> Result<Place, String> {
        match e {
            Expr::Name(n) => self.name(n, bias, local),
            Expr::Field(x, f) => {
                let p = self.place(x, bias, local)?;
                self.field_of(p, f)
            }
            Expr::Deref(x) => match self.place(x, bias, local)? {
                Place::Mem { ty, addr } => {
                    let t = self.ty(ty)?;
                    let TypeKind::Pointer { elem } = t.kind else {
                        return Err(format!("cannot dereference a {}", self.name_of(&t)));
                    };
                    let p = self.word_at(addr)?;
                    if p == 0 {
                        return Err("nil pointer dereference".into());
                    }
                    Ok(Place::Mem { ty: elem, addr: p })
                }
                Place::Val(v) => match v.body {
                    Body::Pointer {
                        target: Some(t), ..
                    } => Ok(Place::Val(*t)),
                    _ => Err(format!("cannot dereference a {}", v.ty)),
                },
            },
            Expr::Len(x) | Expr::Cap(x) => {
                let is_len = matches!(e, Expr::Len(_));
                let v = match self.place(x, bias, local)? {
                    Place::Mem { ty, addr } => {
                        // Only the header is needed: no elements.
                        let t = self.ty(ty)?;
                        let b = self.bytes(addr, t.size.min(64))?;
                        match (&t.kind, is_len) {
                            (TypeKind::String, true) | (TypeKind::Slice { .. }, true) => {
                                word(&b, 8)
                            }
                            (TypeKind::Slice { .. }, false) => word(&b, 16),
                            (TypeKind::Array { len, .. }, _) => *len,
                            _ => {
                                let v = self.load(ty, addr, 0);
                                len_of(&v, is_len)?
                            }
                        }
                    }
                    Place::Val(v) => len_of(&v, is_len)?,
                };
                Ok(Place::Val(Value::new("int", Body::Int(v as i64))))
            }
            Expr::Index(x, k) => {
                let p = self.place(x, bias, local)?;
                self.index(p, k)
            }
        }
    }

    fn word_at(&self, addr: u64) -> Result<u64, String> {
        Ok(word(&self.bytes(addr, 8)?, 0))
    }

    fn bytes(&self, addr: u64, n: u64) -> Result<Vec<u8>, String> {
        self.read(addr, n).map_err(|e| match e {
            ReadFail::Budget => "byte budget spent".to_string(),
            ReadFail::Memory(m) => m,
        })
    }

    fn name(
        &self,
        n: &str,
        bias: u64,
        local: &dyn Fn(&str) -> Option<Place>,
    ) -> Result<Place, String> {
        // The longest prefix (at a dot after the last slash) that names a
        // variable; the rest are fields.
        let slash = n.rfind('/').map_or(0, |i| i + 1);
        let mut cuts: Vec<usize> = n[slash..]
            .match_indices('.')
            .map(|(i, _)| slash + i)
            .collect();
        cuts.push(n.len());
        for &c in cuts.iter().rev() {
            let head = &n[..c];
            let found = local(head).or_else(|| {
                let g = self.dwarf.global(head).or_else(|| {
                    (!head.contains('.'))
                        .then(|| self.dwarf.global(&format!("main.{head}")))
                        .flatten()
                })?;
                Some(Place::Mem {
                    ty: g.ty,
                    addr: g.addr.wrapping_add(bias),
                })
            });
            if let Some(mut p) = found {
                for f in n[c..].split('.').filter(|f| !f.is_empty()) {
                    p = self.field_of(p, f)?;
                }
                return Ok(p);
            }
        }
        let pkg = n.rfind('.').map_or("main.", |i| &n[..=i]);
        let like = self.dwarf.globals_like(pkg, 8);
        Err(if like.is_empty() {
            format!("no variable named {n} in the DWARF")
        } else {
            format!(
                "no variable named {n} in the DWARF (there are: {}...)",
                like.join(", ")
            )
        })
    }

    fn field_of(&self, p: Place, f: &str) -> Result<Place, String> {
        self.field_in(p, f, 0)
    }

    /// `x.f`: through pointers, then a field of the struct or one promoted
    /// from an embedded field (a struct or a pointer to one), as Go's
    /// selector finds it.
    fn field_in(&self, p: Place, f: &str, n: u32) -> Result<Place, String> {
        match p {
            Place::Mem { ty, addr } => {
                let mut t = self.ty(ty)?;
                let mut addr = addr;
                for _ in 0..8 {
                    let TypeKind::Pointer { elem } = t.kind else {
                        break;
                    };
                    addr = self.word_at(addr)?;
                    if addr == 0 {
                        return Err(format!("nil pointer dereference at .{f}"));
                    }
                    t = self.ty(elem)?;
                }
                let no_field = || format!("{} has no field {f}", self.name_of(&t));
                let TypeKind::Struct { fields } = &t.kind else {
                    return Err(no_field());
                };
                if let Some(x) = fields.iter().find(|x| x.name == f) {
                    return Ok(Place::Mem {
                        ty: x.ty,
                        addr: addr.wrapping_add(x.offset),
                    });
                }
                if n < 8 {
                    for x in fields.iter().filter(|x| x.embedded) {
                        let inner = Place::Mem {
                            ty: x.ty,
                            addr: addr.wrapping_add(x.offset),
                        };
                        if let Ok(p) = self.field_in(inner, f, n + 1) {
                            return Ok(p);
                        }
                    }
                }
                Err(no_field())
            }
            Place::Val(v) => {
                let mut v = v;
                while let Body::Pointer {
                    target: Some(t), ..
                } = v.body
                {
                    v = *t;
                }
                let ty = v.ty.clone();
                match v.body {
                    Body::Struct(fields) => fields
                        .into_iter()
                        .find(|x| x.name == f)
                        .map(|x| Place::Val(x.value))
                        .ok_or_else(|| format!("{ty} has no field {f}")),
                    _ => Err(format!("{ty} has no field {f}")),
                }
            }
        }
    }

    fn index(&self, p: Place, k: &Key) -> Result<Place, String> {
        let (ty, addr) = match p {
            Place::Mem { ty, addr } => (ty, addr),
            Place::Val(v) => return index_value(v, k),
        };
        let t = self.ty(ty)?;
        let idx = |len: u64| match k {
            Key::Int(i) if *i >= 0 && (*i as u64) < len => Ok(*i as u64),
            Key::Int(i) => Err(format!("index {i} out of range [0, {len})")),
            Key::Str(_) => Err(format!("a {} is not indexed by a string", self.name_of(&t))),
        };
        match &t.kind {
            TypeKind::Array { elem, len } => {
                let i = idx(*len)?;
                let es = self.ty(*elem)?.size;
                Ok(Place::Mem {
                    ty: *elem,
                    addr: addr.wrapping_add(i.wrapping_mul(es)),
                })
            }
            TypeKind::Slice { elem } => {
                let b = self.bytes(addr, 24)?;
                let i = idx(word(&b, 8))?;
                let es = self.ty(*elem)?.size;
                Ok(Place::Mem {
                    ty: *elem,
                    addr: word(&b, 0).wrapping_add(i.wrapping_mul(es)),
                })
            }
            TypeKind::String => {
                let b = self.bytes(addr, 16)?;
                let i = idx(word(&b, 8))?;
                let c = self.bytes(word(&b, 0).wrapping_add(i), 1)?;
                Ok(Place::Val(Value::new("uint8", Body::Uint(c[0] as u64))))
            }
            TypeKind::Pointer { elem } => {
                // Go indexes a pointer to an array directly.
                let p = self.word_at(addr)?;
                self.index(Place::Mem { ty: *elem, addr: p }, k)
            }
            TypeKind::Map { .. } => index_value(self.load(ty, addr, 0), k),
            _ => Err(format!("cannot index a {}", self.name_of(&t))),
        }
    }
}

fn len_of(v: &Value, is_len: bool) -> Result<u64, String> {
    Ok(match (&v.body, is_len) {
        (Body::Str { len, .. }, true) | (Body::Array { len, .. }, _) => *len,
        (Body::Slice { len, .. }, true)
        | (Body::Map { len, .. }, true)
        | (Body::Chan { len, .. }, true) => *len,
        (Body::Slice { cap, .. }, false) | (Body::Chan { cap, .. }, false) => *cap,
        _ => return Err(format!("invalid argument for len/cap: {}", v.ty)),
    })
}

fn index_value(v: Value, k: &Key) -> Result<Place, String> {
    let ty = v.ty.clone();
    match (v.body, k) {
        (Body::Map { entries, .. }, k) => {
            let found = entries.into_iter().find(|(key, _)| match (&key.body, k) {
                (Body::Str { bytes, .. }, Key::Str(s)) => bytes == s.as_bytes(),
                (Body::Int(i), Key::Int(j)) => *i as i128 == *j,
                (Body::Uint(u), Key::Int(j)) => *u as i128 == *j,
                _ => false,
            });
            match found {
                Some((_, e)) => Ok(Place::Val(e)),
                None => Err(format!("key {k:?} not in {ty} (or beyond --max-len)")),
            }
        }
        (Body::Array { elems, .. }, Key::Int(i)) | (Body::Slice { elems, .. }, Key::Int(i)) => {
            elems
                .into_iter()
                .nth(usize::try_from(*i).map_err(|_| format!("index {i} out of range"))?)
                .map(Place::Val)
                .ok_or_else(|| format!("index {i} out of range"))
        }
        _ => Err(format!("cannot index a {ty}")),
    }
}
