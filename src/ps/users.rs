//! Uid to user name, from gopeek's own `/etc/passwd` (read once, bounded).
//! No NSS: the static binary has none, and a listing must not hang on a
//! directory service. Processes in containers may run as users the host
//! does not name; they show as numbers, as `ps` on the host shows them.

use std::collections::HashMap;
use std::io::Read;

/// Largest passwd file read.
const MAX_PASSWD: u64 = 4 << 20;

/// The names of the users this machine's `/etc/passwd` lists.
pub(super) struct Users(HashMap<u32, String>);

impl Users {
    /// Reads `/etc/passwd`; an unreadable file names nobody.
    pub(super) fn load() -> Users {
        let mut text = String::new();
        if let Ok(f) = std::fs::File::open("/etc/passwd") {
            let _ = f.take(MAX_PASSWD).read_to_string(&mut text);
        }
        Users::parse(&text)
    }

    /// `name:password:uid:...` lines; the first name of a uid wins.
    fn parse(text: &str) -> Users {
        let mut m = HashMap::new();
        for line in text.lines() {
            let mut f = line.split(':');
            if let (Some(name), Some(_), Some(uid)) = (f.next(), f.next(), f.next()) {
                if let Ok(uid) = uid.parse() {
                    m.entry(uid).or_insert_with(|| name.to_string());
                }
            }
        }
        Users(m)
    }

    /// The name of `uid`, or the number as text.
    pub(super) fn name(&self, uid: u32) -> String {
        self.0.get(&uid).cloned().unwrap_or_else(|| uid.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        let u = Users::parse("root:x:0:0:root:/root:/bin/bash\nbad line\nalice:x:1000:1000::/home/a:/bin/sh\nalias:x:1000:1000::/:/bin/sh\n");
        assert_eq!(u.name(0), "root");
        assert_eq!(u.name(1000), "alice");
        assert_eq!(u.name(4242), "4242");
    }
}
