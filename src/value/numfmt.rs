//! Go's number and string spellings: `strconv.FormatFloat` with the
//! shortest digits in the `g`, `e` and `f` forms, `strconv.Quote`, and
//! encoding/json's float and string encodings.

/// The shortest decimal digits of a float that round-trip at its size, and
/// the decimal point position (Go's `digs.dp`): value = 0.DIGITS × 10^dp.
fn shortest(f: f64, bits: u8) -> (bool, String, i32) {
    let s = if bits == 32 {
        format!("{:e}", f as f32)
    } else {
        format!("{:e}", f)
    };
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.as_str()),
    };
    let (mant, exp) = s.split_once('e').unwrap_or((s, "0"));
    let digits: String = mant.chars().filter(|c| *c != '.').collect();
    let exp: i32 = exp.parse().unwrap_or(0);
    if digits.chars().all(|c| c == '0') {
        return (neg, "0".into(), 1);
    }
    (neg, digits, exp + 1)
}

fn special(f: f64) -> Option<&'static str> {
    if f.is_nan() {
        Some("NaN")
    } else if f == f64::INFINITY {
        Some("+Inf")
    } else if f == f64::NEG_INFINITY {
        Some("-Inf")
    } else {
        None
    }
}

fn fmt_e(neg: bool, d: &str, dp: i32) -> String {
    let mut s = String::new();
    if neg {
        s.push('-');
    }
    s.push_str(&d[..1]);
    if d.len() > 1 {
        s.push('.');
        s.push_str(&d[1..]);
    }
    let exp = if d == "0" { 0 } else { dp - 1 };
    s.push('e');
    s.push(if exp < 0 { '-' } else { '+' });
    let a = exp.unsigned_abs();
    if a < 10 {
        s.push('0');
    }
    s.push_str(&a.to_string());
    s
}

fn fmt_f(neg: bool, d: &str, dp: i32) -> String {
    let mut s = String::new();
    if neg {
        s.push('-');
    }
    let nd = d.len() as i32;
    if dp <= 0 {
        s.push_str("0.");
        s.push_str(&"0".repeat((-dp) as usize));
        s.push_str(d);
    } else if dp >= nd {
        s.push_str(d);
        s.push_str(&"0".repeat((dp - nd) as usize));
    } else {
        s.push_str(&d[..dp as usize]);
        s.push('.');
        s.push_str(&d[dp as usize..]);
    }
    s
}

/// `strconv.FormatFloat(f, 'g', -1, bits)`, as `%v` and `%#v` print a
/// float (`2`, `0.1`, `1e+21`, `1.23456789125e+08`, `NaN`, `+Inf`).
pub fn go_g(f: f64, bits: u8) -> String {
    if let Some(s) = special(f) {
        return s.to_string();
    }
    let (neg, d, dp) = shortest(f, bits);
    let exp = dp - 1;
    if d != "0" && !(-4..6).contains(&exp) {
        fmt_e(neg, &d, dp)
    } else {
        fmt_f(neg, &d, dp)
    }
}

/// `%#v` of a complex number: `(1+2i)`.
pub fn go_complex(re: f64, im: f64, bits: u8) -> String {
    let mut i = go_g(im, bits);
    if !i.starts_with(['-', '+']) {
        i.insert(0, '+');
    }
    format!("({}{}i)", go_g(re, bits), i)
}

/// encoding/json's float: `f` form, or `e` form below 1e-6 and from 1e21
/// (with `e-07` written `e-7`); `None` for NaN and infinities, which it
/// refuses.
pub fn json_float(f: f64, bits: u8) -> Option<String> {
    if !f.is_finite() {
        return None;
    }
    let a = f.abs();
    let (small, big) = if bits == 32 {
        let a32 = a as f32;
        (a32 < 1e-6, a32 >= 1e21)
    } else {
        (a < 1e-6, a >= 1e21)
    };
    let (neg, d, dp) = shortest(f, bits);
    if a != 0.0 && (small || big) {
        let mut s = fmt_e(neg, &d, dp);
        let n = s.len();
        let b = s.as_bytes();
        if n >= 4 && b[n - 4] == b'e' && b[n - 3] == b'-' && b[n - 2] == b'0' {
            s.remove(n - 2);
        }
        Some(s)
    } else {
        Some(fmt_f(neg, &d, dp))
    }
}

/// Go's `unicode.IsPrint`, closely enough for quoting: graphic
/// characters and the ASCII space; not controls, other spaces, line and
/// paragraph separators, format characters, private use or
/// noncharacters.
fn is_print(c: char) -> bool {
    let u = c as u32;
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    !matches!(u,
        0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x180E | 0x200B..=0x200F
        | 0x202A..=0x202E | 0x2060..=0x206F | 0xFEFF | 0xFFF9..=0xFFFB
        | 0xE000..=0xF8FF | 0xF0000..=0x10FFFF | 0xFFFE | 0xFFFF)
}

/// `strconv.Quote` of Go string bytes (invalid UTF-8 as `\xNN`).
pub fn go_quote(bytes: &[u8]) -> String {
    let mut s = String::from("\"");
    let mut rest = bytes;
    while !rest.is_empty() {
        let (c, n) = match std::str::from_utf8(rest) {
            Ok(v) => v
                .chars()
                .next()
                .map(|c| (Some(c), c.len_utf8()))
                .unwrap_or((None, 1)),
            Err(e) if e.valid_up_to() > 0 => {
                let v = std::str::from_utf8(&rest[..e.valid_up_to()]).unwrap_or("");
                v.chars()
                    .next()
                    .map(|c| (Some(c), c.len_utf8()))
                    .unwrap_or((None, 1))
            }
            Err(_) => (None, 1),
        };
        match c {
            None => s.push_str(&format!("\\x{:02x}", rest[0])),
            Some('"') => s.push_str("\\\""),
            Some('\\') => s.push_str("\\\\"),
            Some(c) if is_print(c) => s.push(c),
            Some('\x07') => s.push_str("\\a"),
            Some('\x08') => s.push_str("\\b"),
            Some('\x0c') => s.push_str("\\f"),
            Some('\n') => s.push_str("\\n"),
            Some('\r') => s.push_str("\\r"),
            Some('\t') => s.push_str("\\t"),
            Some('\x0b') => s.push_str("\\v"),
            Some(c) if (c as u32) < 0x20 || c as u32 == 0x7f => {
                s.push_str(&format!("\\x{:02x}", c as u32))
            }
            Some(c) if (c as u32) < 0x10000 => s.push_str(&format!("\\u{:04x}", c as u32)),
            Some(c) => s.push_str(&format!("\\U{:08x}", c as u32)),
        }
        rest = &rest[n..];
    }
    s.push('"');
    s
}

/// encoding/json's string (HTML-safe: `<`, `>`, `&` as `\u003c`...;
/// invalid UTF-8 as U+FFFD; U+2028 and U+2029 escaped). From Go 1.22,
/// `\b` and `\f` are written short; before, as `\u0008` and `\u000c`.
pub fn json_string(bytes: &[u8], go_minor: u32) -> String {
    let mut s = String::from("\"");
    let text = String::from_utf8_lossy(bytes);
    for c in text.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            '\x08' if go_minor >= 22 => s.push_str("\\b"),
            '\x0c' if go_minor >= 22 => s.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                s.push_str(&format!("\\u{:04x}", c as u32))
            }
            c if (c as u32) < 0x20 => s.push_str(&format!("\\u{:04x}", c as u32)),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

/// Standard base64 with padding (encoding/json's `[]byte`).
pub fn base64(b: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(b.len().div_ceil(3) * 4);
    for ch in b.chunks(3) {
        let n = (ch[0] as u32) << 16
            | (*ch.get(1).unwrap_or(&0) as u32) << 8
            | *ch.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= ch.len() {
                s.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_as_go_writes_them() {
        assert_eq!(go_g(2.0, 64), "2");
        assert_eq!(go_g(1e21, 64), "1e+21");
        assert_eq!(go_g(123456789.125, 64), "1.23456789125e+08");
        assert_eq!(go_g(1e-7, 64), "1e-07");
        assert_eq!(go_g(0.1f32 as f64, 32), "0.1");
        assert_eq!(go_g(-0.5, 64), "-0.5");
        assert_eq!(go_g(0.0, 64), "0");
        assert_eq!(go_g(f64::NAN, 64), "NaN");
        assert_eq!(go_g(0.0001, 64), "0.0001");
        assert_eq!(go_g(123456.0, 64), "123456");
        assert_eq!(go_complex(-1.5, 0.25, 64), "(-1.5+0.25i)");
        assert_eq!(go_complex(1.0, -2.0, 32), "(1-2i)");
        assert_eq!(json_float(1e21, 64).unwrap(), "1e+21");
        assert_eq!(json_float(1e-7, 64).unwrap(), "1e-7");
        assert_eq!(json_float(123456789.125, 64).unwrap(), "123456789.125");
        assert_eq!(json_float(0.1f32 as f64, 32).unwrap(), "0.1");
        assert_eq!(json_float(-0.0, 64).unwrap(), "-0");
        assert!(json_float(f64::NAN, 64).is_none());
    }

    #[test]
    fn strings_as_go_quotes_them() {
        assert_eq!(go_quote(b"ok\xff\xfe"), "\"ok\\xff\\xfe\"");
        assert_eq!(
            go_quote("quote\" <html>&\n\t\x01 \u{2028}".as_bytes()),
            "\"quote\\\" <html>&\\n\\t\\x01 \\u2028\""
        );
        assert_eq!(go_quote("hello, 世界".as_bytes()), "\"hello, 世界\"");
        assert_eq!(
            json_string("quote\" <html>&\n\t\x01 \u{2028}".as_bytes(), 27),
            "\"quote\\\" \\u003chtml\\u003e\\u0026\\n\\t\\u0001 \\u2028\""
        );
        assert_eq!(json_string(b"ok\xff\xfe", 27), "\"ok\u{fffd}\u{fffd}\"");
        assert_eq!(json_string(b"\x08", 21), "\"\\u0008\"");
        assert_eq!(json_string(b"\x08", 22), "\"\\b\"");
        assert_eq!(base64(&[1, 2, 255]), "AQL/");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b""), "");
    }
}
