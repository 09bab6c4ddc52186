//! `gopeek print`'s two forms: `EXPR = %#v` lines, and the
//! `gopeek.print/1` document:
//!
//! ```json
//! {"schema": "gopeek.print/1", "values": [
//!   {"expr": "main.cfg", "type": "main.Config", "value": {typed tree},
//!    "json": {as encoding/json encodes it}, "text": "%#v", "error": null}]}
//! ```
//!
//! `json` is absent where encoding/json would refuse the value (complex,
//! chan, func, unsafe.Pointer, NaN, a cycle, unsupported map keys) or where
//! gopeek's limits cut it; `json_error` then says which. `error` is set
//! (and `value` absent) when the expression could not be evaluated.

use crate::snapshot::frame_select::FrameInfo;
use crate::value::gofmt::go_syntax;
use crate::value::gojson::encode;
use crate::value::Printed;
use serde_json::value::RawValue;
use serde_json::Value as Json;
use std::io::{self, Write};

/// The text form: one `EXPR = VALUE` line per expression, `EXPR: error:
/// ...` for one that failed.
pub fn write_text(values: &[Printed], w: &mut dyn Write) -> io::Result<()> {
    for p in values {
        match (&p.value, &p.error) {
            (Some(v), _) => writeln!(w, "{} = {}", p.expr, go_syntax(v))?,
            (None, e) => writeln!(
                w,
                "{}: error: {}",
                p.expr,
                e.as_deref().unwrap_or("unknown")
            )?,
        }
    }
    Ok(())
}

/// The text form in a frame (`--goroutine`): a header line naming the
/// frame (`goroutine 7 frame 2: main.handle at /src/main.go:42`), then one
/// line per expression; a variable optimized out at the frame's PC reads
/// `x = (unreadable optimized out: ...)`, as Delve says it.
pub fn write_text_in(
    values: &[Printed],
    frame: Option<&FrameInfo>,
    w: &mut dyn Write,
) -> io::Result<()> {
    let Some(f) = frame else {
        return write_text(values, w);
    };
    writeln!(
        w,
        "goroutine {} frame {}: {} at {}:{}",
        f.goroutine, f.frame, f.function, f.file, f.line
    )?;
    for p in values {
        match (&p.error, p.optimized_out) {
            (Some(e), true) => writeln!(w, "{} = (unreadable {e})", p.expr)?,
            _ => write_text(std::slice::from_ref(p), w)?,
        }
    }
    Ok(())
}

/// One entry of `values`. `json` is encoding/json's text as gopeek wrote
/// it, kept as is (Go's field order and number spelling).
#[derive(serde::Serialize)]
pub struct Record {
    expr: String,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    ty: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<Json>,
    #[serde(skip_serializing_if = "Option::is_none")]
    json: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    json_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    error: Option<String>,
    /// The variable is optimized out at the frame's PC.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    optimized_out: bool,
}

/// The record of one expression.
pub fn record(p: &Printed, go_minor: u32) -> Record {
    let mut r = Record {
        expr: p.expr.clone(),
        ty: None,
        value: None,
        json: None,
        json_error: None,
        text: None,
        error: p.error.clone(),
        optimized_out: p.optimized_out,
    };
    if let Some(v) = &p.value {
        r.ty = Some(v.ty.clone());
        r.value = Some(v.tree());
        match encode(v, go_minor).map(RawValue::from_string) {
            Ok(Ok(raw)) => r.json = Some(raw),
            Ok(Err(e)) => r.json_error = Some(format!("internal: {e}")),
            Err(e) => r.json_error = Some(e),
        }
        r.text = Some(go_syntax(v));
    } else if r.error.is_none() {
        r.error = Some("unknown".into());
    }
    r
}

/// The JSON form, schema `gopeek.print/1`.
pub fn write_json(
    values: &[Printed],
    go_minor: u32,
    pretty: bool,
    w: &mut dyn Write,
) -> io::Result<()> {
    write_json_in(values, go_minor, None, pretty, w)
}

/// [`write_json`] in a frame: the frame's `goroutine`, `frame`,
/// `function`, `file` and `line` beside `values`.
pub fn write_json_in(
    values: &[Printed],
    go_minor: u32,
    frame: Option<&FrameInfo>,
    pretty: bool,
    w: &mut dyn Write,
) -> io::Result<()> {
    #[derive(serde::Serialize)]
    struct Doc<'a> {
        schema: &'static str,
        #[serde(flatten, skip_serializing_if = "Option::is_none")]
        frame: Option<&'a FrameInfo>,
        values: Vec<Record>,
    }
    let doc = Doc {
        schema: "gopeek.print/1",
        frame,
        values: values.iter().map(|p| record(p, go_minor)).collect(),
    };
    super::write_json(&doc, pretty, w)
}
