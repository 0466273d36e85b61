//! Continuation tokens: opaque to clients, base64 like the real ones, and always holding
//! characters that must be percent-encoded in a query string.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// Leading bytes of every continuation token. `0xFB 0xFF` encode to `+/` in standard
/// base64, so every token carries characters that must be percent-encoded in a query
/// string; a client that forgets to encode it sends `+` (decoded as a space) and gets a
/// 400, as it would against the real service whose tokens often contain `+`, `/`, `=`.
const TOKEN_MAGIC: [u8; 2] = [0xFB, 0xFF];

/// Token kinds: listing resume point, recursive-delete progress.
pub const TOKEN_LIST: u8 = b'L';
pub const TOKEN_DELETE: u8 = b'D';
/// List Blobs marker: the last name of the previous page.
pub const TOKEN_BLOB: u8 = b'B';

pub fn encode_token(kind: u8, payload: &str) -> String {
    let mut raw = Vec::with_capacity(payload.len() + 3);
    raw.extend_from_slice(&TOKEN_MAGIC);
    raw.push(kind);
    raw.extend_from_slice(payload.as_bytes());
    STANDARD.encode(raw)
}

/// The payload of a token of `kind`, or `None` when the token is not one of ours.
pub fn decode_token(kind: u8, token: &str) -> Option<String> {
    let raw = STANDARD.decode(token.as_bytes()).ok()?;
    let rest = raw.strip_prefix(&TOKEN_MAGIC[..])?;
    let (k, payload) = rest.split_first()?;
    if *k != kind {
        return None;
    }
    String::from_utf8(payload.to_vec()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_need_encoding_and_round_trip() {
        let t = encode_token(TOKEN_LIST, "lake.Lakehouse/Files/a b");
        assert!(t.starts_with("+/"));
        assert_eq!(
            decode_token(TOKEN_LIST, &t).as_deref(),
            Some("lake.Lakehouse/Files/a b")
        );
        assert_eq!(decode_token(TOKEN_DELETE, &t), None);
        assert_eq!(decode_token(TOKEN_LIST, &t.replace('+', " ")), None);
    }
}
