//! Where `run` (and `job`) get their settings: `test.env`, found from the working directory
//! upwards and read with python-dotenv's rules ([`crate::dotenv`]), under the process
//! environment, which wins — what `pytest-dotenv` does for the test suite itself.
//!
//! Also makes `test.env.remote`, the configuration the remote side gets: the effective
//! `FABRIC_TEST_*` values and every key of `test.env`, minus anything that looks like a
//! secret, with `FABRIC_TEST_AUTH=notebookutils` and `FABRIC_TEST_SPARK_EXEC_MODE=remote`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use crate::dotenv;
use crate::env::{self, Env};

/// The file looked for from the working directory upwards.
pub const TEST_ENV: &str = "test.env";

/// The layered configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// test.env's values (interpolated) overlaid by the process environment.
    values: HashMap<String, String>,
    /// The keys test.env defines, in file order.
    file_keys: Vec<String>,
    file: Option<PathBuf>,
    searched_from: PathBuf,
    /// Lines of test.env python-dotenv would skip (they set nothing here either).
    pub skipped_lines: Vec<usize>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{name} is not set: looked in the environment and in {looked}")]
    Missing { name: String, looked: String },
    #[error("cannot read {}: {message}", path.display())]
    Read { path: PathBuf, message: String },
}

impl crate::diagnostic::Diagnostic for ConfigError {
    fn kind(&self) -> crate::diagnostic::Kind {
        crate::diagnostic::Kind::Usage
    }

    fn hint(&self) -> Option<String> {
        match self {
            ConfigError::Missing { name, .. } => Some(format!(
                "add `{name}=…` to test.env (see test.env.sample) or export it"
            )),
            ConfigError::Read { .. } => None,
        }
    }
}

/// `test.env.remote`: the text, and what was left out of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoteEnv {
    pub text: String,
    /// Keys left out because they look like secrets (names only, never values).
    pub dropped: Vec<String>,
}

impl Config {
    /// Finds test.env from `cwd` upwards and layers it under `process`.
    pub fn load(cwd: &Path, process: HashMap<String, String>) -> Result<Config, ConfigError> {
        let file = cwd
            .ancestors()
            .map(|d| d.join(TEST_ENV))
            .find(|p| p.is_file());
        Self::from_file(cwd, file, process)
    }

    /// Like [`Config::load`] with the process environment.
    pub fn load_process(cwd: &Path) -> Result<Config, ConfigError> {
        Self::load(cwd, std::env::vars().collect())
    }

    fn from_file(
        cwd: &Path,
        file: Option<PathBuf>,
        process: HashMap<String, String>,
    ) -> Result<Config, ConfigError> {
        let mut values = HashMap::new();
        let mut file_keys = Vec::new();
        let mut skipped_lines = Vec::new();
        if let Some(path) = &file {
            let bytes = std::fs::read(path).map_err(|e| ConfigError::Read {
                path: path.clone(),
                message: e.to_string(),
            })?;
            let text = String::from_utf8(bytes).map_err(|_| ConfigError::Read {
                path: path.clone(),
                message: "it is not UTF-8 text".into(),
            })?;
            let parsed = dotenv::parse(&text);
            skipped_lines = parsed.errors.clone();
            for (key, value) in
                dotenv::resolve(&parsed.bindings, |k| process.get(k).cloned(), false)
            {
                file_keys.push(key.clone());
                if let Some(v) = value {
                    values.insert(key, v);
                }
            }
        }
        values.extend(process);
        Ok(Config {
            values,
            file_keys,
            file,
            searched_from: cwd.to_path_buf(),
            skipped_lines,
        })
    }

    /// The layered values as an [`Env`] (credentials, endpoints…).
    pub fn env(&self) -> Env {
        Env::from_map(self.values.clone())
    }

    /// The test.env that was read, if one was found.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// A non-blank value.
    pub fn get(&self, name: &str) -> Option<String> {
        self.values
            .get(name)
            .filter(|v| !v.trim().is_empty())
            .cloned()
    }

    /// A value that must be there; the error names the variable and where it was looked for.
    pub fn require(&self, name: &str) -> Result<String, ConfigError> {
        self.get(name).ok_or_else(|| self.missing(name))
    }

    /// The error for a missing `name`.
    pub fn missing(&self, name: &str) -> ConfigError {
        let looked = match &self.file {
            Some(f) => format!("{}", f.display()),
            None => format!(
                "a test.env in {} or any parent directory (there is none)",
                self.searched_from.display()
            ),
        };
        ConfigError::Missing {
            name: name.to_string(),
            looked,
        }
    }

    /// `test.env.remote` for the remote side (see the module doc).
    pub fn remote_env(&self) -> RemoteEnv {
        let mut keys: BTreeMap<&str, ()> = BTreeMap::new();
        let mut ordered: Vec<&str> = Vec::new();
        for k in &self.file_keys {
            if keys.insert(k, ()).is_none() {
                ordered.push(k);
            }
        }
        let mut from_env: Vec<&str> = self
            .values
            .keys()
            .map(String::as_str)
            .filter(|k| k.starts_with("FABRIC_TEST_") && !keys.contains_key(k))
            .collect();
        from_env.sort_unstable();
        ordered.extend(from_env);
        let mut out = RemoteEnv::default();
        out.text.push_str(
            "# Written by fabric-remote for the remote run: test.env and FABRIC_TEST_* without secrets.\n",
        );
        for key in ordered {
            if key.starts_with("FABRIC_REMOTE_")
                || key == env::FABRIC_TEST_AUTH
                || key == env::FABRIC_TEST_SPARK_EXEC_MODE
            {
                continue;
            }
            let Some(value) = self.values.get(key) else {
                continue;
            };
            if looks_secret(key, value) {
                out.dropped.push(key.to_string());
                continue;
            }
            if !is_plain_key(key) {
                continue;
            }
            out.text
                .push_str(&format!("{key}={}\n", dotenv::quote(value)));
        }
        out.text.push_str(&format!(
            "{}=\"notebookutils\"\n{}=\"remote\"\n",
            env::FABRIC_TEST_AUTH,
            env::FABRIC_TEST_SPARK_EXEC_MODE
        ));
        out
    }
}

/// A key the remote reader can take as is (`KEY=` up to the first `=`).
fn is_plain_key(key: &str) -> bool {
    !key.is_empty()
        && !key.contains(['=', '\n', '\r', '#'])
        && !key.starts_with(char::is_whitespace)
}

/// Words in a variable name that mark a secret.
const SECRET_WORDS: &[&str] = &[
    "SECRET",
    "SECRETS",
    "TOKEN",
    "PASSWORD",
    "PASSWD",
    "PWD",
    "PASS",
    "SAS",
    "KEY",
    "APIKEY",
    "CREDENTIAL",
    "CREDENTIALS",
    "CERT",
    "CERTIFICATE",
    "PRIVATE",
    "SIGNATURE",
    "CONNECTIONSTRING",
];

/// Values that carry a secret whatever the variable is called.
const SECRET_MARKERS: &[&str] = &[
    "sig=",
    "accountkey=",
    "sharedaccesskey=",
    "sharedaccesssignature=",
    "password=",
    "pwd=",
    "client_secret=",
    "-----begin",
];

/// True when the variable should not leave the machine: its name has a secret word
/// (`AZURE_CLIENT_SECRET`, `API_KEY`, `DB_PASSWORD`, `..._CONNECTION_STRING`), or its value
/// looks like a SAS, an account key, a connection string with a password, a PEM key or a JWT.
pub fn looks_secret(key: &str, value: &str) -> bool {
    let upper = key.to_ascii_uppercase();
    let words: Vec<&str> = upper
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    if words.iter().any(|w| SECRET_WORDS.contains(w)) || upper.contains("CONNECTION_STRING") {
        return true;
    }
    let lower = value.to_ascii_lowercase();
    if SECRET_MARKERS.iter().any(|m| lower.contains(m)) {
        return true;
    }
    let v = value.trim();
    v.starts_with("eyJ") && v.matches('.').count() >= 2
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str, process: &[(&str, &str)]) -> (tempfile::TempDir, Config) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(TEST_ENV), text).unwrap();
        let sub = dir.path().join("a/b");
        std::fs::create_dir_all(&sub).unwrap();
        let process = process
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let c = Config::load(&sub, process).unwrap();
        (dir, c)
    }

    #[test]
    fn found_upwards_and_the_environment_wins() {
        let (dir, c) = config(
            "FABRIC_TEST_WORKSPACE_NAME=My Workspace # comment\nFABRIC_TEST_LAKEHOUSE_NAME=lake\n",
            &[("FABRIC_TEST_LAKEHOUSE_NAME", "other")],
        );
        assert_eq!(c.file(), Some(dir.path().join(TEST_ENV).as_path()));
        assert_eq!(
            c.get("FABRIC_TEST_WORKSPACE_NAME").as_deref(),
            Some("My Workspace")
        );
        assert_eq!(
            c.get("FABRIC_TEST_LAKEHOUSE_NAME").as_deref(),
            Some("other")
        );
        assert_eq!(
            c.env().get("FABRIC_TEST_WORKSPACE_NAME").as_deref(),
            Some("My Workspace")
        );
    }

    #[test]
    fn a_missing_value_names_the_variable_and_where_it_looked() {
        let (dir, c) = config("A=1\n", &[]);
        let e = c
            .require("FABRIC_TEST_LAKEHOUSE_NAME")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            format!(
                "FABRIC_TEST_LAKEHOUSE_NAME is not set: looked in the environment and in {}",
                dir.path().join(TEST_ENV).display()
            )
        );
        let none = tempfile::tempdir().unwrap();
        let c = Config::load(none.path(), HashMap::new()).unwrap();
        let e = c.require("X").unwrap_err().to_string();
        assert!(e.contains("there is none"), "{e}");
    }

    #[test]
    fn remote_env_drops_secrets_and_sets_the_remote_mode() {
        let (_dir, c) = config(
            "FABRIC_TEST_WORKSPACE_NAME=My Workspace\nAZURE_CLIENT_SECRET=canary-1\nFABRIC_TEST_AUTH=CLI\nSTORAGE_URL=https://a/b?sv=1&sig=canary-2\nFABRIC_REMOTE_TOKEN=canary-3\nDB_PASSWORD=canary-4\nNOTE=\"two\nlines\"\n",
            &[("FABRIC_TEST_THREADS", "4"), ("UNRELATED", "x")],
        );
        let r = c.remote_env();
        for canary in [
            "canary-1",
            "canary-2",
            "canary-3",
            "canary-4",
            "UNRELATED",
            "CLI",
        ] {
            assert!(!r.text.contains(canary), "{canary} in {}", r.text);
        }
        assert_eq!(
            r.dropped,
            ["AZURE_CLIENT_SECRET", "STORAGE_URL", "DB_PASSWORD"]
        );
        let values = dotenv::load(&r.text, |_| None);
        let get = |k: &str| {
            values
                .iter()
                .find(|(n, _)| n == k)
                .and_then(|(_, v)| v.clone())
        };
        assert_eq!(
            get("FABRIC_TEST_WORKSPACE_NAME").as_deref(),
            Some("My Workspace")
        );
        assert_eq!(get("NOTE").as_deref(), Some("two\nlines"));
        assert_eq!(get("FABRIC_TEST_THREADS").as_deref(), Some("4"));
        assert_eq!(get("FABRIC_TEST_AUTH").as_deref(), Some("notebookutils"));
        assert_eq!(
            get("FABRIC_TEST_SPARK_EXEC_MODE").as_deref(),
            Some("remote")
        );
    }

    #[test]
    fn secret_names_and_values() {
        for (k, v) in [
            ("AZURE_CLIENT_SECRET", "x"),
            ("FABRIC_TEST_FEDERATED_TOKEN_FILE", "/t"),
            ("MY_API_KEY", "x"),
            ("DB_CONNECTION_STRING", "Server=x"),
            ("URL", "https://acct.blob.core.windows.net/c?sp=r&sig=abc"),
            ("CONN", "Server=x;Password=y"),
            ("T", "eyJhbGciOi.eyJzdWIi.sig"),
        ] {
            assert!(looks_secret(k, v), "{k}");
        }
        for (k, v) in [
            ("FABRIC_TEST_WORKSPACE_NAME", "My Workspace"),
            ("FABRIC_TEST_THREADS", "4"),
            ("MONKEY", "x"),
        ] {
            assert!(!looks_secret(k, v), "{k}");
        }
    }
}
