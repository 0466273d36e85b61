//! How Blob requests are authorised: a bearer token from the credential chain, a SAS token
//! appended to the query, or a Shared Key signature (HMAC-SHA256 of the canonical request,
//! as Azure Storage's "Authorize with Shared Key" describes it). [`BlobAuth::from_env`]
//! picks one from the URL and the environment.
//!
//! The SAS and the account key are secrets: they live in [`Secret`]s or private fields, no
//! `Debug` shows them, and [`BlobAuth::redact`] scrubs the SAS from error text a service
//! might echo.

use std::sync::Arc;
use std::time::SystemTime;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, KeyInit, Mac};
use reqwest::header::{AUTHORIZATION, HeaderValue};
use sha2::Sha256;

use super::error::BlobError;
use crate::auth::STORAGE_SCOPE;
use crate::env::{self, Env};
use crate::http::{Authorization, HttpError, SignRequest};
use crate::location::{AZURITE_ACCOUNT, RemoteLocation};
use crate::secret::Secret;

/// Azurite's well-known key for `devstoreaccount1` (published in Azurite's README; not a
/// secret).
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// How every request of a [`super::BlobClient`] is authorised. Cheap to clone.
#[derive(Clone, Debug)]
pub enum BlobAuth {
    /// `Authorization: Bearer` from the credential chain ([`crate::auth`]).
    Bearer,
    /// A SAS token in the query of every request.
    Sas(Arc<Sas>),
    /// A Shared Key signature on every request.
    SharedKey(Arc<SharedKey>),
}

impl BlobAuth {
    /// A SAS token, with or without its leading `?`.
    pub fn sas(token: Secret) -> Self {
        BlobAuth::Sas(Arc::new(Sas::new(token)))
    }

    /// Shared Key for `account` with its base64 key.
    pub fn shared_key(account: &str, key: &Secret) -> Result<Self, BlobError> {
        Ok(BlobAuth::SharedKey(Arc::new(SharedKey::new(account, key)?)))
    }

    /// Azurite's well-known account and key.
    pub fn azurite() -> Self {
        BlobAuth::SharedKey(Arc::new(SharedKey::azurite()))
    }

    /// Chooses the authorisation for `loc`, first that applies:
    ///
    /// 1. a SAS from the URL (`sas_from_url`, see [`RemoteLocation::parse_with_sas`]);
    /// 2. `AZURE_STORAGE_SAS_TOKEN`;
    /// 3. `AZURE_STORAGE_CONNECTION_STRING` (its SAS, or its account key, or Azurite's);
    /// 4. `AZURE_STORAGE_KEY` (account from the URL, or `AZURE_STORAGE_ACCOUNT`);
    /// 5. Azurite's well-known key for a URL naming `devstoreaccount1`;
    /// 6. a bearer token from the credential chain.
    pub fn from_env(
        env: &Env,
        loc: &RemoteLocation,
        sas_from_url: Option<Secret>,
    ) -> Result<Self, BlobError> {
        if let Some(sas) = sas_from_url {
            return Ok(Self::sas(sas));
        }
        if let Some(sas) = env.get(env::AZURE_STORAGE_SAS_TOKEN) {
            return Ok(Self::sas(Secret::new(sas)));
        }
        if let Some(cs) = env.get(env::AZURE_STORAGE_CONNECTION_STRING) {
            let cs = ConnectionString::parse(&cs);
            if let Some(sas) = cs.sas {
                return Ok(Self::sas(sas));
            }
            if cs.development {
                return Ok(Self::azurite());
            }
            let Some(key) = cs.key else {
                return Err(BlobError::BadConnectionString);
            };
            let account = match (cs.account, loc.account()) {
                (Some(configured), Some(url)) if configured != url => {
                    return Err(BlobError::AccountMismatch {
                        var: env::AZURE_STORAGE_CONNECTION_STRING,
                        configured,
                        url: url.to_string(),
                    });
                }
                (Some(account), _) => account,
                (None, Some(url)) => url.to_string(),
                (None, None) => return Err(BlobError::NoAccount),
            };
            return Self::shared_key(&account, &key).map_err(|_| BlobError::BadKey {
                var: env::AZURE_STORAGE_CONNECTION_STRING,
            });
        }
        if let Some(key) = env.get(env::AZURE_STORAGE_KEY) {
            let account = match (env.get(env::AZURE_STORAGE_ACCOUNT), loc.account()) {
                (Some(configured), Some(url)) if configured != url => {
                    return Err(BlobError::AccountMismatch {
                        var: env::AZURE_STORAGE_ACCOUNT,
                        configured,
                        url: url.to_string(),
                    });
                }
                (Some(account), _) => account,
                (None, Some(url)) => url.to_string(),
                (None, None) => return Err(BlobError::NoAccount),
            };
            return Self::shared_key(&account, &Secret::new(key));
        }
        if loc.account() == Some(AZURITE_ACCOUNT) {
            return Ok(Self::azurite());
        }
        Ok(BlobAuth::Bearer)
    }

    /// What authorises requests, for messages (`SAS token`, `Shared Key for account x`…).
    pub fn describe(&self) -> String {
        match self {
            BlobAuth::Bearer => "a bearer token".into(),
            BlobAuth::Sas(_) => "a SAS token".into(),
            BlobAuth::SharedKey(k) => format!("the Shared Key of account {}", k.account),
        }
    }

    pub(crate) fn authorization(&self) -> Authorization<'_> {
        match self {
            BlobAuth::Bearer => Authorization::Bearer(STORAGE_SCOPE),
            BlobAuth::Sas(sas) => Authorization::Signed(sas.as_ref()),
            BlobAuth::SharedKey(key) => Authorization::Signed(key.as_ref()),
        }
    }

    /// `err` with any trace of the SAS removed from its text (a service may echo the query).
    pub(crate) fn redact(&self, err: HttpError) -> HttpError {
        let BlobAuth::Sas(sas) = self else {
            return err;
        };
        match err {
            HttpError::Status(mut s) => {
                s.url = sas.scrub(&s.url);
                s.message = s.message.map(|m| sas.scrub(&m));
                HttpError::Status(s)
            }
            HttpError::Transport {
                method,
                url,
                message,
                cause,
                attempts,
            } => HttpError::Transport {
                method,
                url: sas.scrub(&url),
                message: sas.scrub(&message),
                cause,
                attempts,
            },
            other => other,
        }
    }
}

/// A SAS token: appended to the query of each request.
pub struct Sas {
    token: Secret,
}

impl Sas {
    pub fn new(token: Secret) -> Self {
        let trimmed = token.expose().trim().trim_start_matches('?').to_string();
        Self {
            token: Secret::new(trimmed),
        }
    }

    /// Replaces the token, and its signature in any encoding, with `REDACTED`.
    fn scrub(&self, text: &str) -> String {
        let mut out = text.replace(self.token.expose(), "REDACTED");
        for part in self.token.expose().split('&') {
            if let Some(sig) = part.strip_prefix("sig=").filter(|s| s.len() >= 8) {
                out = out.replace(sig, "REDACTED");
                let decoded = percent_encoding::percent_decode_str(sig).decode_utf8_lossy();
                if decoded.len() >= 8 {
                    out = out.replace(decoded.as_ref(), "REDACTED");
                }
            }
        }
        out
    }
}

impl std::fmt::Debug for Sas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sas(***)")
    }
}

impl SignRequest for Sas {
    fn sign(&self, request: &mut reqwest::Request) {
        let url = request.url_mut();
        let query = match url.query() {
            Some(q) if !q.is_empty() => format!("{q}&{}", self.token.expose()),
            _ => self.token.expose().to_string(),
        };
        url.set_query(Some(&query));
    }
}

/// An account name and its key; signs requests with Shared Key.
pub struct SharedKey {
    account: String,
    key: Vec<u8>,
}

impl SharedKey {
    /// `key` is the base64 account key as the portal shows it.
    pub fn new(account: &str, key: &Secret) -> Result<Self, BlobError> {
        let key = B64
            .decode(key.expose().trim())
            .ok()
            .filter(|k| !k.is_empty())
            .ok_or(BlobError::BadKey {
                var: env::AZURE_STORAGE_KEY,
            })?;
        Ok(Self {
            account: account.to_string(),
            key,
        })
    }

    pub fn azurite() -> Self {
        Self {
            account: AZURITE_ACCOUNT.to_string(),
            key: B64.decode(AZURITE_KEY).unwrap_or_default(),
        }
    }

    pub fn account(&self) -> &str {
        &self.account
    }

    /// The canonical string Shared Key signs (2009-09-19 and later).
    fn string_to_sign(&self, request: &reqwest::Request) -> String {
        let headers = request.headers();
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
        };
        let length = match headers.get("content-length").and_then(|v| v.to_str().ok()) {
            Some(v) => v.to_string(),
            None => request
                .body()
                .and_then(|b| b.as_bytes())
                .map(|b| b.len().to_string())
                .unwrap_or_default(),
        };
        let mut out = String::with_capacity(256);
        out.push_str(request.method().as_str());
        out.push('\n');
        for value in [
            header("content-encoding"),
            header("content-language"),
            if length == "0" { "" } else { &length },
            header("content-md5"),
            header("content-type"),
            header("date"),
            header("if-modified-since"),
            header("if-match"),
            header("if-none-match"),
            header("if-unmodified-since"),
            header("range"),
        ] {
            out.push_str(value);
            out.push('\n');
        }
        let mut ms: Vec<(String, String)> = headers
            .iter()
            .filter(|(k, _)| k.as_str().starts_with("x-ms-"))
            .map(|(k, v)| {
                let value = v.to_str().unwrap_or("");
                let value = value.split_whitespace().collect::<Vec<_>>().join(" ");
                (k.as_str().to_string(), value)
            })
            .collect();
        ms.sort();
        for (k, v) in ms {
            out.push_str(&k);
            out.push(':');
            out.push_str(&v);
            out.push('\n');
        }
        out.push('/');
        out.push_str(&self.account);
        out.push_str(request.url().path());
        let mut params: Vec<(String, String)> = request
            .url()
            .query_pairs()
            .map(|(k, v)| (k.to_lowercase(), v.into_owned()))
            .collect();
        params.sort();
        let mut i = 0;
        while i < params.len() {
            let name = params[i].0.clone();
            let mut values = Vec::new();
            while i < params.len() && params[i].0 == name {
                values.push(params[i].1.clone());
                i += 1;
            }
            out.push('\n');
            out.push_str(&name);
            out.push(':');
            out.push_str(&values.join(","));
        }
        out
    }
}

impl std::fmt::Debug for SharedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedKey")
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

impl SignRequest for SharedKey {
    fn sign(&self, request: &mut reqwest::Request) {
        let date = httpdate::fmt_http_date(SystemTime::now());
        if let Ok(v) = HeaderValue::from_str(&date) {
            request.headers_mut().insert("x-ms-date", v);
        }
        let to_sign = self.string_to_sign(request);
        let signature = hmac_sha256(&self.key, to_sign.as_bytes());
        let value = format!("SharedKey {}:{}", self.account, B64.encode(signature));
        if let Ok(mut v) = HeaderValue::from_str(&value) {
            v.set_sensitive(true);
            request.headers_mut().insert(AUTHORIZATION, v);
        }
    }
}

/// HMAC-SHA256 of `data` under `key`.
pub(crate) fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// The parts of an Azure Storage connection string fabric-remote uses.
struct ConnectionString {
    account: Option<String>,
    key: Option<Secret>,
    sas: Option<Secret>,
    development: bool,
}

impl ConnectionString {
    /// `Key=Value;Key=Value`, keys case-insensitive; values may contain `=` (base64).
    fn parse(text: &str) -> Self {
        let mut out = ConnectionString {
            account: None,
            key: None,
            sas: None,
            development: false,
        };
        for part in text.split(';') {
            let Some((k, v)) = part.split_once('=') else {
                continue;
            };
            let v = v.trim();
            match k.trim().to_ascii_lowercase().as_str() {
                "accountname" => out.account = Some(v.to_string()),
                "accountkey" => out.key = Some(Secret::new(v)),
                "sharedaccesssignature" => out.sas = Some(Secret::new(v)),
                "usedevelopmentstorage" => out.development = v.eq_ignore_ascii_case("true"),
                _ => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_map(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<HashMap<_, _>>(),
        )
    }

    fn loc(s: &str) -> RemoteLocation {
        RemoteLocation::parse(s).unwrap()
    }

    #[test]
    fn string_to_sign_follows_the_documented_layout() {
        let key = SharedKey::azurite();
        let mut req = reqwest::Request::new(
            reqwest::Method::PUT,
            "http://127.0.0.1:10000/devstoreaccount1/c/a%20b?comp=block&blockid=QUJD%3D%3D"
                .parse()
                .unwrap(),
        );
        let h = req.headers_mut();
        h.insert("x-ms-version", HeaderValue::from_static("2023-11-03"));
        h.insert(
            "x-ms-date",
            HeaderValue::from_static("Mon, 01 Jan 2024 00:00:00 GMT"),
        );
        h.insert("x-ms-meta-Note", HeaderValue::from_static("a   b"));
        h.insert("content-md5", HeaderValue::from_static("bWQ1"));
        h.insert("content-length", HeaderValue::from_static("3"));
        assert_eq!(
            key.string_to_sign(&req),
            "PUT\n\n\n3\nbWQ1\n\n\n\n\n\n\n\n\
             x-ms-date:Mon, 01 Jan 2024 00:00:00 GMT\nx-ms-meta-note:a b\nx-ms-version:2023-11-03\n\
             /devstoreaccount1/devstoreaccount1/c/a%20b\nblockid:QUJD==\ncomp:block"
        );
        // A zero length signs as empty.
        let req = reqwest::Request::new(reqwest::Method::GET, "http://h/acct/c".parse().unwrap());
        assert!(key.string_to_sign(&req).starts_with("GET\n\n\n\n"));
    }

    #[test]
    fn signing_sets_date_and_authorization() {
        let key = SharedKey::azurite();
        let mut req = reqwest::Request::new(
            reqwest::Method::GET,
            "http://h/devstoreaccount1/c".parse().unwrap(),
        );
        key.sign(&mut req);
        assert!(req.headers().contains_key("x-ms-date"));
        let auth = req.headers()["authorization"].to_str().unwrap().to_string();
        assert!(auth.starts_with("SharedKey devstoreaccount1:"), "{auth}");
        let expected = B64.encode(hmac_sha256(
            &B64.decode(AZURITE_KEY).unwrap(),
            key.string_to_sign(&req).as_bytes(),
        ));
        assert_eq!(auth, format!("SharedKey devstoreaccount1:{expected}"));
        assert!(!format!("{key:?}").contains("Eby8"));
    }

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            mac.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn sas_goes_into_the_query_and_never_into_debug() {
        let sas = Sas::new(Secret::new("?sv=2023-11-03&sp=rl&sig=abcdefgh%2Bijk%3D"));
        let mut req = reqwest::Request::new(
            reqwest::Method::GET,
            "http://h/c?comp=list".parse().unwrap(),
        );
        sas.sign(&mut req);
        assert_eq!(
            req.url().query(),
            Some("comp=list&sv=2023-11-03&sp=rl&sig=abcdefgh%2Bijk%3D")
        );
        assert_eq!(format!("{sas:?}"), "Sas(***)");
        assert_eq!(
            sas.scrub("x sig=abcdefgh%2Bijk%3D y abcdefgh+ijk= z"),
            "x sig=REDACTED y REDACTED z"
        );
    }

    #[test]
    fn choice_from_the_environment() {
        let blob = loc("https://acct.blob.core.windows.net/c/p");
        let azurite = loc("http://127.0.0.1:10000/devstoreaccount1/c");
        let custom = loc("http://127.0.0.1:1/ws/lake.Lakehouse/Files");
        let kind = |a: BlobAuth| a.describe();
        assert_eq!(
            kind(BlobAuth::from_env(&env(&[]), &blob, None).unwrap()),
            "a bearer token"
        );
        assert_eq!(
            kind(BlobAuth::from_env(&env(&[]), &azurite, None).unwrap()),
            "the Shared Key of account devstoreaccount1"
        );
        assert_eq!(
            kind(
                BlobAuth::from_env(&env(&[("AZURE_STORAGE_KEY", AZURITE_KEY)]), &blob, None)
                    .unwrap()
            ),
            "the Shared Key of account acct"
        );
        assert_eq!(
            kind(
                BlobAuth::from_env(
                    &env(&[("AZURE_STORAGE_KEY", AZURITE_KEY)]),
                    &blob,
                    Some(Secret::new("sv=1&sig=x"))
                )
                .unwrap()
            ),
            "a SAS token"
        );
        assert!(matches!(
            BlobAuth::from_env(&env(&[("AZURE_STORAGE_KEY", AZURITE_KEY)]), &custom, None),
            Err(BlobError::NoAccount)
        ));
        assert!(matches!(
            BlobAuth::from_env(&env(&[("AZURE_STORAGE_KEY", "not base64!")]), &blob, None),
            Err(BlobError::BadKey { .. })
        ));
        let cs = format!(
            "DefaultEndpointsProtocol=https;AccountName=other;AccountKey={AZURITE_KEY};EndpointSuffix=core.windows.net"
        );
        let e = BlobAuth::from_env(
            &env(&[("AZURE_STORAGE_CONNECTION_STRING", &cs)]),
            &blob,
            None,
        )
        .unwrap_err();
        assert!(matches!(e, BlobError::AccountMismatch { .. }));
        assert!(!e.to_string().contains("Eby8"), "{e}");
        assert_eq!(
            kind(
                BlobAuth::from_env(
                    &env(&[(
                        "AZURE_STORAGE_CONNECTION_STRING",
                        "UseDevelopmentStorage=true"
                    )]),
                    &custom,
                    None
                )
                .unwrap()
            ),
            "the Shared Key of account devstoreaccount1"
        );
        assert_eq!(
            kind(
                BlobAuth::from_env(
                    &env(&[("AZURE_STORAGE_CONNECTION_STRING", "BlobEndpoint=https://a.blob.core.windows.net/;SharedAccessSignature=sv=1&sig=x")]),
                    &custom,
                    None
                )
                .unwrap()
            ),
            "a SAS token"
        );
    }
}
