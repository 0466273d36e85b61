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

use crate::util::{assert_usage_error, fabric_remote, text};

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
    // Azurite speaks Blob only: the DFS API cannot reach it.
    let out = run(
        &[
            "ls",
            "--api",
            "dfs",
            "http://127.0.0.1:1/devstoreaccount1/c/x",
        ],
        &[("FABRIC_REMOTE_TOKEN", "t")],
    );
    let stderr = assert_usage_error(&out);
    assert!(stderr.contains("Blob-only endpoint"), "{stderr}");
    for (url, needle) in [
        ("s3://bucket/key", "unsupported scheme"),
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
fn demo_without_pytest_says_how_to_get_it() {
    let out = run(&["demo", "--python", "/bin/false"], &[]);
    let stderr = assert_usage_error(&out);
    assert!(stderr.contains("./scripts/demo"), "{stderr}");
}

/// A local port nothing listens on (bound, then closed).
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Issue 8 item 5: missing credentials made `sync` exit 1 but `ls` and `job` exit 2. The
/// exit status is decided in one place by the error's kind: 2 for every command here.
#[test]
fn issue_8_missing_credentials_exit_2_in_every_command() {
    let emu = Emulator::start(Config::default()).unwrap();
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("a.txt"), b"a").unwrap();
    let url = lake_url(&emu, "creds");
    let src_arg = src.path().to_string_lossy().into_owned();
    let api = [("FABRIC_REMOTE_API_ENDPOINT", emu.url())];
    let api: Vec<(&str, &str)> = api.iter().map(|(k, v)| (*k, v.as_str())).collect();
    for args in [
        vec!["sync", src_arg.as_str(), url.as_str()],
        vec!["sync", url.as_str(), src_arg.as_str()],
        vec!["ls", url.as_str()],
        vec!["job", "list", "--workspace", "My Workspace"],
    ] {
        let out = run(&args, &api);
        let stderr = assert_usage_error(&out);
        assert!(stderr.contains("Azure CLI"), "{args:?}: {stderr}");
        assert!(
            stderr.contains("hint: run `az login`"),
            "{args:?}: {stderr}"
        );
    }
    assert!(
        emu.requests().is_empty(),
        "nothing was sent without a token"
    );
    assert_eq!(std::fs::read(src.path().join("a.txt")).unwrap(), b"a");
}

/// Issue 8 item 9: "connection refused" was retried silently for 112 s. It now fails at
/// once with one sentence naming the endpoint, in every command. (The time bound only
/// guards against retrying; it is not a benchmark.)
#[test]
fn issue_8_a_refused_connection_fails_fast_naming_the_endpoint() {
    let port = closed_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let url = format!("{endpoint}/ws/lake.Lakehouse/Files/x");
    let src = tempfile::tempdir().unwrap();
    let src_arg = src.path().to_string_lossy().into_owned();
    for args in [
        vec!["ls", url.as_str()],
        vec!["sync", src_arg.as_str(), url.as_str()],
        vec!["job", "list", "--workspace", "ws"],
    ] {
        let started = std::time::Instant::now();
        let out = run(
            &args,
            &[
                ("FABRIC_REMOTE_TOKEN", "t"),
                ("FABRIC_REMOTE_API_ENDPOINT", &endpoint),
            ],
        );
        let took = started.elapsed();
        let stderr = assert_usage_error(&out);
        assert!(
            stderr.contains(&format!(
                "could not connect to {endpoint}: the connection was refused"
            )),
            "{args:?}: {stderr}"
        );
        assert!(
            stderr.contains(&format!("hint: nothing answers at {endpoint}")),
            "{stderr}"
        );
        assert!(
            took < std::time::Duration::from_secs(10),
            "{args:?} took {took:?}"
        );
    }
}

/// A hand-written HTTP stub that answers every request with 400 and an error body that
/// echoes the request's `Authorization` header back — a fault no emulator produces, which
/// is the only reason this stub exists. Returns its base URL.
fn echoing_server() -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut buf = vec![0u8; 16 * 1024];
            let n = stream.read(&mut buf).unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]).into_owned();
            let auth = req
                .lines()
                .find_map(|l| {
                    l.strip_prefix("authorization: ")
                        .or_else(|| l.strip_prefix("Authorization: "))
                })
                .unwrap_or("")
                .trim()
                .to_string();
            let body = format!(
                r#"{{"error":{{"code":"InvalidHeaderValue","message":"The header Authorization: {auth} (token {}) is not valid"}}}}"#,
                auth.trim_start_matches("Bearer ")
            );
            let resp = format!(
                "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\nx-ms-error-code: InvalidHeaderValue\r\nx-ms-request-id: echo-1\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(resp.as_bytes());
        }
    });
    format!("http://127.0.0.1:{port}")
}

/// Issue 8 item 10: server error text was printed verbatim, so a server echoing the
/// `Authorization` header put our token into our error message. Our token is redacted from
/// every message and every log line (`-vv`, `--log-file`), whatever the server sends.
#[test]
fn issue_8_a_server_echoing_our_token_never_gets_it_printed() {
    let base = echoing_server();
    let token = "tok-do-not-print-4f1c9e";
    let log = tempfile::tempdir().unwrap();
    let log_file = log.path().join("fr.log");
    let out = run(
        &[
            "-vv",
            "--log-file",
            &log_file.to_string_lossy(),
            "ls",
            &format!("{base}/ws/lake.Lakehouse/Files/x"),
        ],
        &[("FABRIC_REMOTE_TOKEN", token)],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("400 InvalidHeaderValue"), "{stderr}");
    assert!(
        stderr.contains("Bearer ***"),
        "the echo is shown, redacted: {stderr}"
    );
    let logged = std::fs::read_to_string(&log_file).unwrap();
    assert!(logged.contains("-> 400"), "{logged}");
    for (what, text) in [
        ("stderr", &stderr),
        ("stdout", &text(&out.stdout)),
        ("log", &logged),
    ] {
        assert!(!text.contains(token), "{what} shows the token: {text}");
        assert!(
            !text.contains("do-not-print"),
            "{what} shows part of it: {text}"
        );
    }
}

/// Issue 8 item 11: messages that misled or said nothing about what to do.
#[test]
fn issue_8_messages_say_what_is_wrong_and_what_to_do() {
    for (args, needle) in [
        (
            vec!["ls", "http://[::1/x"],
            "`http://[::1/x` has no usable host; a remote URL looks like https://",
        ),
        (vec!["ls", "https://"], "`https://` has no usable host"),
        (
            vec!["ls", "/tmp"],
            "`/tmp` is not a URL; `ls` lists remote folders, so give https://",
        ),
        (
            vec![
                "sync",
                "/nonexistent",
                "http://127.0.0.1:1/ws/l.Lakehouse/Files/x",
            ],
            "SRC `/nonexistent` does not exist",
        ),
    ] {
        let out = run(&args, &[("FABRIC_REMOTE_TOKEN", "t")]);
        let stderr = assert_usage_error(&out);
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(!stderr.contains("workspace or item root"), "{stderr}");
    }
    let out = run(
        &[
            "sync",
            "/nonexistent",
            "http://127.0.0.1:1/ws/l.Lakehouse/Files/x",
        ],
        &[("FABRIC_REMOTE_TOKEN", "t")],
    );
    assert!(text(&out.stderr).contains("hint: check the path"));
    // clap's own advice (`-- -1`) would fail again; ours says what a valid value is.
    for value in ["-1", "0", "many"] {
        let out = run(
            &[
                "sync",
                ".",
                "http://127.0.0.1:1/ws/l.Lakehouse/Files/x",
                "--concurrency",
                value,
            ],
            &[("FABRIC_REMOTE_TOKEN", "t")],
        );
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("give a whole number of at least 1"),
            "{stderr}"
        );
        assert!(!stderr.contains("'-- "), "{stderr}");
    }
}

/// Issue 8 item 14: `-v` shows each request (method, URL, status, time, attempt, request
/// id), `-vv` also the retries, `--log-file` keeps them, `RUST_LOG` works; never a token.
#[test]
fn issue_8_verbose_shows_every_request_without_the_token() {
    let emu = Emulator::start(Config {
        fail_rate: 0.5,
        seed: 3,
        retry_after_ms: 1,
        ..Config::default()
    })
    .unwrap();
    seed_after_faults(&emu, &[("v/a.txt", b"a")]);
    let url = lake_url(&emu, "v");
    let token = [("FABRIC_REMOTE_TOKEN", "tok-verbose-secret-77")];
    emu.clear_requests();
    let out = run(&["-v", "ls", &url], &token);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let sent = emu.requests().len();
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains(" -> ")).collect();
    assert_eq!(lines.len(), sent, "one line per request: {stderr}");
    let last = lines.last().unwrap();
    assert!(last.contains("INFO"), "{last}");
    assert!(
        last.contains(&format!(
            "GET {}/My%20Workspace?resource=filesystem",
            emu.url()
        )),
        "{last}"
    );
    assert!(last.contains("-> 200 in "), "{last}");
    assert!(
        last.contains(&format!("(attempt {sent}, request id ")),
        "{last}"
    );
    assert!(!stderr.contains("retrying in"), "-v leaves retries out");

    let vv = run(&["-vv", "ls", &url], &token);
    if emu.requests().iter().any(|r| r.fault.is_some()) {
        assert!(
            text(&vv.stderr).contains("retrying in"),
            "{}",
            text(&vv.stderr)
        );
    }
    let env_log = run(
        &["ls", &url],
        &[token[0], ("RUST_LOG", "fabric_remote=info")],
    );
    assert!(text(&env_log.stderr).contains(" -> 200 in "));
    let quiet = run(&["ls", &url], &token);
    assert!(!text(&quiet.stderr).contains(" -> "), "quiet without -v");
    for o in [&out, &vv, &env_log, &quiet] {
        assert!(!text(&o.stderr).contains("tok-verbose"));
    }
}

/// Seeds files through faults (the fixture's emulator injects them from the start).
fn seed_after_faults(emu: &Emulator, files: &[(&str, &[u8])]) {
    emu.set_faults(0.0, 0.0, 0);
    seed(emu, files);
    emu.set_faults(0.5, 0.0, 0);
}

/// Issue 8 item 15: errors are rendered one way — `error:` without its source's text, one
/// `Caused by:` per source, then `hint:` lines — with no line repeating the one before it.
#[test]
fn issue_8_errors_render_uv_style_without_repeats() {
    let emu = Emulator::start(Config::default()).unwrap();
    emu.deny(&format!("/{}", emu.workspace_name()));
    let out = run(
        &["ls", &lake_url(&emu, "p")],
        &[("FABRIC_REMOTE_TOKEN", "t")],
    );
    let stderr = assert_usage_error(&out);
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(lines[0].starts_with("error: could not list "), "{stderr}");
    assert!(lines[1].starts_with("  Caused by: GET "), "{stderr}");
    assert!(
        lines[1].contains("403 AuthorizationPermissionMismatch"),
        "{stderr}"
    );
    assert!(
        lines[2].starts_with("hint: your identity lacks access"),
        "{stderr}"
    );
    for pair in lines.windows(2) {
        let cause = pair[1].trim_start_matches("  Caused by: ");
        assert!(!pair[0].contains(cause), "repeated: {stderr}");
    }
}

// ---- completions ----

/// What bash offers after `words` (the last one being completed), from the generated script.
fn bash_completes(script: &Path, words: &[&str]) -> Vec<String> {
    let line = words.join(" ");
    let program = format!(
        "source {}; COMP_WORDS=({line}); COMP_CWORD={}; COMP_LINE='{line}'; COMP_POINT=${{#COMP_LINE}}; \
         _fabric__remote fabric-remote '{}' '{}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        words.len() - 1,
        words[words.len() - 1],
        words[words.len() - 2],
    );
    let out = Command::new("bash")
        .args(["--norc", "-c", &program])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).lines().map(str::to_string).collect()
}

#[test]
fn bash_completion_offers_the_commands_and_their_flags() {
    let out = run(&["completions", "bash"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("fabric-remote.bash");
    std::fs::write(&script, &out.stdout).unwrap();
    let mut commands = bash_completes(&script, &["fabric-remote", "''"]);
    commands.sort();
    for want in [
        "completions",
        "demo",
        "emulator",
        "job",
        "ls",
        "report",
        "run",
        "sync",
    ] {
        assert!(commands.iter().any(|c| c == want), "{want}: {commands:?}");
    }
    assert_eq!(bash_completes(&script, &["fabric-remote", "sy"]), ["sync"]);
    let flags = bash_completes(&script, &["fabric-remote", "run", "--no"]);
    assert!(flags.iter().any(|f| f == "--nodeids-from"), "{flags:?}");
    assert!(flags.iter().any(|f| f == "--no-install"), "{flags:?}");
}

#[test]
fn zsh_and_fish_completions_cover_every_command() {
    for shell in ["zsh", "fish"] {
        let out = run(&["completions", shell], &[]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let script = text(&out.stdout);
        for word in [
            "sync",
            "run",
            "emulator",
            "nodeids-from",
            "stream-reports",
            "lock-wait",
        ] {
            assert!(script.contains(word), "{shell} lacks {word}");
        }
    }
    let fish = text(&run(&["completions", "fish"], &[]).stdout);
    assert!(fish.contains("complete -c fabric-remote"), "{fish}");
    let zsh = text(&run(&["completions", "zsh"], &[]).stdout);
    assert!(zsh.starts_with("#compdef fabric-remote"), "{zsh}");
}

#[test]
fn completions_for_an_unknown_shell_is_a_usage_error() {
    let out = run(&["completions", "tcsh"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("invalid value 'tcsh'"),
        "{}",
        text(&out.stderr)
    );
}
