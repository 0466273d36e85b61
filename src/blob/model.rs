//! What the Blob API sends back, read leniently: a List Blobs page (`<EnumerationResults>`)
//! becomes [`BlobEntry`]s and the next marker. Unknown elements and attributes are ignored,
//! missing optional ones are absent, ETags lose their quotes, `Last-Modified` is RFC 1123,
//! `Content-MD5` is base64, and a `<Name Encoded="true">` is percent-decoded. Also builds the
//! one XML body we send (Put Block List).

use std::collections::BTreeMap;
use std::time::SystemTime;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use quick_xml::events::Event;

use crate::storage::normalize_etag;

/// User metadata of a blob (`x-ms-meta-<name>`): names are case-insensitive on the service
/// and come back as it stores them.
pub type Metadata = BTreeMap<String, String>;

/// One blob of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobEntry {
    /// The blob's name within its container (`dir/sub/file.py`).
    pub name: String,
    pub size: u64,
    /// The ETag without quotes, empty if the service sent none.
    pub etag: String,
    pub last_modified: Option<SystemTime>,
    /// The blob's stored MD5 (set by Put Blob; absent for blobs committed from blocks).
    pub content_md5: Option<[u8; 16]>,
    pub metadata: Metadata,
    /// A directory of a hierarchical namespace (`ResourceType` = `directory`, or the
    /// `hdi_isfolder` marker some tools write).
    pub is_directory: bool,
}

/// Properties from Get Blob Properties (HEAD).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobProperties {
    pub size: u64,
    pub etag: String,
    pub last_modified: Option<SystemTime>,
    pub content_md5: Option<[u8; 16]>,
    pub metadata: Metadata,
}

/// Why a listing page could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ModelError(String);

/// Parses one List Blobs body into its entries and the next marker (absent or empty = last
/// page).
pub fn parse_list(body: &[u8]) -> Result<(Vec<BlobEntry>, Option<String>), ModelError> {
    let body = body.strip_prefix("\u{feff}".as_bytes()).unwrap_or(body);
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut stack: Vec<String> = Vec::new();
    let mut text = String::new();
    let mut entries = Vec::new();
    let mut next_marker = None;
    let mut blob: Option<RawBlob> = None;
    let mut name_encoded = false;
    let mut saw_root = false;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| ModelError(format!("not valid XML: {e}")))?;
        match event {
            Event::Start(tag) => {
                let name = tag.local_name().as_ref().to_string();
                if stack.is_empty() {
                    if name != "EnumerationResults" {
                        return Err(ModelError(format!(
                            "expected <EnumerationResults>, found <{name}>"
                        )));
                    }
                    saw_root = true;
                }
                if name == "Blob" && stack.last().map(String::as_str) == Some("Blobs") {
                    blob = Some(RawBlob::default());
                }
                if name == "Name" {
                    name_encoded = tag.attributes().flatten().any(|a| {
                        a.key.local_name().as_ref() == "Encoded"
                            && a.value.as_ref().eq_ignore_ascii_case("true")
                    });
                }
                stack.push(name);
                text.clear();
            }
            Event::Empty(tag) if stack.is_empty() => {
                return Err(ModelError(format!(
                    "expected <EnumerationResults>, found <{}/>",
                    tag.local_name().as_ref()
                )));
            }
            Event::Text(t) => text.push_str(&t.xml10_content()),
            Event::CData(t) => text.push_str(&t.xml10_content()),
            Event::GeneralRef(r) => match r.resolve_char_ref() {
                Ok(Some(c)) => text.push(c),
                _ => {
                    let name = r.xml10_content();
                    match quick_xml::escape::resolve_predefined_entity(&name) {
                        Some(s) => text.push_str(s),
                        None => return Err(ModelError(format!("unknown entity `&{name};`"))),
                    }
                }
            },
            Event::End(_) => {
                let Some(name) = stack.pop() else {
                    return Err(ModelError("an element closes that never opened".into()));
                };
                let parent = stack.last().map(String::as_str);
                let value = std::mem::take(&mut text);
                match (&mut blob, parent, name.as_str()) {
                    (Some(b), Some("Blob"), "Name") => {
                        b.name = Some(if name_encoded {
                            percent_encoding::percent_decode_str(&value)
                                .decode_utf8_lossy()
                                .into_owned()
                        } else {
                            value
                        });
                    }
                    (Some(b), Some("Properties"), field) => b.property(field, value),
                    (Some(b), Some("Metadata"), key) => {
                        b.metadata.insert(key.to_string(), value);
                    }
                    (Some(_), Some("Blobs"), "Blob") => {
                        if let Some(raw) = blob.take() {
                            entries.push(raw.finish()?);
                        }
                    }
                    (_, Some("EnumerationResults"), "NextMarker") => {
                        next_marker = Some(value.trim().to_string()).filter(|m| !m.is_empty());
                    }
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !saw_root {
        return Err(ModelError("the body is empty".into()));
    }
    if !stack.is_empty() {
        return Err(ModelError("the body ends before the listing does".into()));
    }
    Ok((entries, next_marker))
}

#[derive(Default)]
struct RawBlob {
    name: Option<String>,
    size: Option<String>,
    etag: Option<String>,
    last_modified: Option<String>,
    content_md5: Option<String>,
    resource_type: Option<String>,
    metadata: Metadata,
}

impl RawBlob {
    fn property(&mut self, field: &str, value: String) {
        match field {
            "Content-Length" => self.size = Some(value),
            "Etag" | "ETag" => self.etag = Some(value),
            "Last-Modified" => self.last_modified = Some(value),
            "Content-MD5" => self.content_md5 = Some(value),
            "ResourceType" => self.resource_type = Some(value),
            _ => {}
        }
    }

    fn finish(self) -> Result<BlobEntry, ModelError> {
        let name = self
            .name
            .filter(|n| !n.is_empty())
            .ok_or_else(|| ModelError("a <Blob> has no <Name>".into()))?;
        let size = match self.size.as_deref().map(str::trim) {
            None | Some("") => 0,
            Some(s) => s
                .parse()
                .map_err(|_| ModelError(format!("{name}: Content-Length = {s}")))?,
        };
        let is_directory = self
            .resource_type
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("directory"))
            || self
                .metadata
                .iter()
                .any(|(k, v)| k.eq_ignore_ascii_case("hdi_isfolder") && v.trim() == "true");
        Ok(BlobEntry {
            name,
            size,
            etag: self.etag.as_deref().map(normalize_etag).unwrap_or_default(),
            last_modified: self
                .last_modified
                .as_deref()
                .and_then(|s| httpdate::parse_http_date(s.trim()).ok()),
            content_md5: self.content_md5.as_deref().and_then(decode_md5),
            metadata: self.metadata,
            is_directory,
        })
    }
}

/// A base64 MD5 as the service sends it; anything else is treated as absent.
pub fn decode_md5(b64: &str) -> Option<[u8; 16]> {
    B64.decode(b64.trim()).ok()?.try_into().ok()
}

/// The Put Block List body committing `ids` (base64 block ids) in order.
pub fn block_list_xml(ids: &[String]) -> String {
    let mut out = String::with_capacity(64 + ids.len() * 48);
    out.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>");
    for id in ids {
        out.push_str("<Latest>");
        out.push_str(&quick_xml::escape::escape(id.as_str()));
        out.push_str("</Latest>");
    }
    out.push_str("</BlockList>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    /// The shape Azure Storage documents for List Blobs (version 2023-11-03), with an HNS
    /// directory, metadata, a `&amp;` in a name and fields we do not read.
    const PAGE: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<EnumerationResults ServiceEndpoint="https://acct.blob.core.windows.net/" ContainerName="c">
  <Prefix>proj/</Prefix><MaxResults>3</MaxResults>
  <Blobs>
    <Blob>
      <Name>proj/a&amp;b.py</Name>
      <Properties>
        <Creation-Time>Tue, 07 Mar 2023 21:43:39 GMT</Creation-Time>
        <Last-Modified>Tue, 07 Mar 2023 21:43:39 GMT</Last-Modified>
        <Etag>0x8DB1F5503B1A07D</Etag>
        <Content-Length>11</Content-Length>
        <Content-Type>application/octet-stream</Content-Type>
        <Content-MD5>XrY7u+Ae7tCTyyK7j1rNww==</Content-MD5>
        <BlobType>BlockBlob</BlobType>
        <AccessTier>Hot</AccessTier>
        <FutureField><Nested>1</Nested></FutureField>
      </Properties>
      <Metadata><mtime>2023-03-07T21:43:39.123Z</mtime><Sha256>abc</Sha256></Metadata>
      <OrMetadata />
    </Blob>
    <Blob>
      <Name>proj/sub</Name>
      <Properties><Etag>"0x1"</Etag><Content-Length>0</Content-Length><ResourceType>directory</ResourceType></Properties>
    </Blob>
    <Blob><Name Encoded="true">proj/%EF%BF%BEodd</Name><Properties><Content-Length></Content-Length></Properties></Blob>
  </Blobs>
  <NextMarker>2!88!MDAwMDE2IXByb2ovc3ViITAwMDAyOCE5OTk5LTEyLTMxVDIzOjU5OjU5Ljk5OTk5OTlaIQ--</NextMarker>
</EnumerationResults>"#;

    #[test]
    fn documented_page() {
        let (v, next) = parse_list(PAGE.as_bytes()).unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].name, "proj/a&b.py");
        assert_eq!(v[0].size, 11);
        assert_eq!(v[0].etag, "0x8DB1F5503B1A07D");
        assert_eq!(
            v[0].last_modified,
            Some(UNIX_EPOCH + Duration::from_secs(1_678_225_419))
        );
        // md5("hello world")
        assert_eq!(
            v[0].content_md5
                .map(|m| m.iter().map(|b| format!("{b:02x}")).collect::<String>()),
            Some("5eb63bbbe01eeed093cb22bb8f5acdc3".into())
        );
        assert_eq!(v[0].metadata["mtime"], "2023-03-07T21:43:39.123Z");
        assert_eq!(v[0].metadata["Sha256"], "abc");
        assert!(!v[0].is_directory);
        assert!(v[1].is_directory);
        assert_eq!(v[1].etag, "0x1");
        assert_eq!(v[2].name, "proj/\u{fffe}odd");
        assert_eq!(v[2].size, 0);
        assert!(next.unwrap().starts_with("2!88!"));
    }

    #[test]
    fn last_page_and_empty_container() {
        let body = r#"<?xml version="1.0" encoding="utf-8"?><EnumerationResults><Blobs /><NextMarker /></EnumerationResults>"#;
        assert_eq!(parse_list(body.as_bytes()).unwrap(), (vec![], None));
        let body = "\u{feff}<EnumerationResults><Blobs><Blob><Name>x</Name></Blob></Blobs><NextMarker></NextMarker></EnumerationResults>";
        let (v, next) = parse_list(body.as_bytes()).unwrap();
        assert_eq!((v.len(), next), (1, None));
        assert_eq!(v[0].content_md5, None);
        assert_eq!(v[0].etag, "");
    }

    #[test]
    fn hdi_isfolder_marks_a_directory() {
        let body = "<EnumerationResults><Blobs><Blob><Name>d</Name><Metadata><hdi_isfolder>true</hdi_isfolder></Metadata></Blob></Blobs></EnumerationResults>";
        assert!(parse_list(body.as_bytes()).unwrap().0[0].is_directory);
    }

    #[test]
    fn malformed_pages_are_errors() {
        for body in [
            "",
            "{\"paths\":[]}",
            "<Error><Code>X</Code></Error>",
            "<EnumerationResults><Blobs><Blob><Name>x</Name>",
            "<EnumerationResults><Blobs><Blob><Properties/></Blob></Blobs></EnumerationResults>",
            "<EnumerationResults><Blobs><Blob><Name>x</Name><Properties><Content-Length>many</Content-Length></Properties></Blob></Blobs></EnumerationResults>",
        ] {
            assert!(parse_list(body.as_bytes()).is_err(), "{body}");
        }
    }

    #[test]
    fn block_list_body() {
        assert_eq!(
            block_list_xml(&["QQ==".into(), "Qg==".into()]),
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList><Latest>QQ==</Latest><Latest>Qg==</Latest></BlockList>"
        );
    }
}
