//! Go's printing rules, in one place: which frames and goroutines a
//! traceback shows ([`frames`]), the status text and states ([`status`]),
//! and the lines themselves ([`text`]). The walker marks frames with these
//! rules; the text, grouping, leak and profile writers read them; nothing
//! here reads memory or the executable.

pub mod frames;
pub(crate) mod status;
pub(crate) mod text;
