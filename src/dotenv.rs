//! Reads `.env` files (`test.env`) with python-dotenv's rules, so a file means here exactly
//! what it means to `pytest-dotenv` and `load_dotenv` (python-dotenv 1.2).
//!
//! A *binding* is one `KEY=value` statement. Values may be unquoted (the rest of the line,
//! cut at a `#` that follows whitespace, trailing whitespace removed), single-quoted (`\\` and
//! `\'` unescaped) or double-quoted (`\\ \' \" \a \b \f \n \r \t \v` unescaped); quoted values
//! may span lines. `export KEY=…` is accepted. A key with no `=` has no value (it is listed,
//! but never set). A statement python-dotenv cannot parse is skipped, and its line is
//! reported in [`Parsed::errors`]. Values are then interpolated (`${NAME}`,
//! `${NAME:-default}`) in file order, against earlier keys and the environment.
//!
//! Pure: text in, values out. Finding the file and layering it under the process environment
//! is the caller's business. [`quote`] writes a value back so that python-dotenv reads it
//! unchanged.
//!
//! ```
//! use fabric_remote::dotenv;
//! let text = "export NAME=My Workspace   # the portal name\nGREETING=\"hi ${NAME}\"\n";
//! let values = dotenv::load(text, |_| None);
//! assert_eq!(values[0], ("NAME".to_string(), Some("My Workspace".to_string())));
//! assert_eq!(values[1].1.as_deref(), Some("hi My Workspace"));
//! ```

/// One statement of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub key: String,
    /// `None` for a bare `KEY` without `=`.
    pub value: Option<String>,
    /// 1-based line where the statement starts.
    pub line: usize,
}

/// The statements of a file, and the lines python-dotenv would warn about and skip.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    pub bindings: Vec<Binding>,
    /// 1-based lines of statements that could not be parsed (they set nothing).
    pub errors: Vec<usize>,
}

/// Python's `str.isspace()`, which is what `\s` means in python-dotenv's patterns.
fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Whitespace that is not a line break (`[^\S\r\n]`).
fn is_blank(c: char) -> bool {
    is_space(c) && c != '\n' && c != '\r'
}

struct Reader {
    chars: Vec<char>,
    pos: usize,
}

/// A statement that does not parse; the reader skips the rest of its line.
struct Error;

impl Reader {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn at(&self, i: usize) -> Option<char> {
        self.chars.get(i).copied()
    }

    fn skip_while(&mut self, f: impl Fn(char) -> bool) -> usize {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn text(&self, from: usize, to: usize) -> String {
        self.chars[from..to].iter().collect()
    }

    /// `(?:export[^\S\r\n]+)?`
    fn export(&mut self) {
        let word: Vec<char> = "export".chars().collect();
        let end = self.pos + word.len();
        if self.chars.get(self.pos..end) == Some(&word[..]) && self.at(end).is_some_and(is_blank) {
            self.pos = end;
            self.skip_while(is_blank);
        }
    }

    fn key(&mut self) -> Result<Option<String>, Error> {
        match self.peek() {
            Some('#') => Ok(None),
            Some('\'') => {
                // '([^']+)'
                let start = self.pos + 1;
                let mut i = start;
                while self.at(i).is_some_and(|c| c != '\'') {
                    i += 1;
                }
                if i == start || self.at(i) != Some('\'') {
                    return Err(Error);
                }
                self.pos = i + 1;
                Ok(Some(self.text(start, i)))
            }
            _ => {
                // ([^=\#\s]+)
                let start = self.pos;
                if self.skip_while(|c| c != '=' && c != '#' && !is_space(c)) == 0 {
                    return Err(Error);
                }
                Ok(Some(self.text(start, self.pos)))
            }
        }
    }

    /// `Q((?:\\.|[^Q\\])*)Q` with `.` matching newlines too: the raw text between the quotes.
    fn quoted(&mut self, quote: char) -> Result<String, Error> {
        let start = self.pos + 1;
        let mut i = start;
        loop {
            match self.at(i) {
                Some('\\') if self.at(i + 1).is_some() => i += 2,
                Some(c) if c == quote => break,
                Some('\\') | None => return Err(Error),
                Some(_) => i += 1,
            }
        }
        self.pos = i + 1;
        Ok(self.text(start, i))
    }

    fn value(&mut self) -> Result<String, Error> {
        match self.peek() {
            Some('\'') => Ok(unescape(&self.quoted('\'')?, |c| match c {
                '\\' | '\'' => Some(c),
                _ => None,
            })),
            Some('"') => Ok(unescape(&self.quoted('"')?, |c| match c {
                '\\' | '\'' | '"' => Some(c),
                'a' => Some('\u{7}'),
                'b' => Some('\u{8}'),
                'f' => Some('\u{c}'),
                'n' => Some('\n'),
                'r' => Some('\r'),
                't' => Some('\t'),
                'v' => Some('\u{b}'),
                _ => None,
            })),
            None | Some('\n') | Some('\r') => Ok(String::new()),
            Some(_) => {
                let start = self.pos;
                self.skip_while(|c| c != '\n' && c != '\r');
                let part = &self.chars[start..self.pos];
                // re.sub(r"\s+#.*", "", part).rstrip()
                let cut = (1..part.len())
                    .find(|&i| part[i] == '#' && is_space(part[i - 1]))
                    .unwrap_or(part.len());
                let mut end = cut;
                while end > 0 && is_space(part[end - 1]) {
                    end -= 1;
                }
                Ok(part[..end].iter().collect())
            }
        }
    }

    /// `(?:[^\S\r\n]*#[^\r\n]*)?` then `[^\S\r\n]*(?:\r\n|\n|\r|$)`.
    fn end_of_statement(&mut self) -> Result<(), Error> {
        let mut i = self.pos;
        while self.at(i).is_some_and(is_blank) {
            i += 1;
        }
        if self.at(i) == Some('#') {
            self.pos = i;
            self.skip_while(|c| c != '\n' && c != '\r');
        }
        self.skip_while(is_blank);
        match self.peek() {
            None => Ok(()),
            Some('\r') => {
                self.pos += 1;
                if self.peek() == Some('\n') {
                    self.pos += 1;
                }
                Ok(())
            }
            Some('\n') => {
                self.pos += 1;
                Ok(())
            }
            Some(_) => Err(Error),
        }
    }

    fn statement(&mut self) -> Result<Option<(String, Option<String>)>, Error> {
        self.export();
        let key = self.key()?;
        self.skip_while(is_blank);
        let value = if self.peek() == Some('=') {
            self.pos += 1;
            let blanks = self.skip_while(is_blank);
            if blanks > 0 && self.peek() == Some('#') {
                Some(String::new())
            } else {
                Some(self.value()?)
            }
        } else {
            None
        };
        self.end_of_statement()?;
        Ok(key.map(|k| (k, value)))
    }

    /// `[^\r\n]*(?:\r|\n|\r\n)?` after a failed statement.
    fn skip_rest_of_line(&mut self) {
        self.skip_while(|c| c != '\n' && c != '\r');
        if self.peek().is_some() {
            self.pos += 1;
        }
    }
}

/// Replaces `\c` pairs for which `map(c)` is `Some`, left to right; other backslashes stay.
fn unescape(raw: &str, map: impl Fn(char) -> Option<char>) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\'
            && let Some(m) = chars.peek().and_then(|&n| map(n))
        {
            out.push(m);
            chars.next();
            continue;
        }
        out.push(c);
    }
    out
}

/// Parses the text of a file (as Python reads it: a BOM dropped, `\r\n` and `\r` read as `\n`).
pub fn parse(text: &str) -> Parsed {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut reader = Reader {
        chars: text.chars().collect(),
        pos: 0,
    };
    let mut out = Parsed::default();
    let mut line = 1;
    let mut counted = 0;
    while reader.pos < reader.chars.len() {
        reader.skip_while(is_space);
        if reader.pos >= reader.chars.len() {
            break;
        }
        // The line the statement starts on (python-dotenv names the line where the
        // whitespace before it starts, which can be several lines earlier).
        line += reader.chars[counted..reader.pos]
            .iter()
            .filter(|&&c| c == '\n')
            .count();
        counted = reader.pos;
        match reader.statement() {
            Ok(Some((key, value))) => out.bindings.push(Binding { key, value, line }),
            Ok(None) => {}
            Err(Error) => {
                reader.skip_rest_of_line();
                out.errors.push(line);
            }
        }
    }
    out
}

/// One `${NAME}` / `${NAME:-default}` reference, or literal text.
enum Atom<'a> {
    Literal(&'a str),
    Variable {
        name: &'a str,
        default: Option<&'a str>,
    },
}

/// python-dotenv's `\$\{(?P<name>[^\}:]*)(?::-(?P<default>[^\}]*))?\}`, left to right.
fn atoms(value: &str) -> Vec<Atom<'_>> {
    let mut out = Vec::new();
    let mut cursor = 0;
    let mut search = 0;
    while let Some(found) = value[search..].find("${") {
        let start = search + found;
        let rest = &value[start + 2..];
        let name_len = rest.find(['}', ':']).unwrap_or(rest.len());
        let after = &rest[name_len..];
        let matched = if after.starts_with('}') {
            Some((None, name_len + 1))
        } else if let Some(tail) = after.strip_prefix(":-") {
            tail.find('}')
                .map(|d| (Some(&tail[..d]), name_len + 2 + d + 1))
        } else {
            None
        };
        match matched {
            Some((default, len)) => {
                if start > cursor {
                    out.push(Atom::Literal(&value[cursor..start]));
                }
                out.push(Atom::Variable {
                    name: &rest[..name_len],
                    default,
                });
                cursor = start + 2 + len;
                search = cursor;
            }
            None => search = start + 1,
        }
    }
    if cursor < value.len() {
        out.push(Atom::Literal(&value[cursor..]));
    }
    out
}

/// Interpolates the bindings in order, as python-dotenv does. `env` is the process
/// environment; with `override_env` false (what `load_dotenv` does by default) a variable of
/// the environment wins over a key of the file. Returns each key once, in the order keys
/// first appear, with the last value given.
pub fn resolve(
    bindings: &[Binding],
    env: impl Fn(&str) -> Option<String>,
    override_env: bool,
) -> Vec<(String, Option<String>)> {
    let mut out: Vec<(String, Option<String>)> = Vec::new();
    for b in bindings {
        let value = b.value.as_deref().map(|v| {
            atoms(v)
                .into_iter()
                .map(|atom| match atom {
                    Atom::Literal(s) => s.to_string(),
                    Atom::Variable { name, default } => {
                        let file = || out.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
                        let found: Option<Option<String>> = if override_env {
                            file().or_else(|| env(name).map(Some))
                        } else {
                            env(name).map(Some).or_else(file)
                        };
                        match found {
                            Some(v) => v.unwrap_or_default(),
                            None => default.unwrap_or("").to_string(),
                        }
                    }
                })
                .collect::<String>()
        });
        match out.iter_mut().find(|(k, _)| *k == b.key) {
            Some(slot) => slot.1 = value,
            None => out.push((b.key.clone(), value)),
        }
    }
    out
}

/// What `load_dotenv(path)` would read from `text`: parsed, then interpolated with the
/// environment winning.
pub fn load(text: &str, env: impl Fn(&str) -> Option<String>) -> Vec<(String, Option<String>)> {
    resolve(&parse(text).bindings, env, false)
}

/// `value` as a double-quoted dotenv value that python-dotenv reads back unchanged (apart
/// from `${…}` references, which it would interpolate).
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(text: &str) -> Vec<(String, Option<String>)> {
        load(text, |_| None)
    }

    fn one(text: &str) -> Option<String> {
        let v = values(text);
        assert_eq!(v.len(), 1, "{text:?} → {v:?}");
        v[0].1.clone()
    }

    #[test]
    fn values_as_python_dotenv_reads_them() {
        let cases: &[(&str, Option<&str>)] = &[
            ("A=b", Some("b")),
            ("A=Your Workspace Name", Some("Your Workspace Name")),
            ("A=value # comment", Some("value")),
            ("A=value#not-a-comment", Some("value#not-a-comment")),
            ("A= # only a comment", Some("")),
            ("A=#novalue", Some("#novalue")),
            ("A=", Some("")),
            ("A", None),
            ("export A=1", Some("1")),
            ("  export   A = 1  ", Some("1")),
            ("A='single # kept'", Some("single # kept")),
            ("A=\"double # kept\" # gone", Some("double # kept")),
            (r#"A="a\nb\t\"q\" \\ \x""#, Some("a\nb\t\"q\" \\ \\x")),
            (r"A='a\nb \' \\'", Some("a\\nb ' \\")),
            ("A=\"multi\nline\"", Some("multi\nline")),
            ("A=  padded  ", Some("padded")),
            ("'quoted key'=1", Some("1")),
        ];
        for (text, want) in cases {
            let got = values(text);
            assert_eq!(got.len(), 1, "{text:?} → {got:?}");
            assert_eq!(got[0].1.as_deref(), *want, "{text:?}");
        }
        assert_eq!(values("'quoted key'=1")[0].0, "quoted key");
        assert_eq!(values("exportA=1")[0].0, "exportA");
    }

    #[test]
    fn bad_statements_are_skipped_with_their_line() {
        let parsed = parse("A=1\nB=\"open\nC=3\nD E=4\n=5\nF='x'y\nG=7\n");
        let keys: Vec<_> = parsed.bindings.iter().map(|b| b.key.as_str()).collect();
        assert_eq!(keys, ["A", "C", "G"]);
        assert_eq!(parsed.errors, [2, 4, 5, 6]);
        assert_eq!(parsed.bindings[2].line, 7);
    }

    #[test]
    fn comments_blank_lines_crlf_and_bom() {
        let v = values("\u{feff}# top\r\n\r\nA=1\r\n  # indented\rB=2");
        assert_eq!(
            v,
            [
                ("A".to_string(), Some("1".to_string())),
                ("B".to_string(), Some("2".to_string()))
            ]
        );
    }

    #[test]
    fn interpolation_order_and_precedence() {
        let env = |k: &str| (k == "HOME").then(|| "/home/me".to_string());
        let text = "HOME=/file\nA=${HOME}/x\nB=${A}-${MISSING:-dflt}-${EMPTY:-}\nC=${A:x}\nD=$HOME";
        let v = load(text, env);
        assert_eq!(v[1].1.as_deref(), Some("/home/me/x"));
        assert_eq!(v[2].1.as_deref(), Some("/home/me/x-dflt-"));
        assert_eq!(v[3].1.as_deref(), Some("${A:x}"));
        assert_eq!(v[4].1.as_deref(), Some("$HOME"));
        let v = resolve(&parse(text).bindings, env, true);
        assert_eq!(v[1].1.as_deref(), Some("/file/x"));
    }

    #[test]
    fn later_keys_replace_earlier_ones_in_place() {
        let v = values("A=1\nB=2\nA=3");
        assert_eq!(v[0], ("A".to_string(), Some("3".to_string())));
        assert_eq!(v.len(), 2);
    }

    #[test]
    fn quote_round_trips() {
        for value in [
            "plain",
            "a b # c",
            "q\"uo'te",
            "back\\slash",
            "multi\nline\r\ttab",
            "",
        ] {
            let text = format!("K={}", quote(value));
            assert_eq!(one(&text).as_deref(), Some(value), "{text}");
        }
    }
}
