//! Ids and randomness: a seeded PRNG (so fault injection replays per seed), name hashing
//! into stable GUIDs (a restarted emulator answers the same ids), and GUID checks.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_are_stable() {
        let a = guid_from_name("workspace", "My Workspace");
        assert_eq!(a, guid_from_name("workspace", "My Workspace"));
        assert_ne!(a, guid_from_name("workspace", "Other"));
        assert!(is_guid(&a));
        assert!(!is_guid("lake.Lakehouse"));
    }
}
