//! The line format shared by the manifest and the hash cache: tab-separated fields, the path
//! last, with `%`, tab, CR and LF percent-escaped so any file name fits on one line; sha256 as
//! lowercase hex.

/// Lowercase hex of a digest.
pub fn hex(bytes: &[u8; 32]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(64);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Parses 64 hex digits.
pub fn unhex(s: &str) -> Option<[u8; 32]> {
    let s = s.as_bytes();
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in s.chunks_exact(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

pub fn escape_path(path: &str) -> std::borrow::Cow<'_, str> {
    if !path.contains(['%', '\t', '\n', '\r']) {
        return path.into();
    }
    let mut s = String::with_capacity(path.len() + 8);
    for c in path.chars() {
        match c {
            '%' => s.push_str("%25"),
            '\t' => s.push_str("%09"),
            '\n' => s.push_str("%0A"),
            '\r' => s.push_str("%0D"),
            c => s.push(c),
        }
    }
    s.into()
}

pub fn unescape_path(s: &str) -> Option<String> {
    if !s.contains('%') {
        return Some(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let code = rest.get(i + 1..i + 3)?;
        out.push(match code {
            "25" => '%',
            "09" => '\t',
            "0A" => '\n',
            "0D" => '\r',
            _ => return None,
        });
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let d: [u8; 32] = std::array::from_fn(|i| (i * 7) as u8);
        assert_eq!(unhex(&hex(&d)), Some(d));
        assert_eq!(unhex("zz"), None);
    }

    #[test]
    fn path_escaping_round_trips() {
        for p in [
            "plain/a.py",
            "100%",
            "tab\there",
            "line\nbreak\r",
            "%25 literal",
        ] {
            assert_eq!(unescape_path(&escape_path(p)).as_deref(), Some(p));
            assert!(!escape_path(p).contains(['\t', '\n']));
        }
        assert_eq!(unescape_path("bad%zz"), None);
    }
}
