//! The order Go's `%#v` prints map keys in (`internal/fmtsort`): numbers
//! by value (NaN first), strings by bytes, false before true, pointers and
//! channels by address, structs and arrays element by element, nil
//! interfaces first. Applied to every map the decoder reads, so the text,
//! the JSON tree and `jq` see one order.

use super::tree::{Body, Value};
use std::cmp::Ordering;

/// Compares two keys of one map type.
pub fn compare(a: &Value, b: &Value) -> Ordering {
    match (&a.body, &b.body) {
        (Body::Int(x), Body::Int(y)) => x.cmp(y),
        (Body::Uint(x), Body::Uint(y)) => x.cmp(y),
        (Body::Float(x, _), Body::Float(y, _)) => float(*x, *y),
        (Body::Complex(xr, xi, _), Body::Complex(yr, yi, _)) => {
            float(*xr, *yr).then_with(|| float(*xi, *yi))
        }
        (Body::Str { bytes: x, .. }, Body::Str { bytes: y, .. }) => x.cmp(y),
        (Body::Bool(x), Body::Bool(y)) => x.cmp(y),
        (Body::Pointer { ptr: x, .. }, Body::Pointer { ptr: y, .. })
        | (Body::Chan { ptr: x, .. }, Body::Chan { ptr: y, .. })
        | (Body::UnsafePointer(x), Body::UnsafePointer(y)) => x.cmp(y),
        (Body::Struct(x), Body::Struct(y)) => x
            .iter()
            .zip(y)
            .map(|(f, g)| compare(&f.value, &g.value))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal),
        (Body::Array { elems: x, .. }, Body::Array { elems: y, .. }) => x
            .iter()
            .zip(y)
            .map(|(f, g)| compare(f, g))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal),
        (Body::Interface(x), Body::Interface(y)) => match (x, y) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(x), Some(y)) => x.ty.cmp(&y.ty).then_with(|| compare(x, y)),
        },
        _ => Ordering::Equal,
    }
}

fn float(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        _ => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}
