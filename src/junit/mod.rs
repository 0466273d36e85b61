//! Turns pytest's results — a junit XML file, or a report log — into pytest outcomes, and
//! draws them the way pytest does.
//!
//! A *row* is one `<testcase>` element; a *result* is one test (node id) with every report
//! pytest would have shown for it: a call failure and a teardown error written as two rows
//! become one result holding both.
//!
//! The steps are pure functions over values, with no I/O and no printing:
//! [`parse`] (bytes → [`Document`]), [`map`] (document + optional expected node ids →
//! [`Mapping`]), [`render_text`] / [`render_json`] (→ `String`) and
//! [`Mapping::exit_code`] (pytest's rule). Matching is forward: each expected node id is
//! mangled into junit's `(classname, name)` with pytest's own rule ([`nodeid::junit_key`])
//! and looked up; `file` attributes are only used when no ids are given, or to tell apart
//! two ids that mangle to the same key.
//!
//! What junit XML cannot carry, and so no mapping of it can recover: a non-strict XPASS
//! (written exactly like a pass), whether a skip or xfail happened in setup, call or
//! teardown (a teardown skip also hides the pass before it), subtests, and captured output
//! unless pytest ran with `-o junit_logging=...`. [`Mapping::notes`] says so when it
//! matters.
//!
//! A pytest *report log* (pytest-reportlog's JSON lines, [`ReportLog`]) carries all of that
//! and the session's exit status, and can be read while it grows; it produces the same
//! [`Mapping`], so rendering and exit codes are shared. [`sniff`] tells the two formats
//! apart.
//!
//! ```
//! let xml = br#"<testsuites><testsuite time="1.5">
//!   <testcase classname="tests.test_a" name="test_ok" time="0.1"/>
//!   <testcase classname="tests.test_a" name="test_bad" time="0.2">
//!     <failure message="assert 1 == 2">longrepr</failure></testcase>
//! </testsuite></testsuites>"#;
//! let doc = fabric_remote::junit::parse(xml).unwrap();
//! let ids = ["tests/test_a.py::test_ok".to_owned(), "tests/test_a.py::test_bad".to_owned()];
//! let mapping = fabric_remote::junit::map(&doc, Some(&ids));
//! assert_eq!(mapping.exit_code(), 1);
//! let text = fabric_remote::junit::render_text(&mapping);
//! let closing = text.lines().last().unwrap().trim_matches('=');
//! assert_eq!(closing, " 1 failed, 1 passed in 1.50s (remote) ");
//! ```

mod map;
pub mod nodeid;
mod parse;
mod render;
mod reportlog;

pub use map::{
    Counts, Kind, MapOptions, Mapping, Outcome, Report, Section, Source, TestResult, When, map,
    map_with, parse_nodeids,
};
pub use nodeid::IdSource;
pub use parse::{Child, ChildKind, Document, Family, Row, Suite, line_column, parse, parse_str};
pub use render::{render_json, render_line, render_text};
pub use reportlog::{Format, Pushed, ReportLog, ReportLogError, sniff};

/// Why a file could not be read as junit XML. Positions are 1-based; columns count characters.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Nothing but whitespace.
    #[error("the file is empty, so it holds no junit XML")]
    Empty,
    /// Not well-formed XML, including a file cut off before its elements are closed.
    #[error("the XML is malformed at line {line}, column {column}: {message}")]
    Malformed {
        line: usize,
        column: usize,
        message: String,
    },
    /// Well-formed XML whose root is not `<testsuites>` or `<testsuite>`.
    #[error(
        "this is not a junit report: it should start with a <testsuites> or <testsuite> element, but has {found}"
    )]
    NotJunit { found: String },
    /// A `<testcase>` without a `name` attribute (pytest always writes one).
    #[error(
        "the <testcase> at line {line}, column {column} has no `name` attribute, so it names no test; pytest always writes one, so this file comes from another tool or was edited"
    )]
    Unnamed { line: usize, column: usize },
    /// Bytes that are not UTF-8 (pytest always writes UTF-8).
    #[error("the file is not UTF-8 text (invalid byte at line {line}, column {column})")]
    NotUtf8 { line: usize, column: usize },
}
