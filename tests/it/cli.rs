//! The `fabric-remote` binary as a user runs it: exit codes, the one-sentence errors, the
//! credential chain (with a stand-in `az`, since the real Azure CLI cannot log in here), `ls`
//! against the emulator, and the emulator as a child process.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use bytes::Bytes;
use fabric_emulator::{Config, Emulator};
use fabric_remote::auth::Credentials;
use fabric_remote::dfs::DfsClient;
use fabric_remote::http::{HttpClient, RetryPolicy};
use fabric_remote::location::RemoteLocation;
use fabric_remote::secret::Secret;

use crate::util::{assert_success, assert_usage_error, fabric_remote, text};

/// The binary with an empty environment (no token, no `az` on PATH) plus `vars`.
fn run(args: &[&str], vars: &[(&str, &str)]) -> Output {
    let mut cmd = fabric_remote();
    cmd.env_clear().env("PATH", "/usr/bin:/bin");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.args(args).output().expect("run fabric-remote")
}

fn lake_url(emu: &Emulator, sub: &str) -> String {
    format!(
        "{}/{}/lake.Lakehouse/Files/{sub}",
        emu.url(),
        emu.workspace_name().replace(' ', "%20")
    )
}

fn seed(emu: &Emulator, files: &[(&str, &[u8])]) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let http = HttpClient::new(
        Credentials::from_token(Secret::new("seed")),
        RetryPolicy::default(),
    )
    .unwrap();
    let dfs = DfsClient::new(http);
    rt.block_on(async {
        for (path, body) in files {
            let loc = RemoteLocation::parse(&lake_url(emu, path)).unwrap();
            dfs.upload_bytes(&loc, &Bytes::copy_from_slice(body))
                .await
                .unwrap();
        }
    });
}

/// A stand-in for the Azure CLI: answers `az account get-access-token` with `tok-1`,
/// `tok-2`, … and counts its calls in `dir/calls`. A hand-written stub, used only because
/// the real `az` cannot log in on this machine.
fn fake_az(dir: &Path, logged_in: bool) {
    let calls = dir.join("calls");
    let script = if logged_in {
        format!(
            "#!/bin/sh\nn=$(cat '{c}' 2>/dev/null || echo 0)\nn=$((n+1))\necho $n > '{c}'\n\
             echo \"{{\\\"accessToken\\\":\\\"tok-$n\\\",\\\"expires_on\\\":$(( $(date +%s) + 3600 )),\\\"tokenType\\\":\\\"Bearer\\\"}}\"\n",
            c = calls.display()
        )
    } else {
        "#!/bin/sh\necho \"ERROR: Please run 'az login' to setup account.\" >&2\nexit 1\n"
            .to_string()
    };
    let path = dir.join("az");
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn az_calls(dir: &Path) -> u32 {
    std::fs::read_to_string(dir.join("calls"))
        .map(|s| s.trim().parse().unwrap_or(0))
        .unwrap_or(0)
}

#[test]
fn bad_urls_exit_2_with_one_sentence() {
    for (url, needle) in [
        ("s3://bucket/key", "unsupported scheme"),
        (
            "https://onelake.blob.fabric.microsoft.com/ws/l.Lakehouse/Files",
            "onelake.dfs.fabric.microsoft.com",
        ),
        (
            "https://app.fabric.microsoft.com/groups/x",
            "not a DFS host",
        ),
        ("https://onelake.dfs.fabric.microsoft.com/ws", "no item"),
        ("http://127.0.0.1:1/ws/l.Lakehouse/Files/../x", "`..`"),
        ("not a url", "not a URL"),
    ] {
        let out = run(&["ls", url], &[("FABRIC_REMOTE_TOKEN", "t")]);
        let stderr = assert_usage_error(&out);
        assert!(stderr.contains(needle), "{url}: {stderr}");
    }
}

#[test]
fn unknown_arguments_exit_2() {
    let out = run(&["ls"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["frobnicate"], &[]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn missing_credentials_say_how_to_log_in() {
    let emu = Emulator::start(Config::default()).unwrap();
    // No token, no client secret, and no `az` on PATH.
    let out = run(&["ls", &lake_url(&emu, "")], &[]);
    let stderr = assert_usage_error(&out);
    assert!(stderr.contains("Azure CLI"), "{stderr}");
    assert!(stderr.contains("az login"), "{stderr}");
    assert!(
        emu.requests().is_empty(),
        "nothing was sent without a token"
    );

    let out = run(
        &["ls", &lake_url(&emu, "")],
        &[("FABRIC_TEST_AUTH", "client_secret")],
    );
    let stderr = assert_usage_error(&out);
    assert!(stderr.contains("AZURE_TENANT_ID is not set"), "{stderr}");
}

#[test]
fn az_not_logged_in_is_one_sentence() {
    let emu = Emulator::start(Config::default()).unwrap();
    let bin = tempfile::tempdir().unwrap();
    fake_az(bin.path(), false);
    let path = format!("{}:/usr/bin:/bin", bin.path().display());
    let out = run(&["ls", &lake_url(&emu, "")], &[("PATH", &path)]);
    let stderr = assert_usage_error(&out);
    assert!(stderr.contains("not logged in"), "{stderr}");
    assert!(stderr.contains("hint: run `az login`"), "{stderr}");
}

#[test]
fn cli_tokens_are_cached_and_refreshed_once_after_a_401() {
    let emu = Emulator::start(Config {
        page_size: 2,
        ..Config::default()
    })
    .unwrap();
    seed(
        &emu,
        &[("p/a.txt", b"a"), ("p/b.txt", b"bb"), ("p/c/d.txt", b"ddd")],
    );
    let bin = tempfile::tempdir().unwrap();
    fake_az(bin.path(), true);
    let path = format!("{}:/usr/bin:/bin", bin.path().display());

    // Several pages, one `az` call: the token is cached.
    emu.clear_requests();
    let out = run(&["ls", "-r", &lake_url(&emu, "p")], &[("PATH", &path)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(emu.requests().len(), 2, "two listing pages");
    assert_eq!(az_calls(bin.path()), 1);

    // The next process gets tok-2 first; revoke it: one 401, one refresh (tok-3), success.
    emu.revoke_token("tok-2");
    emu.clear_requests();
    let out = run(&["ls", &lake_url(&emu, "p/c")], &[("PATH", &path)]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let statuses: Vec<u16> = emu.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [401, 200]);
    assert_eq!(az_calls(bin.path()), 3);
    assert!(!text(&out.stdout).contains("tok-"));
}

#[test]
fn a_rejected_token_is_never_printed() {
    let emu = Emulator::start(Config::default()).unwrap();
    emu.revoke_token("supersecret-token-value");
    let out = run(
        &["ls", &lake_url(&emu, "")],
        &[("FABRIC_REMOTE_TOKEN", "supersecret-token-value")],
    );
    let stderr = assert_usage_error(&out);
    assert!(stderr.contains("401"), "{stderr}");
    assert!(!stderr.contains("supersecret"));
    assert!(!text(&out.stdout).contains("supersecret"));
    // A fixed token cannot be refreshed: exactly one request.
    assert_eq!(emu.requests().len(), 1);
}

#[test]
fn ls_long_listing_and_json() {
    let emu = Emulator::start(Config::default()).unwrap();
    seed(
        &emu,
        &[
            ("proj/a.py", b"print(1)\n"),
            ("proj/sub dir/b+c.txt", b""),
            ("proj/sub dir/deeper/d.txt", b"0123456789"),
        ],
    );
    let url = lake_url(&emu, "proj");
    let out = run(&["ls", &url], &[("FABRIC_REMOTE_TOKEN", "t")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let lines: Vec<String> = text(&out.stdout).lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].trim_start().starts_with("9  "), "{lines:?}");
    assert!(lines[0].ends_with("  a.py"));
    assert!(lines[1].trim_start().starts_with("DIR  "));
    assert!(lines[1].ends_with("  sub dir/"));

    let out = run(
        &["ls", "-r", "--json", &url],
        &[("FABRIC_REMOTE_TOKEN", "t")],
    );
    assert_eq!(out.status.code(), Some(0));
    let records: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let paths: Vec<&str> = records
        .iter()
        .map(|r| r["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "a.py",
            "sub dir",
            "sub dir/b+c.txt",
            "sub dir/deeper",
            "sub dir/deeper/d.txt"
        ]
    );
    assert_eq!(records[4]["size"], 10);
    assert_eq!(records[3]["type"], "directory");

    // A file URL lists the file; a missing path is an error.
    let out = run(
        &["ls", &format!("{url}/a.py")],
        &[("FABRIC_REMOTE_TOKEN", "t")],
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).trim_end().ends_with("  a.py"));
    let out = run(
        &["ls", &format!("{url}/nope")],
        &[("FABRIC_REMOTE_TOKEN", "t")],
    );
    let stderr = assert_usage_error(&out);
    assert!(stderr.contains("does not exist"), "{stderr}");
}

#[test]
fn onelake_endpoint_override_points_at_the_emulator() {
    let emu = Emulator::start(Config::default()).unwrap();
    seed(&emu, &[("x/hello.txt", b"hi")]);
    let url = format!(
        "abfss://{}@onelake.dfs.fabric.microsoft.com/lake.Lakehouse/Files/x",
        emu.workspace_name().replace(' ', "%20")
    );
    let out = run(
        &["ls", &url],
        &[
            ("FABRIC_REMOTE_TOKEN", "t"),
            ("FABRIC_REMOTE_ONELAKE_ENDPOINT", &emu.url()),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("hello.txt"));
}

#[test]
fn emulator_command_prints_its_url_first_and_serves() {
    let data = tempfile::tempdir().unwrap();
    let mut child = fabric_remote()
        .args(["emulator", "--port", "0", "--data-dir"])
        .arg(data.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let url = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line: {first:?}"))
        .to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let target = format!("{url}/My%20Workspace/lake.Lakehouse/Files/");
    let out = run(&["ls", &target], &[("FABRIC_REMOTE_TOKEN", "t")]);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn emulator_access_log_lists_each_request_served() {
    let data = tempfile::tempdir().unwrap();
    let log = data.path().join("access.log");
    let mut child = fabric_remote()
        .args(["emulator", "--port", "0", "--access-log"])
        .arg(&log)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let url = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_string();
    let target = format!("{url}/My%20Workspace/lake.Lakehouse/Files/");
    let out = run(&["ls", &target], &[("FABRIC_REMOTE_TOKEN", "t")]);
    // Lines are appended within 200 ms of being served.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let logged = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("GET ") || std::time::Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let listing = "GET /My Workspace?resource=filesystem&recursive=false&maxResults=5000&directory=lake.Lakehouse/Files 200";
    assert!(logged.lines().any(|l| l == listing), "{logged}");
    for line in logged.lines() {
        let (method, rest) = line.split_once(' ').unwrap();
        assert!(["GET", "HEAD"].contains(&method), "{line}");
        assert!(
            rest.starts_with("/My Workspace") && rest.ends_with(" 200"),
            "{line}"
        );
    }
}

#[test]
fn emulator_rejects_bad_fault_rates() {
    let out = Command::new(env!("CARGO_BIN_EXE_fabric-remote"))
        .args(["emulator", "--fail-rate", "1.5"])
        .output()
        .unwrap();
    let stderr = assert_usage_error(&out);
    assert!(stderr.contains("--fail-rate"), "{stderr}");
}

#[test]
fn demo_syncs_the_sample_project_and_reports_its_tests_remotely() {
    let python = crate::util::python();
    let out = fabric_remote()
        .args(["demo", "--python"])
        .arg(&python)
        .output()
        .unwrap();
    let stdout = assert_success(&out);
    assert!(stdout.contains("3 files uploaded"), "{stdout}");
    assert!(
        stdout
            .contains("Synced again: 0 uploaded, 3 unchanged, 1 request(s), 0 local files re-read"),
        "{stdout}"
    );
    assert!(stdout.contains("\nCompleted ("), "{stdout}");
    assert!(
        stdout.contains("tests/test_sample.py::test_negative_rate XFAIL"),
        "{stdout}"
    );
    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        last.contains(" 6 passed, 1 skipped, 1 xfailed in ") && last.contains("(remote)"),
        "{last}"
    );
}

#[test]
fn demo_without_pytest_says_how_to_get_it() {
    let out = run(&["demo", "--python", "/bin/false"], &[]);
    let stderr = assert_usage_error(&out);
    assert!(stderr.contains("./scripts/demo"), "{stderr}");
}
