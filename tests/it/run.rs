//! `fabric-remote run` against the emulator with real pytest on both sides, and the pieces it
//! rests on: test.env read exactly as python-dotenv reads it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;

use fabric_remote::dotenv;

use crate::util::{python, root};

// ---- test.env: python-dotenv and src/dotenv.rs agree on a corpus of tricky files ----

const DOTENV_REFERENCE: &str = r#"
import json, sys
from dotenv.main import DotEnv
from dotenv.parser import parse_stream
out = {}
for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as f:
        errors = []
        for b in parse_stream(f):
            if b.error:
                s = b.original.string
                errors.append(b.original.line + s[: len(s) - len(s.lstrip())].count("\n"))
    out[path] = {
        "load": list(DotEnv(path, interpolate=True, override=False).dict().items()),
        "override": list(DotEnv(path, interpolate=True, override=True).dict().items()),
        "errors": errors,
    }
print(json.dumps(out))
"#;

type Values = Vec<(String, Option<String>)>;

#[test]
fn dotenv_corpus_reads_exactly_as_python_dotenv() {
    let dir = root().join("tests/fixtures/dotenv");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "env"))
        .collect();
    files.sort();
    assert!(files.len() >= 8, "{files:?}");
    let env: HashMap<String, String> = [
        ("HOME_FOR_TEST", "from-env"),
        ("PATH", "/usr/bin:/bin"),
        ("PYTHONUTF8", "1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let out = Command::new(python())
        .env_clear()
        .envs(&env)
        .arg("-c")
        .arg(DOTENV_REFERENCE)
        .args(&files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reference: HashMap<String, serde_json::Value> =
        serde_json::from_slice(&out.stdout).unwrap();
    let lookup = |k: &str| env.get(k).cloned();
    for file in &files {
        let want = &reference[&file.to_string_lossy().into_owned()];
        let text = String::from_utf8(std::fs::read(file).unwrap()).unwrap();
        let parsed = dotenv::parse(&text);
        let load: Values = serde_json::from_value(want["load"].clone()).unwrap();
        let over: Values = serde_json::from_value(want["override"].clone()).unwrap();
        let errors: Vec<usize> = serde_json::from_value(want["errors"].clone()).unwrap();
        let name = file.file_name().unwrap().to_string_lossy();
        assert_eq!(
            dotenv::resolve(&parsed.bindings, lookup, false),
            load,
            "{name}: load"
        );
        assert_eq!(
            dotenv::resolve(&parsed.bindings, lookup, true),
            over,
            "{name}: override"
        );
        assert_eq!(parsed.errors, errors, "{name}: skipped lines");
    }
}
