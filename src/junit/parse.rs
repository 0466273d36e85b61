//! Reads a pytest junit XML file (xunit1 or xunit2) into a [`Document`] of [`Row`]s.
//!
//! A *row* is one `<testcase>` element, kept as written: attributes, `<failure>`, `<error>`
//! and `<skipped>` children with their message, type and body, `<system-out>` /
//! `<system-err>` text and `<properties>`. Duplicate rows (pytest writes two for a call
//! failure plus a teardown error) stay separate here; [`super::map`] merges them.
//! Nothing here decides outcomes.

use std::borrow::Cow;

use quick_xml::Reader;
use quick_xml::XmlVersion;
use quick_xml::events::{BytesStart, Event};

use super::Error;

/// A parsed junit XML file.
#[derive(Debug, Clone, Default)]
pub struct Document {
    /// Every `<testsuite>`, in document order (nested suites flattened).
    pub suites: Vec<Suite>,
    /// Every `<testcase>`, in document order, whatever suite holds it.
    pub rows: Vec<Row>,
}

/// One `<testsuite>`'s attributes.
#[derive(Debug, Clone, Default)]
pub struct Suite {
    pub name: Option<String>,
    pub tests: Option<u64>,
    pub failures: Option<u64>,
    pub errors: Option<u64>,
    pub skipped: Option<u64>,
    /// Seconds; pytest writes the whole session's duration here.
    pub time: Option<f64>,
    pub timestamp: Option<String>,
    pub hostname: Option<String>,
    pub properties: Vec<(String, String)>,
}

/// One `<testcase>` element.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row {
    pub classname: String,
    pub name: String,
    /// xunit1 only: the file defining the test function (rootdir-relative).
    pub file: Option<String>,
    /// xunit1 only: 0-based line of the test function.
    pub line: Option<u64>,
    pub time: Option<f64>,
    /// Any other attribute (`url`, `record_xml_attribute` extras).
    pub attributes: Vec<(String, String)>,
    pub properties: Vec<(String, String)>,
    /// `<failure>`, `<error>` and `<skipped>` children, in order.
    pub children: Vec<Child>,
    pub system_out: Vec<String>,
    pub system_err: Vec<String>,
}

/// Which outcome element a [`Child`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildKind {
    Failure,
    Error,
    Skipped,
}

/// A `<failure>`, `<error>` or `<skipped>` element.
#[derive(Debug, Clone, PartialEq)]
pub struct Child {
    pub kind: ChildKind,
    pub message: Option<String>,
    pub type_: Option<String>,
    /// The element's text (pytest's full `longrepr`, or `path:line: reason` for skips).
    pub text: String,
}

/// The family a document looks like. xunit2 writes no `file` attribute; a document without
/// any `<testcase>` is reported as xunit2 too, since nothing tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Xunit1,
    Xunit2,
}

impl Document {
    /// xunit1 if any row carries a `file` attribute.
    pub fn family(&self) -> Family {
        if self.rows.iter().any(|r| r.file.is_some()) {
            Family::Xunit1
        } else {
            Family::Xunit2
        }
    }

    /// The session duration: the suites' `time` summed, else the rows' `time` summed.
    pub fn duration(&self) -> Option<f64> {
        let suites: Vec<f64> = self.suites.iter().filter_map(|s| s.time).collect();
        if !suites.is_empty() {
            return Some(suites.iter().sum());
        }
        let rows: Vec<f64> = self.rows.iter().filter_map(|r| r.time).collect();
        (!rows.is_empty()).then(|| rows.iter().sum())
    }
}

/// What the parser is inside of, innermost last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Suites,
    Suite,
    Case,
    Child,
    Out,
    Err,
    /// `<properties>`; `true` inside a testcase, `false` inside a suite.
    Properties(bool),
    Property(bool),
    Other,
}

/// Parses junit XML bytes. UTF-8 only (pytest always writes UTF-8); a BOM is allowed.
pub fn parse(bytes: &[u8]) -> Result<Document, Error> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(text) => parse_str(text),
        Err(err) => {
            let valid = std::str::from_utf8(&bytes[..err.valid_up_to()]).unwrap_or_default();
            let (line, column) = line_column(valid, valid.len());
            Err(Error::NotUtf8 { line, column })
        }
    }
}

/// Parses junit XML text.
pub fn parse_str(text: &str) -> Result<Document, Error> {
    if text.trim().is_empty() {
        return Err(Error::Empty);
    }
    Parser {
        text,
        reader: Reader::from_str(text),
        doc: Document::default(),
        stack: Vec::new(),
        seen_root: false,
        buf: String::new(),
        child: None,
        property: None,
        tag_start: 0,
    }
    .run()
}

struct Parser<'a> {
    text: &'a str,
    reader: Reader<&'a [u8]>,
    doc: Document,
    /// Open elements: what each is and the byte offset of its `<` (the name is read back
    /// from the text only for an error).
    stack: Vec<(Open, u64)>,
    seen_root: bool,
    /// Text of the innermost text-holding element.
    buf: String,
    child: Option<Child>,
    property: Option<(String, String)>,
    /// Byte offset of the tag being handled, for errors found in its attributes.
    tag_start: u64,
}

impl Parser<'_> {
    fn run(mut self) -> Result<Document, Error> {
        loop {
            let start = self.reader.buffer_position();
            self.tag_start = start;
            let event = match self.reader.read_event() {
                Ok(event) => event,
                Err(quick_xml::Error::Syntax(err)) => {
                    return Err(self.malformed(format!("{err}, so the file looks truncated")));
                }
                Err(err) => return Err(self.malformed(err.to_string())),
            };
            match event {
                Event::Start(tag) => {
                    let open = self.open(&tag)?;
                    self.stack.push((open, start));
                }
                Event::Empty(tag) => {
                    let open = self.open(&tag)?;
                    self.close(open);
                }
                Event::End(_) => {
                    if let Some((open, _)) = self.stack.pop() {
                        self.close(open);
                    }
                }
                Event::Text(t) => {
                    if self.collecting() {
                        self.buf.push_str(&t.xml10_content());
                    } else if !self.seen_root && !t.trim().is_empty() {
                        return Err(Error::NotJunit {
                            found: "text outside any element".to_owned(),
                        });
                    }
                }
                Event::CData(t) => {
                    if self.collecting() {
                        self.buf.push_str(&t.xml10_content());
                    }
                }
                Event::GeneralRef(r) => {
                    let resolved = match r.resolve_char_ref() {
                        Ok(Some(c)) => c.to_string(),
                        Ok(None) => {
                            let name = r.xml10_content();
                            match quick_xml::escape::resolve_predefined_entity(&name) {
                                Some(s) => s.to_owned(),
                                None => {
                                    return Err(
                                        self.malformed(format!("unknown entity `&{name};`"))
                                    );
                                }
                            }
                        }
                        Err(err) => return Err(self.malformed(err.to_string())),
                    };
                    if self.collecting() {
                        self.buf.push_str(&resolved);
                    }
                }
                Event::Eof => return self.finish(),
                Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
            }
        }
    }

    fn finish(self) -> Result<Document, Error> {
        if let Some((_, offset)) = self.stack.last() {
            let name: String = self
                .text
                .get(*offset as usize + 1..)
                .unwrap_or_default()
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != '>' && *c != '/')
                .collect();
            let (line, column) = line_column(self.text, self.text.len());
            let (open_line, open_column) = line_column(self.text, *offset as usize);
            return Err(Error::Malformed {
                line,
                column,
                message: format!(
                    "the file ends before <{name}> (opened at line {open_line}, column {open_column}) is closed, so it looks truncated"
                ),
            });
        }
        if !self.seen_root {
            return Err(Error::NotJunit {
                found: "no element at all".to_owned(),
            });
        }
        Ok(self.doc)
    }

    fn malformed(&self, message: String) -> Error {
        let (line, column) = line_column(self.text, self.reader.error_position() as usize);
        Error::Malformed {
            line,
            column,
            message,
        }
    }

    /// True while the innermost element's text is kept.
    fn collecting(&self) -> bool {
        matches!(
            self.stack.last(),
            Some((Open::Child | Open::Out | Open::Err | Open::Property(_), _))
        )
    }

    /// Handles an opening (or empty) tag and says what it is.
    fn open(&mut self, tag: &BytesStart<'_>) -> Result<Open, Error> {
        let local = tag.local_name();
        let name: &str = local.as_ref();
        if !self.seen_root {
            self.seen_root = true;
            return match name {
                "testsuites" => Ok(Open::Suites),
                "testsuite" => {
                    let suite = self.suite(tag)?;
                    self.doc.suites.push(suite);
                    Ok(Open::Suite)
                }
                _ => Err(Error::NotJunit {
                    found: format!("a <{name}> root element"),
                }),
            };
        }
        let parent = self.stack.last().map(|(open, _)| *open);
        Ok(match (parent, name) {
            (Some(Open::Suites | Open::Suite), "testsuite") => {
                let suite = self.suite(tag)?;
                self.doc.suites.push(suite);
                Open::Suite
            }
            (Some(Open::Suite), "testcase") => {
                let row = self.row(tag)?;
                self.doc.rows.push(row);
                Open::Case
            }
            (Some(Open::Case), "failure" | "error" | "skipped") => {
                let kind = match name {
                    "failure" => ChildKind::Failure,
                    "error" => ChildKind::Error,
                    _ => ChildKind::Skipped,
                };
                let mut message = None;
                let mut type_ = None;
                self.attributes(tag, |key, value| match key {
                    "message" => message = Some(value.into_owned()),
                    "type" => type_ = Some(value.into_owned()),
                    _ => {}
                })?;
                self.child = Some(Child {
                    kind,
                    message,
                    type_,
                    text: String::new(),
                });
                self.buf.clear();
                Open::Child
            }
            (Some(Open::Case), "system-out") => {
                self.buf.clear();
                Open::Out
            }
            (Some(Open::Case), "system-err") => {
                self.buf.clear();
                Open::Err
            }
            (Some(Open::Case), "properties") => Open::Properties(true),
            (Some(Open::Suite), "properties") => Open::Properties(false),
            (Some(Open::Properties(in_case)), "property") => {
                let mut key = String::new();
                let mut value = String::new();
                self.attributes(tag, |k, v| match k {
                    "name" => key = v.into_owned(),
                    "value" => value = v.into_owned(),
                    _ => {}
                })?;
                self.property = Some((key, value));
                self.buf.clear();
                Open::Property(in_case)
            }
            _ => Open::Other,
        })
    }

    fn close(&mut self, open: Open) {
        let doc = &mut self.doc;
        match open {
            Open::Child => {
                if let (Some(mut child), Some(row)) = (self.child.take(), doc.rows.last_mut()) {
                    child.text = std::mem::take(&mut self.buf);
                    row.children.push(child);
                }
            }
            Open::Out => {
                if let Some(row) = doc.rows.last_mut() {
                    row.system_out.push(std::mem::take(&mut self.buf));
                }
            }
            Open::Err => {
                if let Some(row) = doc.rows.last_mut() {
                    row.system_err.push(std::mem::take(&mut self.buf));
                }
            }
            Open::Property(in_case) => {
                if let Some((key, mut value)) = self.property.take() {
                    // Some writers put the value in the element's text instead.
                    if value.is_empty() && !self.buf.trim().is_empty() {
                        value = std::mem::take(&mut self.buf);
                    }
                    if in_case {
                        if let Some(row) = doc.rows.last_mut() {
                            row.properties.push((key, value));
                        }
                    } else if let Some(suite) = doc.suites.last_mut() {
                        suite.properties.push((key, value));
                    }
                }
            }
            Open::Suites | Open::Suite | Open::Case | Open::Properties(_) | Open::Other => {}
        }
    }

    /// Calls `each` with every attribute's name and unescaped value.
    fn attributes(
        &self,
        tag: &BytesStart<'_>,
        mut each: impl FnMut(&str, Cow<'_, str>),
    ) -> Result<(), Error> {
        let in_tag = |message: String| {
            let (line, column) = line_column(self.text, self.tag_start as usize);
            let name = tag_name(tag);
            Error::Malformed {
                line,
                column,
                message: format!("in the attributes of <{name}>: {message}"),
            }
        };
        for attr in tag.attributes() {
            let attr = attr.map_err(|err| in_tag(err.to_string()))?;
            let value = attr
                .normalized_value(XmlVersion::Implicit1_0)
                .map_err(|err| in_tag(err.to_string()))?;
            each(attr.key.as_ref(), value);
        }
        Ok(())
    }

    fn suite(&self, tag: &BytesStart<'_>) -> Result<Suite, Error> {
        let mut suite = Suite::default();
        self.attributes(tag, |key, value| match key {
            "name" => suite.name = Some(value.into_owned()),
            "tests" => suite.tests = value.trim().parse().ok(),
            "failures" => suite.failures = value.trim().parse().ok(),
            "errors" => suite.errors = value.trim().parse().ok(),
            "skipped" => suite.skipped = value.trim().parse().ok(),
            "time" => suite.time = value.trim().parse().ok(),
            "timestamp" => suite.timestamp = Some(value.into_owned()),
            "hostname" => suite.hostname = Some(value.into_owned()),
            _ => {}
        })?;
        Ok(suite)
    }

    fn row(&self, tag: &BytesStart<'_>) -> Result<Row, Error> {
        let mut row = Row::default();
        let mut named = false;
        self.attributes(tag, |key, value| match key {
            "classname" => row.classname = value.into_owned(),
            "name" => {
                named = !value.trim().is_empty();
                row.name = value.into_owned();
            }
            "file" => row.file = Some(value.into_owned()),
            "line" => row.line = value.trim().parse().ok(),
            "time" => row.time = value.trim().parse().ok(),
            _ => row.attributes.push((key.to_owned(), value.into_owned())),
        })?;
        if !named {
            // pytest always names its rows; a row without a name is no test anyone can
            // find, and counting it silently would show a pass with no test line.
            let (line, column) = line_column(self.text, self.tag_start as usize);
            return Err(Error::Unnamed { line, column });
        }
        Ok(row)
    }
}

fn tag_name(tag: &BytesStart<'_>) -> String {
    AsRef::<str>::as_ref(&tag.local_name()).to_owned()
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<testsuites name="pytest tests"><testsuite name="pytest" errors="1" failures="1" skipped="0" tests="3" time="1.250" hostname="h">
<properties><property name="suite_prop" value="s" /></properties>
<testcase classname="t.test_a" name="test_p[a&amp;b]" file="t/test_a.py" line="4" time="0.5" url="u">
<properties><property name="table" value="t_1" /></properties>
<failure message="assert &apos;x&apos;&#10;second line">E   assert 'x' &lt; "y" &#x263A;</failure>
<system-out><![CDATA[raw <out>]]></system-out><system-err>err</system-err></testcase>
<testcase classname="t.test_a" name="test_p[a&amp;b]" file="t/test_a.py" line="4" time="0.1"><error message="failed on teardown with &quot;E&quot;">td</error></testcase>
<!-- a comment --><testcase classname="t.test_a" name="test_ok" /></testsuite></testsuites>
"#;

    #[test]
    fn keeps_attributes_children_output_properties_and_duplicates() {
        let doc = parse_str(SAMPLE).expect("parses");
        assert_eq!(doc.suites.len(), 1);
        assert_eq!(doc.suites[0].tests, Some(3));
        assert_eq!(
            doc.suites[0].properties,
            [("suite_prop".into(), "s".into())]
        );
        assert_eq!(doc.duration(), Some(1.25));
        assert_eq!(doc.family(), Family::Xunit1);
        assert_eq!(doc.rows.len(), 3);
        let first = &doc.rows[0];
        assert_eq!(first.name, "test_p[a&b]");
        assert_eq!(first.line, Some(4));
        assert_eq!(first.attributes, [("url".into(), "u".into())]);
        assert_eq!(first.properties, [("table".into(), "t_1".into())]);
        assert_eq!(
            first.children,
            [Child {
                kind: ChildKind::Failure,
                message: Some("assert 'x'\nsecond line".into()),
                type_: None,
                text: "E   assert 'x' < \"y\" \u{263a}".into(),
            }]
        );
        assert_eq!(first.system_out, ["raw <out>"]);
        assert_eq!(first.system_err, ["err"]);
        assert_eq!(
            (doc.rows[1].classname.as_str(), doc.rows[1].name.as_str()),
            ("t.test_a", "test_p[a&b]")
        );
        assert!(doc.rows[2].children.is_empty());
    }

    #[test]
    fn a_bare_testsuite_root_is_accepted() {
        let doc = parse(
            b"\xEF\xBB\xBF<testsuite><testcase classname=\"a.test_b\" name=\"c\"/></testsuite>",
        )
        .expect("parses");
        assert_eq!(doc.rows.len(), 1);
        assert_eq!(doc.family(), Family::Xunit2);
    }

    #[test]
    fn faults_carry_their_position() {
        let err = parse_str("<testsuites>\n<testsuite>\n  <testcase name=\"a\"></testsuite>")
            .unwrap_err();
        assert!(matches!(err, Error::Malformed { line: 3, .. }), "{err}");
        let err = parse_str("<testsuites>\n  <testsuite>").unwrap_err();
        assert!(
            err.to_string().contains(
                "the file ends before <testsuite> (opened at line 2, column 3) is closed"
            ),
            "{err}"
        );
        let err = parse_str("<testsuites>\n<testsuite>\n<testcase name=\"&bogus;\"/>").unwrap_err();
        assert!(
            matches!(
                err,
                Error::Malformed {
                    line: 3,
                    column: 1,
                    ..
                }
            ),
            "{err}"
        );
        assert!(matches!(parse_str(" \n "), Err(Error::Empty)));
        assert!(matches!(parse_str("<html/>"), Err(Error::NotJunit { .. })));
        assert!(matches!(
            parse(b"<testsuite>\n \xff</testsuite>"),
            Err(Error::NotUtf8 { line: 2, column: 2 })
        ));
    }

    #[test]
    fn every_truncation_is_an_error_never_a_panic() {
        // Cut at every character: each prefix must fail cleanly (the document only closes
        // at its last tag), except the whole text and whitespace after the root.
        let end = SAMPLE.trim_end().len();
        for (cut, _) in SAMPLE.char_indices() {
            let result = parse_str(&SAMPLE[..cut]);
            if cut < end {
                assert!(result.is_err(), "prefix of {cut} bytes parsed");
            }
        }
        assert!(parse_str(SAMPLE).is_ok());
    }

    #[test]
    fn line_column_counts_characters() {
        assert_eq!(line_column("ab\ncé d", 7), (2, 4));
        assert_eq!(line_column("x", 99), (1, 2));
    }
}
