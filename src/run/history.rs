//! What earlier remote runs of a project left on this machine: each test's last duration
//! (to balance shards) and the tests that failed or errored the last time they ran (for
//! `run --lf`).
//!
//! One JSON file per project in the user's cache directory
//! (`<cache>/run-history/<hash of the project's path>.json`), written whole through a
//! temporary file and a rename. Like pytest's own `lastfailed`, a run updates only the
//! tests it ran: a pass clears a test, a failure or error marks it, and tests it did not
//! run keep what they had. Tests left without a result because the run was interrupted are
//! left alone too (they did not fail); tests without a result for any other reason (a
//! failed job) are marked. A collection error marks its file, which `--lf` then selects
//! whole.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::junit::{Kind, Mapping, Outcome};

/// Why the history file could not be used (never fatal to a run).
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("cannot read the run history {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the run history {path} is not valid ({message}); it will be written afresh")]
    Invalid { path: PathBuf, message: String },
    #[error("cannot write the run history {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

const VERSION: u32 = 1;

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Stored {
    version: u32,
    /// The project's path, for people looking into the cache.
    #[serde(default)]
    project: String,
    #[serde(default)]
    durations: BTreeMap<String, f64>,
    #[serde(default)]
    last_failed: BTreeSet<String>,
}

/// One project's history.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    /// Seconds per node id (setup + call + teardown), from the last run that ran it.
    pub durations: HashMap<String, f64>,
    /// Node ids (and collector ids) that failed or errored the last time they ran.
    pub last_failed: BTreeSet<String>,
}

/// Where the history of `project` lives under `cache_dir`.
pub fn path(cache_dir: &Path, project: &Path) -> PathBuf {
    let digest = Sha256::digest(project.to_string_lossy().as_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    cache_dir.join("run-history").join(format!("{hex}.json"))
}

impl History {
    /// Reads the file; a missing file is an empty history.
    pub fn load(path: &Path) -> Result<History, HistoryError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(History::default()),
            Err(source) => {
                return Err(HistoryError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let stored: Stored = serde_json::from_slice(&bytes).map_err(|e| HistoryError::Invalid {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        if stored.version != VERSION {
            return Err(HistoryError::Invalid {
                path: path.to_path_buf(),
                message: format!("version {} is not {VERSION}", stored.version),
            });
        }
        Ok(History {
            durations: stored
                .durations
                .into_iter()
                .filter(|(_, d)| d.is_finite() && *d >= 0.0)
                .collect(),
            last_failed: stored.last_failed,
        })
    }

    /// Writes the file (through a temporary file and a rename).
    pub fn save(&self, path: &Path, project: &Path) -> Result<(), HistoryError> {
        let fail = |source| HistoryError::Write {
            path: path.to_path_buf(),
            source,
        };
        let stored = Stored {
            version: VERSION,
            project: project.to_string_lossy().into_owned(),
            durations: self
                .durations
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
            last_failed: self.last_failed.clone(),
        };
        let body = serde_json::to_vec(&stored).unwrap_or_default();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        let tmp = path.with_extension(format!("json.tmp-{}", std::process::id()));
        std::fs::write(&tmp, body).map_err(fail)?;
        std::fs::rename(&tmp, path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            fail(e)
        })
    }

    /// The ids of `ids` that failed last time: listed themselves, or under a file or folder
    /// whose collection failed. Keeps the order of `ids`.
    pub fn select_last_failed(&self, ids: &[String]) -> Vec<String> {
        ids.iter()
            .filter(|id| {
                if self.last_failed.contains(id.as_str()) {
                    return true;
                }
                let path = id.split_once("::").map_or(id.as_str(), |(p, _)| p);
                let mut prefix = path;
                loop {
                    if self.last_failed.contains(prefix) {
                        return true;
                    }
                    match prefix.rfind('/') {
                        Some(i) => prefix = &prefix[..i],
                        None => return false,
                    }
                }
            })
            .cloned()
            .collect()
    }

    /// Takes in the results of a run of `ran`. `interrupted`: the run was stopped (tests
    /// without a result keep what they had).
    pub fn record(&mut self, mapping: &Mapping, ran: &[String], interrupted: bool) {
        let mut collection_errors = BTreeSet::new();
        for result in &mapping.results {
            let failed = matches!(result.headline().outcome, Outcome::Failed | Outcome::Error);
            match result.kind {
                Kind::Test if result.missing && interrupted => {}
                Kind::Test if result.missing => {
                    self.last_failed.insert(result.nodeid.clone());
                }
                Kind::Test => {
                    if let Some(d) = result.duration.filter(|d| d.is_finite() && *d >= 0.0) {
                        self.durations.insert(result.nodeid.clone(), d);
                    }
                    if failed {
                        self.last_failed.insert(result.nodeid.clone());
                    } else {
                        self.last_failed.remove(&result.nodeid);
                    }
                }
                Kind::Collection if failed => {
                    collection_errors.insert(result.nodeid.clone());
                    self.last_failed.insert(result.nodeid.clone());
                }
                _ => {}
            }
        }
        // A file or folder marked by an earlier collection error that collected cleanly now.
        let ran_paths: BTreeSet<&str> = ran
            .iter()
            .map(|id| id.split_once("::").map_or(id.as_str(), |(p, _)| p))
            .collect();
        let cleared: Vec<String> = self
            .last_failed
            .iter()
            .filter(|k| !k.contains("::") && !collection_errors.contains(*k))
            .filter(|k| {
                ran_paths
                    .iter()
                    .any(|p| *p == k.as_str() || p.starts_with(&format!("{k}/")))
            })
            .cloned()
            .collect();
        for k in cleared {
            self.last_failed.remove(&k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::junit::{MapOptions, ReportLog};

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn report(id: &str, when: &str, outcome: &str, duration: f64) -> String {
        format!(
            r#"{{"$report_type":"TestReport","nodeid":"{id}","when":"{when}","outcome":"{outcome}","duration":{duration},"longrepr":null}}"#
        )
    }

    fn mapping(expected: &[String], lines: &[String]) -> Mapping {
        let mut log = ReportLog::new();
        for l in lines {
            log.push_line(l).unwrap();
        }
        log.finish(Some(expected), &MapOptions::default())
    }

    #[test]
    fn a_run_marks_failures_clears_passes_and_keeps_what_it_did_not_run() {
        let mut h = History::default();
        h.last_failed.insert("t.py::old".into());
        h.last_failed.insert("t.py::fixed".into());
        let ran = ids(&["t.py::fixed", "t.py::bad", "t.py::gone"]);
        let m = mapping(
            &ran,
            &[
                report("t.py::fixed", "setup", "passed", 0.1),
                report("t.py::fixed", "call", "passed", 0.2),
                report("t.py::fixed", "teardown", "passed", 0.1),
                report("t.py::bad", "setup", "passed", 0.0),
                report("t.py::bad", "call", "failed", 1.0),
                report("t.py::bad", "teardown", "passed", 0.0),
            ],
        );
        let mut interrupted = h.clone();
        h.record(&m, &ran, false);
        assert_eq!(
            h.last_failed.iter().collect::<Vec<_>>(),
            ["t.py::bad", "t.py::gone", "t.py::old"]
        );
        assert!((h.durations["t.py::fixed"] - 0.4).abs() < 1e-9);
        assert!(!h.durations.contains_key("t.py::gone"));
        // Stopped by Ctrl-C: `gone` never ran, so it did not fail.
        interrupted.record(&m, &ran, true);
        assert_eq!(
            interrupted.last_failed.iter().collect::<Vec<_>>(),
            ["t.py::bad", "t.py::old"]
        );
    }

    #[test]
    fn last_failed_selects_listed_ids_and_everything_under_a_failed_collector() {
        let mut h = History::default();
        h.last_failed.insert("a.py::TestX::t[1]".into());
        h.last_failed.insert("broken.py".into());
        h.last_failed.insert("pkg".into());
        let all = ids(&[
            "a.py::TestX::t[1]",
            "a.py::TestX::t[2]",
            "broken.py::test_a",
            "broken.pyx::test_b",
            "pkg/sub/t.py::test_c",
            "pkgs/t.py::test_d",
        ]);
        assert_eq!(
            h.select_last_failed(&all),
            ids(&[
                "a.py::TestX::t[1]",
                "broken.py::test_a",
                "pkg/sub/t.py::test_c"
            ])
        );
    }

    #[test]
    fn a_collection_error_marks_its_file_until_it_collects_again() {
        let mut h = History::default();
        let ran = ids(&["broken.py::test_a"]);
        let err = r#"{"$report_type":"CollectReport","nodeid":"broken.py","outcome":"failed","longrepr":"ImportError","result":[],"sections":[]}"#;
        h.record(&mapping(&ran, &[err.to_string()]), &ran, false);
        assert!(h.last_failed.contains("broken.py"));
        let ok = [
            report("broken.py::test_a", "setup", "passed", 0.0),
            report("broken.py::test_a", "call", "passed", 0.0),
            report("broken.py::test_a", "teardown", "passed", 0.0),
        ];
        h.record(&mapping(&ran, &ok), &ran, false);
        assert!(h.last_failed.is_empty(), "{h:?}");
    }

    #[test]
    fn saved_and_loaded_again_and_a_bad_file_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path(), Path::new("/work/proj"));
        assert!(p.starts_with(dir.path().join("run-history")));
        assert_eq!(History::load(&p).unwrap(), History::default());
        let mut h = History::default();
        h.durations.insert("t.py::a".into(), 1.5);
        h.last_failed.insert("t.py::a".into());
        h.save(&p, Path::new("/work/proj")).unwrap();
        assert_eq!(History::load(&p).unwrap(), h);
        std::fs::write(&p, "{not json").unwrap();
        assert!(matches!(
            History::load(&p),
            Err(HistoryError::Invalid { .. })
        ));
    }
}
