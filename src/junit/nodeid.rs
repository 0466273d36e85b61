//! Turns pytest node ids into junit `(classname, name)` keys, and junit rows back into
//! node ids when no expected ids are given.
//!
//! The forward direction ([`junit_key`]) is exact: it is pytest's own `mangle_test_address`
//! (pytest 9.2, `src/_pytest/junitxml.py` with `NodeId.parse`) plus `bin_xml_escape` on the
//! name. The backward direction ([`reconstruct`]) cannot be exact, because a classname does
//! not say where the directories end and the classes begin; it says how sure it is through
//! [`IdSource`].

use std::borrow::Cow;
use std::collections::HashMap;

/// Where a result's node id came from, from exact to guessed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdSource {
    /// One of the expected node ids (`--nodeids`), matched forwards.
    Expected,
    /// The row's own xunit1 `file` attribute agreed with its classname.
    File,
    /// The module was found through another row's `file` attribute (an inherited test,
    /// whose own `file` points at the base class's module).
    SiblingFile,
    /// No usable `file` attribute (xunit2): the module was guessed from pytest's default
    /// test file names (`test_*.py`, `*_test.py`).
    Guessed,
    /// The node id pytest itself wrote in a report log (exact).
    Reported,
}

impl IdSource {
    /// The lowercase word used in JSON records.
    pub fn as_str(self) -> &'static str {
        match self {
            IdSource::Expected => "expected",
            IdSource::File => "file",
            IdSource::SiblingFile => "sibling-file",
            IdSource::Guessed => "guessed",
            IdSource::Reported => "reported",
        }
    }
}

/// pytest's `mangle_test_address`: the node id's path with `/` → `.` and `.py` dropped,
/// then each `::` part, with the parameter id (from the first `[` after the first `::`)
/// put back onto the last part unchanged.
pub fn mangle(nodeid: &str) -> Vec<String> {
    let (path, tail) = match nodeid.split_once("::") {
        Some((path, tail)) => (path, Some(tail)),
        // No "::": all of it is a path, even if it holds a "[".
        None => (nodeid, None),
    };
    let dotted = path.replace('/', ".");
    let module = dotted.strip_suffix(".py").unwrap_or(&dotted).to_owned();
    let mut names = vec![module];
    if let Some(tail) = tail {
        let (name_part, params) = match tail.split_once('[') {
            Some((name_part, rest)) => (name_part, Some(rest.strip_suffix(']').unwrap_or(rest))),
            None => (tail, None),
        };
        names.extend(name_part.split("::").map(str::to_owned));
        if let (Some(params), Some(last)) = (params, names.last_mut()) {
            last.push('[');
            last.push_str(params);
            last.push(']');
        }
    }
    names
}

/// The `(classname, name)` pytest writes for `nodeid`, with `--junitprefix` if one was used.
///
/// The same as [`mangle`] joined the way `record_testreport` joins it, built without the
/// intermediate list (this runs once per expected id).
pub fn junit_key(nodeid: &str, prefix: Option<&str>) -> (String, String) {
    let mut classname = String::with_capacity(nodeid.len() + prefix.map_or(0, str::len) + 1);
    if let Some(prefix) = prefix.filter(|p| !p.is_empty()) {
        classname.push_str(prefix);
    }
    let Some((path, tail)) = split_once_colons(nodeid) else {
        return (
            classname,
            bin_xml_escape(&dotted_module(nodeid)).into_owned(),
        );
    };
    let (name_part, params) = match tail.split_once('[') {
        Some((name_part, rest)) => (name_part, Some(rest.strip_suffix(']').unwrap_or(rest))),
        None => (tail, None),
    };
    let (classes, last) = match rfind_colons(name_part) {
        Some(i) => (Some(&name_part[..i]), &name_part[i + 2..]),
        None => (None, name_part),
    };
    if !classname.is_empty() {
        classname.push('.');
    }
    let module = path.strip_suffix(".py").unwrap_or(path);
    classname.extend(module.chars().map(|c| if c == '/' { '.' } else { c }));
    if let Some(classes) = classes {
        classname.push('.');
        let mut rest = classes;
        while let Some((class, more)) = split_once_colons(rest) {
            classname.push_str(class);
            classname.push('.');
            rest = more;
        }
        classname.push_str(rest);
    }
    let name = match params {
        Some(params) => format!("{last}[{params}]"),
        None => last.to_owned(),
    };
    let name = match bin_xml_escape(&name) {
        Cow::Borrowed(_) => name,
        Cow::Owned(escaped) => escaped,
    };
    (classname, name)
}

/// `s.split_once("::")`, without building a substring searcher (this runs per id).
fn split_once_colons(s: &str) -> Option<(&str, &str)> {
    let bytes = s.as_bytes();
    let mut from = 0;
    while let Some(pos) = bytes[from..].iter().position(|&b| b == b':') {
        let i = from + pos;
        if bytes.get(i + 1) == Some(&b':') {
            return Some((&s[..i], &s[i + 2..]));
        }
        from = i + 1;
    }
    None
}

/// The byte index of the last `::` in `s`.
fn rfind_colons(s: &str) -> Option<usize> {
    s.as_bytes().windows(2).rposition(|w| w == b"::")
}

/// pytest's `bin_xml_escape`: characters XML cannot hold become the visible text `#xNN`.
pub fn bin_xml_escape(text: &str) -> Cow<'_, str> {
    fn allowed(c: char) -> bool {
        matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{7e}' | '\u{80}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
    }
    if text.chars().all(allowed) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if allowed(c) {
            out.push(c);
        } else if (c as u32) <= 0xff {
            out.push_str(&format!("#x{:02X}", c as u32));
        } else {
            out.push_str(&format!("#x{:04X}", c as u32));
        }
    }
    Cow::Owned(out)
}

/// If `classname` starts with the dotted module of `file` (`a/b.py` → `a.b`) followed by
/// `.` or its end, the length of that module prefix. Allocates nothing.
fn module_prefix_len(file: &str, classname: &str) -> Option<usize> {
    let module = file.strip_suffix(".py")?;
    if classname.len() < module.len() {
        return None;
    }
    let same = module
        .bytes()
        .zip(classname.bytes())
        .all(|(f, c)| f == c || (f == b'/' && c == b'.'));
    let boundary = matches!(classname.as_bytes().get(module.len()), None | Some(b'.'));
    (same && boundary).then_some(module.len())
}

/// Dotted module name pytest derives from a rootdir-relative file path.
pub fn dotted_module(file: &str) -> String {
    let dotted = file.replace('/', ".");
    match dotted.strip_suffix(".py") {
        Some(module) => module.to_owned(),
        None => dotted,
    }
}

/// Modules whose file is known from rows whose `file` attribute agrees with their classname:
/// dotted module → file path. Inherited tests are resolved through this map.
#[derive(Debug, Default)]
pub struct KnownModules {
    by_dotted: HashMap<String, String>,
}

impl KnownModules {
    /// Remembers `file` if its dotted form starts `classname` (or, for collection errors,
    /// equals `name`).
    pub fn learn(&mut self, classname: &str, file: &str) {
        if let Some(len) = module_prefix_len(file, classname) {
            let dotted = &classname[..len];
            if !self.by_dotted.contains_key(dotted) {
                self.by_dotted.insert(dotted.to_owned(), file.to_owned());
            }
        }
    }

    /// The longest known module that is a dotted prefix of `classname`.
    fn longest_prefix_of<'c>(&self, classname: &'c str) -> Option<(&'c str, &str)> {
        let mut end = classname.len();
        loop {
            let head = &classname[..end];
            if let Some(file) = self.by_dotted.get(head) {
                return Some((head, file));
            }
            end = head.rfind('.')?;
        }
    }
}

/// A node id rebuilt from a junit row, best effort; see [`IdSource`].
///
/// `classname` empty means a collection error: `name` is then the dotted collector path.
pub fn reconstruct(
    classname: &str,
    name: &str,
    file: Option<&str>,
    known: &KnownModules,
) -> (String, IdSource) {
    if classname.is_empty() {
        return match file {
            Some(file) if !file.is_empty() => (file.to_owned(), IdSource::File),
            _ => match known.longest_prefix_of(name) {
                Some((dotted, file)) if dotted == name => (file.to_owned(), IdSource::SiblingFile),
                _ => (format!("{}.py", name.replace('.', "/")), IdSource::Guessed),
            },
        };
    }
    if let Some(file) = file
        && let Some(len) = module_prefix_len(file, classname)
    {
        return (join_id(file, &classname[len..], name), IdSource::File);
    }
    if let Some((dotted, file)) = known.longest_prefix_of(classname) {
        return (
            join_id(file, &classname[dotted.len()..], name),
            IdSource::SiblingFile,
        );
    }
    let parts: Vec<&str> = classname.split('.').collect();
    let module_end = parts
        .iter()
        .rposition(|p| p.starts_with("test_") || p.ends_with("_test"))
        .map(|i| i + 1)
        .or_else(|| parts.iter().position(|p| p.starts_with("Test")))
        .unwrap_or(parts.len())
        .max(1);
    let file = format!("{}.py", parts[..module_end].join("/"));
    let classes = parts[module_end..].join(".");
    let rest = if classes.is_empty() {
        String::new()
    } else {
        format!(".{classes}")
    };
    (join_id(&file, &rest, name), IdSource::Guessed)
}

/// `file::Class::Inner::name` from the classname remainder `.Class.Inner` (or empty).
fn join_id(file: &str, classes: &str, name: &str) -> String {
    let mut id = String::with_capacity(file.len() + classes.len() + name.len() + 4);
    id.push_str(file);
    for class in classes.split('.').filter(|c| !c.is_empty()) {
        id.push_str("::");
        id.push_str(class);
    }
    id.push_str("::");
    id.push_str(name);
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mangling_matches_the_reference_table() {
        let table = [
            (
                "tests/fabricspark/adapter/test_basic.py::TestSimpleMaterializationsSpark::test_base",
                "tests.fabricspark.adapter.test_basic.TestSimpleMaterializationsSpark",
                "test_base",
            ),
            (
                "tests/a/sub/test_x.py::TestOuter::TestInner::test_deep",
                "tests.a.sub.test_x.TestOuter.TestInner",
                "test_deep",
            ),
            (
                "tests/a/sub/test_x.py::test_param[x.y]",
                "tests.a.sub.test_x",
                "test_param[x.y]",
            ),
            (
                "tests/a/sub/test_x.py::test_param[a::b]",
                "tests.a.sub.test_x",
                "test_param[a::b]",
            ),
            ("tests/test_broken.py", "", "tests.test_broken"),
            (
                "tests/a/test_x.py::test_p[br[ack]",
                "tests.a.test_x",
                "test_p[br[ack]",
            ),
            (
                "tests/a/test_x.py::test_p[with space]",
                "tests.a.test_x",
                "test_p[with space]",
            ),
            (
                "tests/a/test_x.py::TestC::test_p[a::b-1.5]",
                "tests.a.test_x.TestC",
                "test_p[a::b-1.5]",
            ),
            // A "[" in the path is part of the path (pytest 9 NodeId.parse).
            (
                "tests/odd[1]/test_x.py::test_a",
                "tests.odd[1].test_x",
                "test_a",
            ),
            ("test_top.py::test_a", "test_top", "test_a"),
            ("conftest_dir/pkg", "", "conftest_dir.pkg"),
        ];
        for (nodeid, classname, name) in table {
            assert_eq!(
                junit_key(nodeid, None),
                (classname.to_owned(), name.to_owned()),
                "{nodeid}"
            );
        }
    }

    #[test]
    fn prefix_goes_in_front_of_the_classname() {
        assert_eq!(
            junit_key("tests/test_x.py::TestA::test_b", Some("remote")),
            ("remote.tests.test_x.TestA".to_owned(), "test_b".to_owned())
        );
    }

    #[test]
    fn names_get_pytests_visual_escapes() {
        assert_eq!(
            bin_xml_escape("a\u{7}b\u{1b}c\u{fffe}"),
            "a#x07b#x1Bc#xFFFE"
        );
        assert_eq!(bin_xml_escape("tab\tok é"), "tab\tok é");
        assert_eq!(
            junit_key("t/test_x.py::test_p[\u{1}]", None).1,
            "test_p[#x01]"
        );
    }

    #[test]
    fn reconstruction_uses_file_then_siblings_then_guesses() {
        let mut known = KnownModules::default();
        known.learn("tests.sub.test_m.TestA", "tests/sub/test_m.py");
        known.learn("tests.sub.test_m.TestB", "basepkg/base.py");

        let direct = reconstruct(
            "tests.sub.test_m.TestA.TestIn",
            "test_x[a.b]",
            Some("tests/sub/test_m.py"),
            &known,
        );
        assert_eq!(
            direct,
            (
                "tests/sub/test_m.py::TestA::TestIn::test_x[a.b]".to_owned(),
                IdSource::File
            )
        );

        let inherited = reconstruct(
            "tests.sub.test_m.TestB",
            "test_inh",
            Some("basepkg/base.py"),
            &known,
        );
        assert_eq!(
            inherited,
            (
                "tests/sub/test_m.py::TestB::test_inh".to_owned(),
                IdSource::SiblingFile
            )
        );

        let guessed = reconstruct(
            "tests.Integration.test_caps.lower_class",
            "test_y",
            None,
            &known,
        );
        assert_eq!(
            guessed,
            (
                "tests/Integration/test_caps.py::lower_class::test_y".to_owned(),
                IdSource::Guessed
            )
        );

        let module_only = reconstruct("tests.check_things", "test_z", None, &known);
        assert_eq!(
            module_only,
            (
                "tests/check_things.py::test_z".to_owned(),
                IdSource::Guessed
            )
        );

        let collect = reconstruct(
            "",
            "tests.test_broken",
            Some("tests/test_broken.py"),
            &known,
        );
        assert_eq!(collect, ("tests/test_broken.py".to_owned(), IdSource::File));
        let collect2 = reconstruct("", "tests.test_broken", None, &known);
        assert_eq!(
            collect2,
            ("tests/test_broken.py".to_owned(), IdSource::Guessed)
        );
    }
}
