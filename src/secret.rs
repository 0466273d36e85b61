//! [`Secret`]: a string that never shows itself in `Debug`, `Display`, logs or errors, and
//! [`redact`], which removes secrets from text that came from somewhere else (a server's
//! error message that echoes our `Authorization` header, a URL with a SAS signature).
//!
//! Every `Secret` made in this process is remembered (a few dozen at most: tokens are cached
//! for an hour), so `redact` removes our own tokens and client secrets wherever they appear,
//! even inside text we did not write. Patterns that are secret whoever made them are removed
//! too: `Bearer <token>`, `sig=<signature>` (SAS), `client_secret=<value>`, and JWTs.

use std::borrow::Cow;
use std::fmt;
use std::sync::Mutex;

/// Secrets shorter than this are not searched for in text (too many false hits, and no
/// credential is that short).
const MIN_REMEMBERED: usize = 8;
/// Secrets remembered at once; the oldest is forgotten first.
const MAX_REMEMBERED: usize = 64;

static REMEMBERED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// A token or client secret. Its text is reachable only through [`Secret::expose`], which is
/// called exactly where the value goes on the wire.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        let value = value.into();
        remember(&value);
        Self(value)
    }

    /// The secret text, for the `Authorization` header (or a credential's constructor) and
    /// nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

fn remember(value: &str) {
    let value = value.trim();
    if value.len() < MIN_REMEMBERED {
        return;
    }
    let mut list = REMEMBERED.lock().unwrap_or_else(|p| p.into_inner());
    if list.iter().any(|v| v == value) {
        return;
    }
    if list.len() >= MAX_REMEMBERED {
        list.remove(0);
    }
    list.push(value.to_string());
}

/// `text` with every secret replaced by `***`: our own tokens and client secrets, bearer
/// tokens, SAS signatures, `client_secret=` values and JWTs.
pub fn redact(text: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(text);
    {
        let list = REMEMBERED.lock().unwrap_or_else(|p| p.into_inner());
        for secret in list.iter() {
            if out.contains(secret.as_str()) {
                out = Cow::Owned(out.replace(secret.as_str(), "***"));
            }
        }
    }
    for (marker, case_insensitive) in [
        ("bearer ", true),
        ("sig=", false),
        ("client_secret=", true),
        ("\"access_token\":\"", true),
    ] {
        if find(&out, marker, case_insensitive, 0).is_some() {
            out = Cow::Owned(mask_after(&out, marker, case_insensitive));
        }
    }
    if out.contains("eyJ") {
        out = Cow::Owned(mask_jwts(&out));
    }
    out
}

fn find(text: &str, marker: &str, case_insensitive: bool, from: usize) -> Option<usize> {
    if case_insensitive {
        text[from..]
            .to_ascii_lowercase()
            .find(marker)
            .map(|i| i + from)
    } else {
        text[from..].find(marker).map(|i| i + from)
    }
}

/// Replaces the value after each `marker` (up to a delimiter) with `***`.
fn mask_after(text: &str, marker: &str, case_insensitive: bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while let Some(i) = find(text, marker, case_insensitive, at) {
        let start = i + marker.len();
        out.push_str(&text[at..start]);
        let end = text[start..]
            .find(|c: char| c.is_whitespace() || matches!(c, '&' | '"' | '\'' | ',' | ';' | '<'))
            .map_or(text.len(), |n| start + n);
        if end > start && &text[start..end] != "***" {
            out.push_str("***");
        } else {
            out.push_str(&text[start..end]);
        }
        at = end;
    }
    out.push_str(&text[at..]);
    out
}

/// Replaces `eyJ…​.…​.…` (three base64url parts) with `***`.
fn mask_jwts(text: &str) -> String {
    let is_b64 = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("eyJ") {
        out.push_str(&rest[..i]);
        let candidate = &rest[i..];
        let len = candidate
            .find(|c: char| !(is_b64(c) || c == '.'))
            .unwrap_or(candidate.len());
        let token = &candidate[..len];
        if token.split('.').count() >= 3 {
            out.push_str("***");
        } else {
            out.push_str(token);
        }
        rest = &candidate[len..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_its_value() {
        let s = Secret::new("eyJ0eXAiOiJKV1Qi.secret");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(s.expose(), "eyJ0eXAiOiJKV1Qi.secret");
    }

    #[test]
    fn redacts_our_secrets_inside_foreign_text() {
        let _t = Secret::new("tok-very-secret-123");
        assert_eq!(
            redact("server says: token tok-very-secret-123 is not allowed"),
            "server says: token *** is not allowed"
        );
        assert_eq!(redact("nothing to hide"), "nothing to hide");
    }

    #[test]
    fn redacts_secret_shapes_whoever_made_them() {
        assert_eq!(
            redact("Authorization: Bearer abc.def-ghi was rejected"),
            "Authorization: Bearer *** was rejected"
        );
        assert_eq!(
            redact("GET https://a.blob.core.windows.net/c/x?sv=2024&sig=AbC%2Bd%3D&se=1"),
            "GET https://a.blob.core.windows.net/c/x?sv=2024&sig=***&se=1"
        );
        assert_eq!(
            redact("client_secret=s3cr3t&grant_type=x"),
            "client_secret=***&grant_type=x"
        );
        assert_eq!(
            redact("jwt eyJhbGciOi.eyJzdWIiOiIx.c2lnbmF0dXJl end"),
            "jwt *** end"
        );
        assert_eq!(redact("sig=*** twice"), "sig=*** twice");
    }
}
