//! Integration tests: a started [`Emulator`] driven over real HTTP.

mod blob;
mod dfs;
mod fabric;
mod faults;
mod fixes;
mod listing;

use fabric_emulator::{Config, Emulator};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::{Method, RequestBuilder, Response};

/// Everything but RFC 3986 unreserved characters.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

pub const VERSION: &str = "2023-11-03";
pub const TOKEN: &str = "test-token";

pub fn enc(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// A thin DFS client for tests: names are percent-encoded per segment.
pub struct Dfs {
    pub emu: Emulator,
    pub http: reqwest::Client,
    pub token: String,
}

impl Dfs {
    pub fn start(config: Config) -> Dfs {
        Dfs {
            emu: Emulator::start(config).expect("start emulator"),
            http: reqwest::Client::new(),
            token: TOKEN.to_owned(),
        }
    }

    pub fn new() -> Dfs {
        Dfs::start(Config::default())
    }
}

impl Default for Dfs {
    fn default() -> Self {
        Dfs::new()
    }
}

impl Dfs {
    /// URL of `/<fs>/<segments…>`, each segment encoded.
    pub fn url(&self, fs: &str, path: &str) -> String {
        let mut u = format!("{}/{}", self.emu.url(), enc(fs));
        for seg in path.split('/').filter(|s| !s.is_empty()) {
            u.push('/');
            u.push_str(&enc(seg));
        }
        u
    }

    /// A request to `/My Workspace/lake.Lakehouse/<path>` with auth and version.
    pub fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.raw(
            method,
            &self.url("My Workspace", &format!("lake.Lakehouse/{path}")),
        )
    }

    pub fn raw(&self, method: Method, url: &str) -> RequestBuilder {
        self.http
            .request(method, url)
            .bearer_auth(&self.token)
            .header("x-ms-version", VERSION)
    }

    pub async fn create(&self, path: &str) -> Response {
        self.req(Method::PUT, path)
            .query(&[("resource", "file")])
            .header("content-length", "0")
            .send()
            .await
            .unwrap()
    }

    pub async fn mkdir(&self, path: &str) -> Response {
        self.req(Method::PUT, path)
            .query(&[("resource", "directory")])
            .header("content-length", "0")
            .send()
            .await
            .unwrap()
    }

    pub async fn append(&self, path: &str, position: u64, data: &[u8], flush: bool) -> Response {
        let mut q = vec![
            ("action", "append".to_owned()),
            ("position", position.to_string()),
        ];
        if flush {
            q.push(("flush", "true".to_owned()));
        }
        self.req(Method::PATCH, path)
            .query(&q)
            .body(data.to_vec())
            .send()
            .await
            .unwrap()
    }

    pub async fn flush(&self, path: &str, position: u64) -> Response {
        self.req(Method::PATCH, path)
            .query(&[
                ("action", "flush".to_owned()),
                ("position", position.to_string()),
            ])
            .header("content-length", "0")
            .send()
            .await
            .unwrap()
    }

    /// create + append(flush=true); returns the flush ETag.
    pub async fn upload(&self, path: &str, data: &[u8]) -> String {
        let r = self.create(path).await;
        assert_eq!(r.status(), 201, "create {path}");
        if data.is_empty() {
            return header(&r, "etag");
        }
        let r = self.append(path, 0, data, true).await;
        assert_eq!(r.status(), 202, "append {path}");
        header(&r, "etag")
    }

    pub async fn get(&self, path: &str) -> Response {
        self.req(Method::GET, path).send().await.unwrap()
    }

    pub async fn head(&self, path: &str) -> Response {
        self.req(Method::HEAD, path).send().await.unwrap()
    }

    pub async fn delete(&self, path: &str, query: &[(&str, &str)]) -> Response {
        self.req(Method::DELETE, path)
            .query(query)
            .send()
            .await
            .unwrap()
    }

    /// `GET /My Workspace?resource=filesystem&…`
    pub async fn list(&self, query: &[(&str, &str)]) -> Response {
        let mut q = vec![("resource", "filesystem")];
        q.extend_from_slice(query);
        self.raw(Method::GET, &self.url("My Workspace", ""))
            .query(&q)
            .send()
            .await
            .unwrap()
    }

    /// Every name of a listing, following continuations.
    pub async fn list_all(&self, query: &[(&str, &str)]) -> (Vec<serde_json::Value>, usize) {
        let mut all = Vec::new();
        let mut pages = 0;
        let mut token: Option<String> = None;
        loop {
            let mut q: Vec<(&str, &str)> = query.to_vec();
            if let Some(t) = &token {
                q.push(("continuation", t.as_str()));
            }
            let r = self.list(&q).await;
            assert_eq!(r.status(), 200);
            pages += 1;
            token = r
                .headers()
                .get("x-ms-continuation")
                .map(|v| v.to_str().unwrap().to_owned());
            let body: serde_json::Value = r.json().await.unwrap();
            all.extend(body["paths"].as_array().unwrap().iter().cloned());
            if token.is_none() {
                return (all, pages);
            }
        }
    }
}

pub fn header(r: &Response, name: &str) -> String {
    r.headers()
        .get(name)
        .unwrap_or_else(|| panic!("missing header {name}"))
        .to_str()
        .unwrap()
        .to_owned()
}

/// The error code of a storage error response, checking header and body agree.
pub async fn error_code(r: Response) -> (u16, String) {
    let status = r.status().as_u16();
    let code = header(&r, "x-ms-error-code");
    assert_eq!(
        header(&r, "content-type"),
        "application/json; charset=utf-8"
    );
    let request_id = header(&r, "x-ms-request-id");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], code.as_str());
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("\nRequestId:{request_id}\nTime:")),
        "{message}"
    );
    (status, code)
}

/// Sends a raw HTTP/1.1 request line (so `..` and `//` reach the server untouched).
pub fn raw_http(emu: &Emulator, method: &str, target: &str) -> String {
    use std::io::{Read, Write};
    let addr = emu.url().trim_start_matches("http://").to_owned();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "{method} {target} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\nx-ms-version: {VERSION}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}
