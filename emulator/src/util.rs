//! Small pure helpers: a seeded PRNG, name hashing into GUIDs, the time formats the
//! real service uses (RFC 1123, FILETIME ticks, 7-digit ISO 8601), continuation tokens
//! and a self-removing temporary data directory.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// One step of splitmix64: a tiny, good-enough PRNG that is deterministic per seed.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform float in `[0, 1)` drawn from `state`.
pub fn unit(state: &mut u64) -> f64 {
    (splitmix64(state) >> 11) as f64 / (1u64 << 53) as f64
}

/// FNV-1a over `bytes`, salted with `seed` and finished with splitmix64.
pub fn hash64(seed: u64, bytes: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed.wrapping_mul(0x0100_0000_01b3);
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    splitmix64(&mut h)
}

/// A GUID string that depends only on `kind` and `name`, so a restarted emulator
/// answers the same ids.
pub fn guid_from_name(kind: &str, name: &str) -> String {
    let input = format!("{kind}\0{name}");
    let a = hash64(1, input.as_bytes());
    let b = hash64(2, input.as_bytes());
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&a.to_be_bytes());
    bytes[8..].copy_from_slice(&b.to_be_bytes());
    bytes[6] = (bytes[6] & 0x0f) | 0x50; // version 5 (name-based)
    bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
    format_guid(&bytes)
}

/// A random-looking GUID for request ids.
pub fn guid_from_u128(v: u128) -> String {
    let mut bytes = v.to_be_bytes();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    format_guid(&bytes)
}

fn format_guid(b: &[u8; 16]) -> String {
    let mut s = String::with_capacity(36);
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push_str(&format!("{byte:02x}"));
    }
    s
}

/// Whether `s` looks like a GUID (8-4-4-4-12 hex digits, any case).
pub fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.bytes().all(|c| c.is_ascii_hexdigit()))
}

/// Seconds between 1601-01-01 and 1970-01-01.
const FILETIME_UNIX_OFFSET_SECS: u64 = 11_644_473_600;

pub fn nanos_since_epoch(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

pub fn now_nanos() -> u64 {
    nanos_since_epoch(SystemTime::now())
}

/// Windows FILETIME ticks (100 ns since 1601) for a Unix time in nanoseconds.
pub fn filetime_from_nanos(ns: u64) -> u64 {
    ns / 100 + FILETIME_UNIX_OFFSET_SECS * 10_000_000
}

pub fn nanos_from_filetime(ft: u64) -> u64 {
    ft.saturating_sub(FILETIME_UNIX_OFFSET_SECS * 10_000_000)
        .saturating_mul(100)
}

/// `Wed, 22 Feb 2023 02:41:26 GMT`.
pub fn http_date(ns: u64) -> String {
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_nanos(ns))
}

/// `2023-03-07T19:37:19.4394026Z`, the time format inside storage error messages.
pub fn iso8601_7(ns: u64) -> String {
    let secs = ns / 1_000_000_000;
    let ticks = (ns % 1_000_000_000) / 100;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ticks:07}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 → (year, month, day), Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = (z - era * 146_097) as u64;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe as i64 + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Leading bytes of every continuation token. `0xFB 0xFF` encode to `+/` in standard
/// base64, so every token carries characters that must be percent-encoded in a query
/// string; a client that forgets to encode it sends `+` (decoded as a space) and gets a
/// 400, as it would against the real service whose tokens often contain `+`, `/`, `=`.
const TOKEN_MAGIC: [u8; 2] = [0xFB, 0xFF];

/// Token kinds: listing resume point, recursive-delete progress.
pub const TOKEN_LIST: u8 = b'L';
pub const TOKEN_DELETE: u8 = b'D';

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

/// Creates a fresh, empty directory under the system temp dir.
pub fn make_temp_dir() -> std::io::Result<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "fabric-emulator-{}-{}-{n}",
        std::process::id(),
        now_nanos()
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_and_filetime() {
        // 2023-03-07T21:43:39.77Z, from a real listing's creationTime.
        let ft = 133_226_990_197_710_973u64;
        let ns = nanos_from_filetime(ft);
        assert_eq!(iso8601_7(ns), "2023-03-07T21:43:39.7710973Z");
        assert_eq!(filetime_from_nanos(ns), ft);
        assert_eq!(http_date(ns), "Tue, 07 Mar 2023 21:43:39 GMT");
    }

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

    #[test]
    fn guids_are_stable() {
        let a = guid_from_name("workspace", "My Workspace");
        assert_eq!(a, guid_from_name("workspace", "My Workspace"));
        assert_ne!(a, guid_from_name("workspace", "Other"));
        assert!(is_guid(&a));
        assert!(!is_guid("lake.Lakehouse"));
    }
}
