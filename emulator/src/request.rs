//! Per-request facts shared by every side of the emulator: the [`RequestCtx`] (request
//! id, which API is being spoken, the headers every answer echoes) and [`Query`], the one
//! parsed query string the DFS, Blob and Fabric handlers all read.
//!
//! Nothing here answers a request; `error` and the handlers do, reading these.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Response, header};
use percent_encoding::percent_decode_str;

/// Which API a request speaks; decides the error shape and the common headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// OneLake DFS (ADLS Gen2): JSON errors.
    Dfs,
    /// OneLake Blob: XML errors.
    Blob,
    /// Fabric REST (`/v1/...`): Fabric JSON errors.
    Fabric,
}

/// Per-request facts the handlers and error writers need. Inserted into the request's
/// extensions before routing.
#[derive(Debug, Clone)]
pub struct RequestCtx {
    pub request_id: String,
    pub head: bool,
    pub surface: Surface,
    client_request_id: Option<HeaderValue>,
    version: Option<HeaderValue>,
}

/// The version answered when a storage request names none (`fab` and Microsoft's
/// OneLake explorer sample send no `x-ms-version`; the service then answers with a
/// default version of its own, which one is UNCONFIRMED).
pub const DEFAULT_VERSION: &str = "2023-11-03";

impl RequestCtx {
    pub fn new(request_id: String, headers: &HeaderMap, head: bool, surface: Surface) -> Self {
        RequestCtx {
            request_id,
            head,
            surface,
            client_request_id: headers.get("x-ms-client-request-id").cloned(),
            version: headers.get("x-ms-version").cloned(),
        }
    }

    /// Adds the headers every response carries.
    pub fn finish(&self, mut resp: Response<Body>) -> Response<Body> {
        let h = resp.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&self.request_id) {
            if self.surface == Surface::Fabric {
                h.insert("requestid", v);
            } else {
                h.insert("x-ms-request-id", v);
            }
        }
        if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(std::time::SystemTime::now()))
        {
            h.insert(header::DATE, v);
        }
        match self.surface {
            Surface::Fabric => {}
            Surface::Dfs | Surface::Blob => {
                let server = if self.surface == Surface::Dfs {
                    "Windows-Azure-HDFS/1.0 Microsoft-HTTPAPI/2.0"
                } else {
                    "Windows-Azure-Blob/1.0 Microsoft-HTTPAPI/2.0"
                };
                h.insert(header::SERVER, HeaderValue::from_static(server));
                let version = self
                    .version
                    .clone()
                    .unwrap_or_else(|| HeaderValue::from_static(DEFAULT_VERSION));
                h.insert("x-ms-version", version);
                if let Some(v) = &self.client_request_id {
                    h.insert("x-ms-client-request-id", v.clone());
                }
            }
        }
        resp
    }
}

/// A query parameter that is present but not valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadQuery {
    pub key: String,
    pub value: String,
}

/// Parsed query string: keys matched case-insensitively, first occurrence wins. Values
/// are decoded form-style (`+` is a space), as the real front ends do, so an unencoded
/// continuation token (which often holds `+`) breaks.
#[derive(Debug, Clone, Default)]
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(raw: &str) -> Result<Query, BadQuery> {
        let mut pairs = Vec::new();
        for part in raw.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            let bad = || BadQuery {
                key: k.to_owned(),
                value: "(not valid UTF-8)".to_owned(),
            };
            pairs.push((decode(k).ok_or_else(bad)?, decode(v).ok_or_else(bad)?));
        }
        Ok(Query(pairs))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    /// Whether `key` is present with exactly `value` (ASCII case-insensitive).
    pub fn is(&self, key: &str, value: &str) -> bool {
        self.get(key).is_some_and(|v| v.eq_ignore_ascii_case(value))
    }

    pub fn bool(&self, key: &str) -> Result<Option<bool>, BadQuery> {
        match self.get(key) {
            None => Ok(None),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(v) => Err(self.bad(key, v)),
        }
    }

    pub fn u64(&self, key: &str) -> Result<Option<u64>, BadQuery> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| self.bad(key, v)),
        }
    }

    /// Every pair, in order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

    fn bad(&self, key: &str, value: &str) -> BadQuery {
        BadQuery {
            key: key.to_owned(),
            value: value.to_owned(),
        }
    }
}

fn decode(s: &str) -> Option<String> {
    let spaced = s.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decodes_form_style_and_matches_keys_loosely() {
        let q = Query::parse("A=1&b=x+y%2B&flag=TRUE&n=12&a=2").unwrap();
        assert_eq!(q.get("a"), Some("1"));
        assert_eq!(q.get("B"), Some("x y+"));
        assert_eq!(q.bool("flag"), Ok(Some(true)));
        assert_eq!(q.u64("n"), Ok(Some(12)));
        assert_eq!(q.u64("missing"), Ok(None));
        assert!(q.bool("b").is_err());
        assert!(q.is("flag", "true"));
        assert!(Query::parse("a=%FF").is_err());
    }
}
