//! Go's printing rules, in one place: which frames and goroutines a
//! traceback shows ([`frames`]), the status text and states ([`status`]),
//! the argument lists ([`args`]), and the lines themselves ([`text`]). The
//! walker marks frames with these rules; the text, grouping, leak and
//! profile writers read them; nothing here reads memory, and the
//! executable only through the decoded tables the walker hands over.

pub(crate) mod args;
pub mod frames;
pub mod sched;
pub(crate) mod status;
pub(crate) mod text;
