//! Local collection: which Python runs pytest here, and the node ids pytest selects with the
//! user's arguments — the exact list the remote run must report on.
//!
//! pytest runs with `--collect-only -q` and the user's arguments, plus a small in-memory
//! plugin that writes the selected items' node ids, pytest's rootdir and its verbosity to a
//! file (parsing `-q` output would mistake warning lines for ids). The Python is, in order:
//! `--python`, the project's `.venv`, `uv run python` when uv is installed and the project
//! has a `pyproject.toml`, else `python3`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// How to start Python locally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Python {
    /// An interpreter (`--python`, the project's `.venv/bin/python`, `python3`).
    Program(PathBuf),
    /// `uv run python` in the project.
    Uv(PathBuf),
}

impl Python {
    /// `--python` when given, else the project's `.venv`, else `uv run`, else `python3`.
    pub fn choose(explicit: Option<&Path>, project: &Path, path_var: Option<&str>) -> Python {
        if let Some(p) = explicit {
            return Python::Program(p.to_path_buf());
        }
        let venv = project.join(".venv/bin/python");
        if venv.is_file() {
            return Python::Program(venv);
        }
        if project.join("pyproject.toml").is_file()
            && let Some(uv) = find_program("uv", path_var)
        {
            return Python::Uv(uv);
        }
        Python::Program(PathBuf::from("python3"))
    }

    pub fn command(&self) -> Command {
        match self {
            Python::Program(p) => Command::new(p),
            Python::Uv(uv) => {
                let mut c = Command::new(uv);
                c.args(["run", "--quiet", "python"]);
                c
            }
        }
    }

    /// How it is shown to the user.
    pub fn describe(&self) -> String {
        match self {
            Python::Program(p) => p.display().to_string(),
            Python::Uv(_) => "uv run python".into(),
        }
    }
}

/// `name` on `PATH` (an executable file).
pub fn find_program(name: &str, path_var: Option<&str>) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(path_var?)
        .map(|dir| dir.join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// What pytest collected here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collected {
    /// pytest's exit status for the collection (0: ids collected).
    pub exit_code: i32,
    pub ids: Vec<String>,
    pub rootdir: Option<PathBuf>,
    /// pytest's verbosity from the user's arguments (`-v` = 1).
    pub verbose: i32,
    /// pytest's own output (errors, "no tests ran"…), stdout then stderr.
    pub output: String,
    pub python: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("cannot start {python} to collect the tests locally: {source}")]
    Start {
        python: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{python} could not collect the tests: {message}")]
    Failed { python: String, message: String },
}

impl crate::diagnostic::Diagnostic for CollectError {
    fn kind(&self) -> crate::diagnostic::Kind {
        crate::diagnostic::Kind::Usage
    }

    fn hint(&self) -> Option<String> {
        Some(
            "pass --python PATH (an interpreter with pytest and the project's dependencies), or create the project's .venv (uv sync)"
                .into(),
        )
    }
}

const SCRIPT: &str = r#"
import json, os, sys
import pytest

class Collector:
    def __init__(self):
        self.ids, self.rootdir, self.verbose = [], None, 0
    def pytest_configure(self, config):
        self.rootdir = str(config.rootpath)
        self.verbose = getattr(config.option, "verbose", 0) + 1  # our -q
    def pytest_collection_finish(self, session):
        self.ids = [item.nodeid for item in session.items]

c = Collector()
code = pytest.main(["--collect-only", "-q"] + sys.argv[1:], plugins=[c])
with open(os.environ["FABRIC_REMOTE_COLLECT_OUT"], "w", encoding="utf-8") as f:
    json.dump({"exit": int(code), "rootdir": c.rootdir, "verbose": c.verbose, "ids": c.ids}, f)
"#;

#[derive(serde::Deserialize)]
struct Written {
    exit: i32,
    rootdir: Option<PathBuf>,
    verbose: i32,
    ids: Vec<String>,
}

/// Runs pytest's collection in `cwd` with `args` (blocking).
pub fn collect(python: &Python, cwd: &Path, args: &[String]) -> Result<Collected, CollectError> {
    let described = python.describe();
    let out_dir = tempfile::tempdir().map_err(|source| CollectError::Start {
        python: described.clone(),
        source,
    })?;
    let out_file = out_dir.path().join("collected.json");
    let output = python
        .command()
        .arg("-c")
        .arg(SCRIPT)
        .args(args)
        .current_dir(cwd)
        .env("FABRIC_REMOTE_COLLECT_OUT", &out_file)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|source| CollectError::Start {
            python: described.clone(),
            source,
        })?;
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    let written: Written = match std::fs::read(&out_file) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| CollectError::Failed {
            python: described.clone(),
            message: e.to_string(),
        })?,
        Err(_) => {
            let last = text
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("it printed nothing")
                .trim()
                .to_string();
            return Err(CollectError::Failed {
                python: described,
                message: last,
            });
        }
    };
    Ok(Collected {
        exit_code: written.exit,
        ids: written.ids,
        rootdir: written.rootdir,
        verbose: written.verbose,
        output: text,
        python: described,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_choice() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        assert_eq!(
            Python::choose(Some(Path::new("/x/py")), p, None),
            Python::Program("/x/py".into())
        );
        assert_eq!(
            Python::choose(None, p, None),
            Python::Program("python3".into())
        );
        let bin = p.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let uv = bin.join("uv");
        std::fs::write(&uv, "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&uv, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = bin.to_string_lossy().into_owned();
        // uv only for a pyproject project.
        assert_eq!(
            Python::choose(None, p, Some(&path)),
            Python::Program("python3".into())
        );
        std::fs::write(p.join("pyproject.toml"), "").unwrap();
        assert_eq!(Python::choose(None, p, Some(&path)), Python::Uv(uv));
        std::fs::create_dir_all(p.join(".venv/bin")).unwrap();
        std::fs::write(p.join(".venv/bin/python"), "").unwrap();
        assert_eq!(
            Python::choose(None, p, Some(&path)),
            Python::Program(p.join(".venv/bin/python"))
        );
    }
}
