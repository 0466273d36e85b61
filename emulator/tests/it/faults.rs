//! Fault injection and the request log.

use fabric_emulator::Config;

use crate::{Dfs, error_code, header};

#[tokio::test]
async fn fail_rate_one_throttles_every_request() {
    let d = Dfs::start(Config {
        fail_rate: 1.0,
        seed: 7,
        retry_after_ms: 1500,
        ..Config::default()
    });
    let (mut throttled, mut busy) = (0, 0);
    for i in 0..20 {
        let r = d.head(&format!("Files/x{i}")).await;
        match r.status().as_u16() {
            429 => {
                throttled += 1;
                assert_eq!(header(&r, "retry-after"), "1");
                assert_eq!(header(&r, "x-ms-retry-after-ms"), "1500");
                assert_eq!(header(&r, "x-ms-error-code"), "TooManyRequests");
            }
            503 => {
                busy += 1;
                assert_eq!(header(&r, "x-ms-error-code"), "ServerBusy");
            }
            s => panic!("unexpected status {s}"),
        }
    }
    assert!(
        throttled > 0 && busy > 0,
        "{throttled} throttled, {busy} busy"
    );
    // GET errors carry the JSON body.
    let r = d.get("Files/x").await;
    let (status, _) = error_code(r).await;
    assert!(status == 429 || status == 503);

    let log = d.emu.requests();
    assert_eq!(log.len(), 21);
    assert!(
        log.iter()
            .all(|r| matches!(r.fault, Some("throttled" | "busy")))
    );
    assert!(log.iter().all(|r| r.status == 429 || r.status == 503));
    // Faults come before anything else, even before the file exists or auth is checked.
    d.emu.set_faults(0.0, 0.0, 0);
    assert_eq!(d.head("Files").await.status(), 200);
    d.emu.clear_requests();
    assert!(d.emu.requests().is_empty());
}

#[tokio::test]
async fn reset_rate_one_drops_every_connection() {
    let d = Dfs::start(Config {
        reset_rate: 1.0,
        seed: 3,
        ..Config::default()
    });
    for i in 0..12 {
        let path = format!("Files/r{i}.txt");
        let err = d
            .req(reqwest::Method::PUT, &path)
            .query(&[("resource", "file")])
            .header("content-length", "0")
            .send()
            .await;
        assert!(err.is_err(), "a dropped connection is a transport error");
    }
    let log = d.emu.requests();
    assert_eq!(log.len(), 12);
    assert!(log.iter().all(|r| r.status == 0));
    // Half before (nothing happened), half after (the file exists, the answer was lost).
    d.emu.set_faults(0.0, 0.0, 0);
    let (mut before, mut after) = (0, 0);
    for (i, rec) in log.iter().enumerate() {
        let exists = d.head(&format!("Files/r{i}.txt")).await.status() == 200;
        match rec.fault {
            Some("reset-before") => {
                before += 1;
                assert!(!exists, "r{i} should not exist");
            }
            Some("reset-after") => {
                after += 1;
                assert!(exists, "r{i} should exist");
            }
            f => panic!("unexpected fault {f:?}"),
        }
    }
    assert!(before > 0 && after > 0, "{before} before, {after} after");
}

#[tokio::test]
async fn the_same_seed_gives_the_same_faults() {
    let run = |seed| async move {
        let d = Dfs::start(Config {
            fail_rate: 0.5,
            seed,
            ..Config::default()
        });
        let mut statuses = Vec::new();
        for _ in 0..16 {
            statuses.push(d.head("Files").await.status().as_u16());
        }
        statuses
    };
    let a = run(42).await;
    assert_eq!(a, run(42).await);
    assert!(a.contains(&200) && a.iter().any(|s| *s != 200), "{a:?}");
}

#[tokio::test]
async fn latency_is_applied_and_counted() {
    let d = Dfs::start(Config {
        latency_ms: 50,
        ..Config::default()
    });
    let start = std::time::Instant::now();
    for _ in 0..3 {
        assert_eq!(d.head("Files").await.status(), 200);
    }
    assert!(start.elapsed().as_millis() >= 150);
    let log = d.emu.requests();
    assert_eq!(
        log.iter()
            .filter(|r| r.method == "HEAD" && r.status == 200)
            .count(),
        3
    );
}

/// The request log's start/end times show how many requests were in flight at once.
#[tokio::test]
async fn request_log_shows_concurrency() {
    let d = crate::Dfs::start(fabric_emulator::Config {
        latency_ms: 150,
        ..fabric_emulator::Config::default()
    });
    let (a, b, c, e) = tokio::join!(
        d.head("Files"),
        d.head("Files"),
        d.head("Files"),
        d.head("Files")
    );
    for r in [a, b, c, e] {
        assert_eq!(r.status(), 200);
    }
    let log = d.emu.requests();
    assert_eq!(fabric_emulator::max_in_flight(&log), 4);
    assert!(log.iter().all(|r| r.end.unwrap() >= r.start));
    d.emu.clear_requests();
    for _ in 0..3 {
        assert_eq!(d.head("Files").await.status(), 200);
    }
    assert_eq!(fabric_emulator::max_in_flight(&d.emu.requests()), 1);
}
