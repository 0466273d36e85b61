//! The Fabric REST side: workspaces, items, SJDs, LROs, jobs, Livy logs, faults.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use fabric_emulator::{Config, Emulator};
use reqwest::{Method, Response};
use serde_json::{Value, json};

use crate::{Dfs, TOKEN, header};

struct Fab {
    emu: Emulator,
    http: reqwest::Client,
}

fn config() -> Config {
    Config {
        job_visible_after_ms: 200,
        fabric_retry_after_secs: 0,
        lro_rate: 0.0,
        lro_duration_ms: 150,
        ..Config::default()
    }
}

impl Fab {
    fn start(config: Config) -> Fab {
        Fab {
            emu: Emulator::start(config).expect("start emulator"),
            http: reqwest::Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}/v1{path}", self.emu.url())
        }
    }

    fn ws(&self) -> String {
        format!("/workspaces/{}", self.emu.workspace_id())
    }

    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Response {
        let mut b = self.http.request(method, self.url(path)).bearer_auth(TOKEN);
        if let Some(v) = body {
            b = b.json(&v);
        }
        b.send().await.unwrap()
    }

    async fn get(&self, path: &str) -> Response {
        self.send(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Option<Value>) -> Response {
        self.send(Method::POST, path, body).await
    }

    async fn get_json(&self, path: &str) -> Value {
        let r = self.get(path).await;
        assert_eq!(r.status(), 200, "GET {path}");
        r.json().await.unwrap()
    }

    /// Every `value` of a paginated list, following `continuationUri`; and the page count.
    async fn list_all(&self, path: &str) -> (Vec<Value>, usize) {
        let mut out = Vec::new();
        let mut url = self.url(path);
        let mut pages = 0;
        loop {
            let body = self.get_json(&url).await;
            pages += 1;
            out.extend(body["value"].as_array().unwrap().iter().cloned());
            match body["continuationUri"].as_str() {
                Some(next) => {
                    assert!(body["continuationToken"].is_string());
                    url = next.to_owned();
                }
                None => {
                    assert!(body.get("continuationToken").is_none());
                    return (out, pages);
                }
            }
            assert!(pages < 100, "pagination does not end");
        }
    }

    /// Creates an SJD (expects 201) and returns its id.
    async fn create_sjd(&self, name: &str, config: Option<Value>) -> String {
        let mut body = json!({"displayName": name, "description": "test"});
        if let Some(c) = config {
            body["definition"] = definition(&c);
        }
        let r = self
            .post(&format!("{}/sparkJobDefinitions", self.ws()), Some(body))
            .await;
        assert_eq!(r.status(), 201);
        let v: Value = r.json().await.unwrap();
        v["id"].as_str().unwrap().to_owned()
    }

    /// Runs the SJD; returns the instance URL from `Location`.
    async fn run(&self, sjd: &str, body: Option<Value>) -> String {
        let r = self
            .post(
                &format!(
                    "{}/sparkJobDefinitions/{sjd}/jobs/sparkjob/instances",
                    self.ws()
                ),
                body,
            )
            .await;
        assert_eq!(r.status(), 202);
        assert!(r.headers().get("x-ms-operation-id").is_none());
        assert_eq!(header(&r, "retry-after"), "0");
        let loc = header(&r, "location");
        assert!(r.bytes().await.unwrap().is_empty());
        loc
    }

    /// Polls an instance until `pred(status)`; 404s count as "not yet visible".
    async fn poll(&self, url: &str, done: impl Fn(&str) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let r = self.get(url).await;
            assert!(r.headers().get("retry-after").is_some());
            if r.status() == 200 {
                let v: Value = r.json().await.unwrap();
                if done(v["status"].as_str().unwrap()) {
                    return v;
                }
            } else {
                assert_eq!(r.status(), 404);
                assert_eq!(
                    header(&r, "x-ms-public-api-error-code"),
                    "JobInstanceNotFound"
                );
            }
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "timed out polling {url}"
            );
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }

    async fn wait_terminal(&self, url: &str) -> Value {
        self.poll(url, |s| {
            matches!(s, "Completed" | "Failed" | "Cancelled" | "Deduped")
        })
        .await
    }

    fn write_script(&self, rel: &str, text: &str) -> String {
        let path = self.emu.lakehouse_files_dir("lake").unwrap().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
        format!(
            "abfss://{}@onelake.dfs.fabric.microsoft.com/lake.Lakehouse/Files/{rel}",
            self.emu.workspace_id()
        )
    }

    fn lakehouse_id(&self) -> String {
        self.emu.lakehouse_id("lake").unwrap()
    }
}

fn definition(config: &Value) -> Value {
    json!({
        "format": "SparkJobDefinitionV1",
        "parts": [{
            "path": "SparkJobDefinitionV1.json",
            "payload": STANDARD.encode(config.to_string()),
            "payloadType": "InlineBase64",
        }],
    })
}

fn sjd_config(exe: &str, lakehouse: &str, args: &str) -> Value {
    json!({
        "executableFile": exe,
        "defaultLakehouseArtifactId": lakehouse,
        "mainClass": "",
        "additionalLakehouseIds": [],
        "retryPolicy": null,
        "commandLineArguments": args,
        "additionalLibraryUris": [],
        "language": "Python",
        "environmentArtifactId": null,
    })
}

/// Status and error code of a Fabric error, checking header and body agree.
async fn fabric_error(r: Response) -> (u16, String, Value) {
    let status = r.status().as_u16();
    let code = header(&r, "x-ms-public-api-error-code");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["errorCode"], code.as_str());
    assert!(body["requestId"].is_string() && body["message"].is_string());
    (status, code, body)
}

/// `2023-04-22T06:35:00.7812154`: 7 fractional digits, no zone.
fn assert_fabric_time(v: &Value) {
    let s = v.as_str().unwrap_or_else(|| panic!("not a time: {v}"));
    assert_eq!(s.len(), 27, "{s}");
    assert_eq!(&s[10..11], "T");
    assert_eq!(&s[19..20], ".");
    assert!(s[20..].bytes().all(|b| b.is_ascii_digit()), "{s}");
}

#[tokio::test]
async fn workspaces_items_and_lakehouses_paginate() {
    let f = Fab::start(Config {
        page_size: 1,
        lakehouses: vec!["lake".into(), "other".into()],
        ..config()
    });
    let (all, pages) = f.list_all("/workspaces").await;
    assert_eq!(pages, all.len());
    assert!(pages >= 2, "the client must follow continuations");
    let ours: Vec<&Value> = all
        .iter()
        .filter(|w| w["displayName"] == "My Workspace")
        .collect();
    assert_eq!(ours.len(), 1);
    assert_eq!(ours[0]["id"], f.emu.workspace_id());
    assert_eq!(ours[0]["type"], "Workspace");
    // A near-miss name is there too: matching must be exact.
    assert!(all.iter().any(|w| w["displayName"] == "My workspace"));

    // The token may also be sent back as a query parameter (encoded once more).
    let first = f.get_json("/workspaces").await;
    let token = first["continuationToken"].as_str().unwrap();
    let r = f
        .http
        .get(f.url("/workspaces"))
        .query(&[("continuationToken", token)])
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = f.get("/workspaces?continuationToken=bogus").await;
    assert_eq!(fabric_error(r).await.1, "InvalidContinuationToken");

    let ws = f.get_json(&f.ws()).await;
    assert_eq!(ws["displayName"], "My Workspace");
    assert!(ws["capacityId"].is_string());
    assert_eq!(ws["oneLakeEndpoints"]["dfsEndpoint"], f.emu.url());
    let r = f
        .get("/workspaces/00000000-0000-0000-0000-000000000001")
        .await;
    assert_eq!(fabric_error(r).await.0, 404);
    let r = f
        .get("/workspaces/00000000-0000-0000-0000-000000000001/items")
        .await;
    assert_eq!(fabric_error(r).await.1, "WorkspaceNotFound");

    let (lakes, pages) = f
        .list_all(&format!("{}/items?type=Lakehouse", f.ws()))
        .await;
    assert_eq!((lakes.len(), pages), (2, 2));
    assert!(lakes.iter().all(|l| l["type"] == "Lakehouse"));
    let (lhs, _) = f.list_all(&format!("{}/lakehouses", f.ws())).await;
    let lake = lhs.iter().find(|l| l["displayName"] == "lake").unwrap();
    assert_eq!(lake["id"], f.lakehouse_id());
    assert_eq!(
        lake["properties"]["oneLakeFilesPath"],
        format!(
            "{}/{}/{}/Files",
            f.emu.url(),
            f.emu.workspace_id(),
            f.lakehouse_id()
        )
    );
    let one = f
        .get_json(&format!("{}/lakehouses/{}", f.ws(), f.lakehouse_id()))
        .await;
    assert_eq!(one["displayName"], "lake");
    let r = f.get(&format!("{}/nonsense", f.ws())).await;
    assert_eq!(fabric_error(r).await.0, 404);
}

#[tokio::test]
async fn create_get_list_delete_and_duplicates() {
    let f = Fab::start(Config {
        page_size: 2,
        ..config()
    });
    let a = f.create_sjd("alpha", None).await;
    let b = f.create_sjd("beta", None).await;
    // The generic items endpoint creates SJDs too.
    let r = f
        .post(
            &format!("{}/items", f.ws()),
            Some(json!({"displayName": "gamma", "type": "SparkJobDefinition"})),
        )
        .await;
    assert_eq!(r.status(), 201);
    let gamma: Value = r.json().await.unwrap();
    assert_eq!(gamma["type"], "SparkJobDefinition");

    let r = f
        .post(
            &format!("{}/sparkJobDefinitions", f.ws()),
            Some(json!({"displayName": "alpha"})),
        )
        .await;
    let (status, code, _) = fabric_error(r).await;
    assert_eq!(
        (status, code.as_str()),
        (409, "ItemDisplayNameAlreadyInUse")
    );

    let (sjds, pages) = f.list_all(&format!("{}/sparkJobDefinitions", f.ws())).await;
    assert_eq!((sjds.len(), pages), (3, 2));
    let (items, _) = f
        .list_all(&format!("{}/items?type=SparkJobDefinition", f.ws()))
        .await;
    assert_eq!(items.len(), 3);

    let got = f
        .get_json(&format!("{}/sparkJobDefinitions/{a}", f.ws()))
        .await;
    assert_eq!(got["displayName"], "alpha");
    assert_eq!(got["workspaceId"], f.emu.workspace_id());
    assert!(
        got["properties"]["oneLakeRootPath"]
            .as_str()
            .unwrap()
            .ends_with(&a)
    );

    let r = f
        .send(
            Method::DELETE,
            &format!("{}/sparkJobDefinitions/{b}", f.ws()),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = f.get(&format!("{}/sparkJobDefinitions/{b}", f.ws())).await;
    assert_eq!(fabric_error(r).await.1, "ItemNotFound");
    let r = f
        .get(&format!("{}/sparkJobDefinitions/not-a-guid", f.ws()))
        .await;
    assert_eq!(fabric_error(r).await.0, 400);
}

#[tokio::test]
async fn lro_create_update_and_get_definition_persist_across_restart() {
    let data = std::env::temp_dir().join(format!(
        "fabric-emulator-it-lro-{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
    ));
    let _ = std::fs::remove_dir_all(&data);
    let f = Fab::start(Config {
        data_dir: Some(data.clone()),
        lro_rate: 1.0,
        ..config()
    });

    // Create → 202, then poll the operation.
    let r = f
        .post(
            &format!("{}/sparkJobDefinitions", f.ws()),
            Some(json!({"displayName": "runner"})),
        )
        .await;
    assert_eq!(r.status(), 202);
    let op = header(&r, "x-ms-operation-id");
    assert_eq!(
        header(&r, "location"),
        format!("{}/v1/operations/{op}", f.emu.url())
    );
    assert_eq!(header(&r, "retry-after"), "0");
    // Not visible and no result until the operation succeeds.
    let (sjds, _) = f.list_all(&format!("{}/sparkJobDefinitions", f.ws())).await;
    assert!(sjds.is_empty());
    let r = f.get(&format!("/operations/{op}/result")).await;
    assert_eq!(fabric_error(r).await.1, "OperationNotSucceeded");
    let state = f.get_json(&format!("/operations/{op}")).await;
    assert!(matches!(
        state["status"].as_str(),
        Some("NotStarted" | "Running")
    ));
    assert_fabric_time(&state["createdTimeUtc"]);
    let created = poll_operation(&f, &op).await.expect("create has a result");
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["displayName"], "runner");

    // updateDefinition → 202, result OperationHasNoResult.
    let cfg = sjd_config(
        "abfss://ws@h/lake.Lakehouse/Files/main.py",
        &f.lakehouse_id(),
        "-q --x 1",
    );
    let r = f
        .post(
            &format!("{}/sparkJobDefinitions/{id}/updateDefinition", f.ws()),
            Some(json!({"definition": definition(&cfg)})),
        )
        .await;
    assert_eq!(r.status(), 202);
    let op = header(&r, "x-ms-operation-id");
    assert!(poll_operation(&f, &op).await.is_none());

    // getDefinition → 202, result is the definition.
    let r = f
        .post(
            &format!("{}/sparkJobDefinitions/{id}/getDefinition", f.ws()),
            None,
        )
        .await;
    assert_eq!(r.status(), 202);
    let op = header(&r, "x-ms-operation-id");
    let def = poll_operation(&f, &op).await.unwrap();
    assert_eq!(config_of(&def), cfg);
    assert!(
        def["definition"]["parts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["path"] == ".platform")
    );
    drop(f);

    // A restarted emulator on the same data dir still has the SJD and its definition.
    let f = Fab::start(Config {
        data_dir: Some(data.clone()),
        ..config()
    });
    let r = f
        .post(&format!("{}/items/{id}/getDefinition", f.ws()), None)
        .await;
    assert_eq!(r.status(), 200);
    let def: Value = r.json().await.unwrap();
    assert_eq!(config_of(&def), cfg);
    // Synchronous updateDefinition: 200 without body.
    let r = f
        .post(
            &format!("{}/items/{id}/updateDefinition", f.ws()),
            Some(json!({"definition": definition(&cfg)})),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.unwrap().is_empty());
    drop(f);
    let _ = std::fs::remove_dir_all(&data);
}

async fn poll_operation(f: &Fab, op: &str) -> Option<Value> {
    let start = Instant::now();
    loop {
        let r = f.get(&format!("/operations/{op}")).await;
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "x-ms-operation-id"), op);
        let loc = header(&r, "location");
        let v: Value = r.json().await.unwrap();
        match v["status"].as_str().unwrap() {
            "Succeeded" => {
                assert_eq!(v["percentComplete"], 100);
                assert!(loc.ends_with("/result"));
                let r = f.get(&format!("/operations/{op}/result")).await;
                if r.status() == 200 {
                    return Some(r.json().await.unwrap());
                }
                assert_eq!(fabric_error(r).await.1, "OperationHasNoResult");
                return None;
            }
            "NotStarted" | "Running" => {}
            s => panic!("unexpected operation status {s}"),
        }
        assert!(start.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn config_of(def: &Value) -> Value {
    let part = def["definition"]["parts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["path"] == "SparkJobDefinitionV1.json")
        .unwrap();
    assert_eq!(part["payloadType"], "InlineBase64");
    serde_json::from_slice(&STANDARD.decode(part["payload"].as_str().unwrap()).unwrap()).unwrap()
}

#[tokio::test]
async fn invalid_definitions_are_refused() {
    let f = Fab::start(config());
    let id = f.create_sjd("v", None).await;
    let url = format!("{}/sparkJobDefinitions/{id}/updateDefinition", f.ws());
    let part = |path: &str, payload: &str, kind: &str| json!({"definition": {"parts": [{"path": path, "payload": payload, "payloadType": kind}]}});
    let cases = [
        (
            part("SparkJobDefinitionV1.json", "%%%not base64", "InlineBase64"),
            "InvalidDefinitionParts",
        ),
        (
            part(".platform", &STANDARD.encode("{}"), "InlineBase64"),
            "MissingDefinitionParts",
        ),
        (
            part(
                "SparkJobDefinitionV1.json",
                &STANDARD.encode(r#"{"commandLineArguments": ["-q"]}"#),
                "InlineBase64",
            ),
            "InvalidDefinitionParts",
        ),
        (
            part("SparkJobDefinitionV1.json", &STANDARD.encode("{}"), "Text"),
            "UnsupportedPayloadType",
        ),
        (json!({}), "MissingDefinition"),
    ];
    for (body, want) in cases {
        let r = f.post(&url, Some(body)).await;
        let (status, code, _) = fabric_error(r).await;
        assert_eq!((status, code.as_str()), (400, want));
    }
}

#[tokio::test]
async fn a_run_completes_writes_to_the_lakehouse_and_keeps_its_logs() {
    let f = Fab::start(config());
    let exe = f.write_script(
        "scripts/ok.py",
        "import os, sys\n\
         root = os.environ['FABRIC_EMULATOR_LAKEHOUSE_ROOT']\n\
         os.makedirs(os.path.join(root, 'Files', 'out'), exist_ok=True)\n\
         open(os.path.join(root, 'Files', 'out', 'result.txt'), 'w').write(' '.join(sys.argv[1:]))\n\
         print('hello from the driver')\n",
    );
    let id = f
        .create_sjd(
            "ok",
            Some(sjd_config(&exe, &f.lakehouse_id(), "--junit  out.xml -q")),
        )
        .await;
    let url = f.run(&id, None).await;
    assert!(url.starts_with(&format!(
        "{}/v1/workspaces/{}/items/{id}/jobs/instances/",
        f.emu.url(),
        f.emu.workspace_id()
    )));
    // Right after submit the instance is not visible yet.
    let r = f.get(&url).await;
    assert_eq!(header(&r, "retry-after"), "0");
    assert_eq!(fabric_error(r).await.1, "JobInstanceNotFound");

    let done = f.wait_terminal(&url).await;
    assert_eq!(done["status"], "Completed", "{done}");
    assert_eq!(done["itemId"], id.as_str());
    assert_eq!(done["jobType"], "sparkjob");
    assert_eq!(done["invokeType"], "Manual");
    assert!(done["failureReason"].is_null());
    assert_fabric_time(&done["startTimeUtc"]);
    assert_fabric_time(&done["endTimeUtc"]);
    let jid = url.rsplit('/').next().unwrap();
    assert_eq!(done["id"], jid);

    // The output landed in the lakehouse and is listable over DFS.
    let out = f
        .emu
        .lakehouse_files_dir("lake")
        .unwrap()
        .join("out/result.txt");
    assert_eq!(std::fs::read_to_string(out).unwrap(), "--junit out.xml -q");
    let d = Dfs {
        emu: f.emu,
        http: f.http.clone(),
        token: TOKEN.to_owned(),
    };
    let (names, _) = d
        .list_all(&[
            ("directory", "lake.Lakehouse/Files/out"),
            ("recursive", "true"),
        ])
        .await;
    assert!(
        names
            .iter()
            .any(|p| p["name"] == "lake.Lakehouse/Files/out/result.txt"),
        "{names:?}"
    );
    let f = Fab {
        emu: d.emu,
        http: d.http,
    };

    // Instances list, Livy session, driver logs.
    let (instances, _) = f
        .list_all(&format!("{}/items/{id}/jobs/instances", f.ws()))
        .await;
    assert_eq!(instances.len(), 1);
    let (sessions, _) = f
        .list_all(&format!("{}/sparkJobDefinitions/{id}/livySessions", f.ws()))
        .await;
    assert_eq!(sessions.len(), 1);
    let s = &sessions[0];
    assert_eq!(s["jobInstanceId"], jid);
    assert_eq!(s["state"], "Succeeded");
    let app = s["sparkApplicationId"].as_str().unwrap();
    assert!(
        app.starts_with("application_") && app.ends_with("_0001"),
        "{app}"
    );
    let livy = s["livyId"].as_str().unwrap();
    let one = f
        .get_json(&format!(
            "{}/sparkJobDefinitions/{id}/livySessions/{livy}",
            f.ws()
        ))
        .await;
    assert_eq!(one["sparkApplicationId"], app);
    let logs = format!(
        "{}/sparkJobDefinitions/{id}/livySessions/{livy}/applications/{app}/logs",
        f.ws()
    );
    let r = f.get(&format!("{logs}?type=driver&fileName=stdout")).await;
    assert_eq!(r.status(), 200);
    assert!(header(&r, "content-type").starts_with("text/plain"));
    assert_eq!(r.text().await.unwrap(), "hello from the driver\n");
    let r = f
        .get(&format!(
            "{logs}?type=driver&fileName=stdout&isDownload=true&isPartial=true&offset=6&size=4"
        ))
        .await;
    assert_eq!(r.text().await.unwrap(), "from");
    let r = f.get(&format!("{logs}?type=driver&fileName=stderr")).await;
    assert_eq!(r.text().await.unwrap(), "");
    let r = f.get(&format!("{logs}?type=driver&fileName=nope")).await;
    assert_eq!(fabric_error(r).await.0, 400);

    // Cancelling a finished job.
    let r = f.post(&format!("{url}/cancel"), None).await;
    let (status, code, _) = fabric_error(r).await;
    assert_eq!((status, code.as_str()), (400, "JobAlreadyCompleted"));
}

#[tokio::test]
async fn a_raising_script_fails_with_its_exception() {
    let f = Fab::start(config());
    let exe = f.write_script(
        "boom.py",
        "import sys\nprint('about to fail', file=sys.stderr)\nraise ValueError('boom')\n",
    );
    let id = f
        .create_sjd("boom", Some(sjd_config(&exe, &f.lakehouse_id(), "")))
        .await;
    let url = f.run(&id, None).await;
    let done = f.wait_terminal(&url).await;
    assert_eq!(done["status"], "Failed");
    assert_fabric_time(&done["endTimeUtc"]);
    let reason = &done["failureReason"];
    assert_eq!(reason["errorCode"], "JobInstanceStatusFailed");
    assert!(
        reason["message"]
            .as_str()
            .unwrap()
            .contains("ValueError: boom"),
        "{reason}"
    );

    // A missing executable file fails with a clear reason.
    let missing = f
        .write_script("present.py", "pass\n")
        .replace("present.py", "absent.py");
    let id = f
        .create_sjd("missing", Some(sjd_config(&missing, &f.lakehouse_id(), "")))
        .await;
    let url = f.run(&id, None).await;
    let done = f.wait_terminal(&url).await;
    assert_eq!(done["status"], "Failed");
    let msg = done["failureReason"]["message"].as_str().unwrap();
    assert!(
        msg.contains("absent.py") && msg.contains("does not exist"),
        "{msg}"
    );
}

#[tokio::test]
async fn cancel_kills_the_driver_and_a_second_run_is_deduped() {
    let f = Fab::start(config());
    let exe = f.write_script(
        "sleepy.py",
        "import os, sys, time\n\
         path = os.path.join(os.environ['FABRIC_EMULATOR_LAKEHOUSE_ROOT'], 'Files', sys.argv[1])\n\
         open(path + '.tmp', 'w').write(str(os.getpid()))\n\
         os.rename(path + '.tmp', path)\n\
         time.sleep(60)\n",
    );
    // An SJD with no executable of its own: the run body supplies everything.
    let id = f.create_sjd("sleepy", None).await;
    let body = json!({"executionData": {
        "executableFile": exe,
        "commandLineArguments": "pid.txt",
        "defaultLakehouseId": {
            "referenceType": "ById",
            "workspaceId": f.emu.workspace_id(),
            "itemId": f.lakehouse_id(),
        },
    }});
    // The legacy generic form.
    let r = f
        .post(
            &format!("{}/items/{id}/jobs/instances?jobType=sparkjob", f.ws()),
            Some(body.clone()),
        )
        .await;
    assert_eq!(r.status(), 202);
    let url = header(&r, "location");
    let running = f.poll(&url, |s| s == "InProgress").await;
    assert!(running["endTimeUtc"].is_null());

    // A second run on the same SJD while the first is active is deduped.
    let r = f
        .post(
            &format!("{}/items/{id}/jobs/sparkjob/instances", f.ws()),
            Some(body),
        )
        .await;
    assert_eq!(r.status(), 202);
    let second = f.wait_terminal(&header(&r, "location")).await;
    assert_eq!(second["status"], "Deduped");
    assert_fabric_time(&second["endTimeUtc"]);

    let pid_file = f.emu.lakehouse_files_dir("lake").unwrap().join("pid.txt");
    let start = Instant::now();
    while !pid_file.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "driver never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());

    let r = f.post(&format!("{url}/cancel"), None).await;
    assert_eq!(r.status(), 202);
    assert_eq!(header(&r, "location"), url);
    assert!(r.headers().get("retry-after").is_some());
    let done = f.wait_terminal(&url).await;
    assert_eq!(done["status"], "Cancelled");
    assert!(done["failureReason"].is_null());
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the driver process {pid} survived the cancel"
    );
    let r = f.post(&format!("{url}/cancel"), None).await;
    assert_eq!(fabric_error(r).await.1, "JobAlreadyCompleted");

    let (sessions, _) = f
        .list_all(&format!("{}/sparkJobDefinitions/{id}/livySessions", f.ws()))
        .await;
    assert_eq!(sessions.len(), 1, "a deduped run has no Livy session");
    assert_eq!(sessions[0]["state"], "Cancelled");
}

#[tokio::test]
async fn capacity_permissions_and_throttling() {
    let f = Fab::start(config());
    let id = f.create_sjd("cap", None).await;
    f.emu.set_capacity(false);
    let r = f
        .post(
            &format!("{}/sparkJobDefinitions", f.ws()),
            Some(json!({"displayName": "nocap"})),
        )
        .await;
    assert_eq!(fabric_error(r).await.1, "WorkspaceHasNoCapacityAssigned");
    let r = f
        .post(
            &format!(
                "{}/sparkJobDefinitions/{id}/jobs/sparkjob/instances",
                f.ws()
            ),
            None,
        )
        .await;
    assert_eq!(fabric_error(r).await.1, "WorkspaceHasNoCapacityAssigned");
    assert!(f.get_json(&f.ws()).await.get("capacityId").is_none());
    f.emu.set_capacity(true);

    f.emu.deny(&format!("/v1{}/sparkJobDefinitions", f.ws()));
    let r = f.get(&format!("{}/sparkJobDefinitions/{id}", f.ws())).await;
    let (status, code, _) = fabric_error(r).await;
    assert_eq!((status, code.as_str()), (403, "InsufficientPrivileges"));
    assert_eq!(f.get(&f.ws()).await.status(), 200);

    let r = f.http.get(f.url("/workspaces")).send().await.unwrap();
    assert_eq!(r.status(), 401);

    f.emu.set_faults(1.0, 0.0, 0);
    let mut throttled = 0;
    for _ in 0..10 {
        let r = f.get(&f.ws()).await;
        if r.status() == 429 {
            throttled += 1;
            assert!(header(&r, "retry-after").parse::<u64>().is_ok());
            let (_, code, body) = fabric_error(r).await;
            assert_eq!(code, "RequestBlocked");
            assert!(body.get("status").is_none(), "{body}");
        } else {
            assert_eq!(r.status(), 503);
        }
    }
    assert!(throttled > 0);
}

#[tokio::test]
async fn v2_definitions_carry_main_files_that_runs_execute() {
    let f = Fab::start(config());
    let main = "import os\nprint('v2 main', os.environ['FABRIC_EMULATOR_ITEM_ID'])\n";
    let cfg = sjd_config("main.py", &f.lakehouse_id(), "");
    let part = |path: &str, data: &str| json!({"path": path, "payload": STANDARD.encode(data), "payloadType": "InlineBase64"});
    let def = json!({"format": "SparkJobDefinitionV2", "parts": [
        part("SparkJobDefinitionV1.json", &cfg.to_string()),
        part("Main/main.py", main),
        part("Libs/helper.py", "X = 1\n"),
    ]});
    let r = f
        .post(
            &format!("{}/sparkJobDefinitions", f.ws()),
            Some(json!({"displayName": "v2", "definition": def})),
        )
        .await;
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // V1 (the default) leaves out Main/ and Libs/; V2 brings them back.
    let v1: Value = f
        .post(
            &format!("{}/sparkJobDefinitions/{id}/getDefinition", f.ws()),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v1["definition"]["parts"].as_array().unwrap().len(), 2);
    let v2: Value = f
        .post(
            &format!(
                "{}/sparkJobDefinitions/{id}/getDefinition?format=SparkJobDefinitionV2",
                f.ws()
            ),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    let paths: Vec<&str> = v2["definition"]["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert!(
        paths.contains(&"Main/main.py") && paths.contains(&"Libs/helper.py"),
        "{paths:?}"
    );

    // The bare V2 name runs the SJD's Main/main.py.
    let url = f.run(&id, None).await;
    let done = f.wait_terminal(&url).await;
    assert_eq!(done["status"], "Completed", "{done}");
    // So does the SJD's own abfss URL, given as a run override.
    let exe = format!(
        "abfss://{}@onelake.dfs.fabric.microsoft.com/{id}/Main/main.py",
        f.emu.workspace_id()
    );
    let url = f
        .run(&id, Some(json!({"executionData": {"executableFile": exe}})))
        .await;
    let done = f.wait_terminal(&url).await;
    assert_eq!(done["status"], "Completed", "{done}");
    let (sessions, _) = f
        .list_all(&format!("{}/sparkJobDefinitions/{id}/livySessions", f.ws()))
        .await;
    assert_eq!(sessions.len(), 2);
    let livy = sessions[0]["livyId"].as_str().unwrap();
    let app = sessions[0]["sparkApplicationId"].as_str().unwrap();
    let r = f
        .get(&format!(
            "{}/sparkJobDefinitions/{id}/livySessions/{livy}/applications/{app}/logs?type=driver&fileName=stdout",
            f.ws()
        ))
        .await;
    assert_eq!(r.text().await.unwrap(), format!("v2 main {id}\n"));

    // A workspace name with a space cannot appear in an abfss URL.
    let bad = "abfss://My Workspace@onelake.dfs.fabric.microsoft.com/lake.Lakehouse/Files/x.py";
    let url = f
        .run(&id, Some(json!({"executionData": {"executableFile": bad}})))
        .await;
    let done = f.wait_terminal(&url).await;
    assert_eq!(done["status"], "Failed");
}

/// Issue 10 #9: by default a new job instance is visible once the `Retry-After` of the
/// run's 202 has elapsed, so a client that waits as told and treats 404 as final works.
#[tokio::test]
async fn issue_10_9_job_is_visible_after_retry_after() {
    let f = Fab::start(Config {
        lro_rate: 0.0,
        ..Config::default()
    });
    let exe = f.write_script("ok.py", "print('ok')\n");
    let sjd = f
        .create_sjd("visible", Some(sjd_config(&exe, &f.lakehouse_id(), "")))
        .await;
    let r = f
        .post(
            &format!(
                "{}/sparkJobDefinitions/{sjd}/jobs/sparkjob/instances",
                f.ws()
            ),
            None,
        )
        .await;
    assert_eq!(r.status(), 202);
    let wait: u64 = header(&r, "retry-after").parse().unwrap();
    assert!(wait >= 1);
    let location = header(&r, "location");
    tokio::time::sleep(Duration::from_secs(wait)).await;
    assert_eq!(f.get(&location).await.status(), 200);
}

/// Issue 10 #8: a lakehouse's definition, through the lakehouse and the generic route.
#[tokio::test]
async fn issue_10_8_lakehouse_get_definition() {
    let f = Fab::start(config());
    let lh = f.lakehouse_id();
    for path in [
        format!("{}/lakehouses/{lh}/getDefinition", f.ws()),
        format!("{}/items/{lh}/getDefinition", f.ws()),
    ] {
        let r = f.post(&path, None).await;
        assert_eq!(r.status(), 200, "{path}");
        let v: Value = r.json().await.unwrap();
        let parts = v["definition"]["parts"].as_array().unwrap();
        let names: Vec<&str> = parts.iter().map(|p| p["path"].as_str().unwrap()).collect();
        assert!(names.contains(&"lakehouse.metadata.json"), "{names:?}");
        assert!(names.contains(&".platform"), "{names:?}");
        for p in parts {
            assert_eq!(p["payloadType"], "InlineBase64");
            let bytes = STANDARD.decode(p["payload"].as_str().unwrap()).unwrap();
            let _: Value = serde_json::from_slice(&bytes).unwrap();
        }
    }
    // A lakehouse has no SparkJobDefinition format.
    let r = f
        .post(
            &format!(
                "{}/lakehouses/{lh}/getDefinition?format=SparkJobDefinitionV2",
                f.ws()
            ),
            None,
        )
        .await;
    assert_eq!(r.status(), 400);
}
