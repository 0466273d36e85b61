//! Parse + map a 20,000-testcase pytest junit XML (xunit1 shape, with failures, skips,
//! a teardown-error pair and captured output), with and without expected node ids.
//! Target: well under 100 ms per iteration.
//!
//! Also the cases that used to be quadratic: the short summary's skip folding over 100,000
//! distinct skip reasons, and 1,000 collection errors against 250,000 expected ids; and a
//! pytest report log of 50,000 tests (150,000 setup/call/teardown lines) read line by line
//! and mapped onto its ids (target: under 200 ms).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use fabric_remote::junit;

const CASES: usize = 20_000;

/// A document shaped like pytest's output, and the node ids pytest would have collected.
fn generate() -> (String, Vec<String>) {
    let mut xml = String::with_capacity(CASES * 400);
    let mut ids = Vec::with_capacity(CASES);
    xml.push_str(r#"<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests"><testsuite name="pytest" errors="0" failures="0" skipped="0" tests="20000" time="138.200" timestamp="2026-01-01T00:00:00+00:00" hostname="bench">"#);
    for i in 0..CASES {
        let module = i / 200;
        let class = (i / 20) % 10;
        let file = format!("tests/pkg{}/test_mod{module}.py", module % 7);
        let dotted = file.trim_end_matches(".py").replace('/', ".");
        let name = format!("test_case_{i}[param-{}.{}::x]", i % 3, i % 5);
        ids.push(format!("{file}::TestClass{class}::TestInner::{name}"));
        let classname = format!("{dotted}.TestClass{class}.TestInner");
        let open = format!(
            r#"<testcase classname="{classname}" name="{name}" file="{file}" line="{i}" time="0.007">"#
        );
        xml.push_str(&open);
        match i % 50 {
            0 => xml.push_str(r#"<failure message="assert 1 == 2">def test():&#10;&gt;       assert 1 == 2&#10;E       assert 1 == 2</failure><system-out>--------------------------------- Captured Out ---------------------------------&#10;hello&#10;</system-out>"#),
            1 => xml.push_str(r#"<skipped type="pytest.skip" message="not here">/abs/tests/x.py:3: not here</skipped>"#),
            2 => xml.push_str(r#"<error message="failed on setup with &quot;RuntimeError: boom&quot;">trace &lt;module&gt;</error>"#),
            3 => xml.push_str(r#"<skipped type="pytest.xfail" message="known" />"#),
            _ => {}
        }
        xml.push_str("</testcase>");
        if i % 50 == 0 {
            // The teardown-error twin of the failure row.
            xml.push_str(&open);
            xml.push_str(
                r#"<error message="failed on teardown with &quot;E&quot;">td</error></testcase>"#,
            );
        }
    }
    xml.push_str("</testsuite></testsuites>");
    (xml, ids)
}

fn bench(c: &mut Criterion) {
    let (xml, ids) = generate();
    // Sanity: the generated file maps completely.
    let doc = junit::parse(xml.as_bytes()).expect("generated XML parses");
    let mapping = junit::map(&doc, Some(&ids));
    assert_eq!(mapping.results.len(), CASES);
    assert!(mapping.results.iter().all(|r| !r.missing && !r.unexpected));

    let mut group = c.benchmark_group("junit");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("parse+map 20k testcases with nodeids", |b| {
        b.iter(|| {
            let doc = junit::parse(black_box(xml.as_bytes())).expect("parses");
            black_box(junit::map(&doc, Some(&ids)))
        })
    });
    group.bench_function("parse+map 20k testcases without nodeids", |b| {
        b.iter(|| {
            let doc = junit::parse(black_box(xml.as_bytes())).expect("parses");
            black_box(junit::map(&doc, None))
        })
    });
    group.bench_function("parse only", |b| {
        b.iter(|| junit::parse(black_box(xml.as_bytes())).expect("parses"))
    });
    group.bench_function("map only, with nodeids", |b| {
        b.iter(|| black_box(junit::map(black_box(&doc), Some(&ids))))
    });
    group.finish();
}

/// 100,000 skipped tests, each with its own reason: nothing folds.
fn distinct_skips() -> junit::Mapping {
    let mut xml = String::from(r#"<testsuites><testsuite time="1.0">"#);
    for i in 0..100_000 {
        xml.push_str(&format!(
            r#"<testcase classname="tests.test_m{m}" name="test_{i}" file="tests/test_m{m}.py"><skipped type="pytest.skip" message="reason {i}">/abs/tests/test_m{m}.py:{i}: reason {i}</skipped></testcase>"#,
            m = i % 100
        ));
    }
    xml.push_str("</testsuite></testsuites>");
    let doc = junit::parse(xml.as_bytes()).expect("generated XML parses");
    junit::map(&doc, None)
}

/// 1,000 collection errors and 250,000 expected ids, most of them in the broken modules.
fn collection_errors() -> (junit::Document, Vec<String>) {
    let mut xml = String::from(r#"<testsuites><testsuite time="1.0">"#);
    for m in 0..1_000 {
        xml.push_str(&format!(
            r#"<testcase classname="" name="tests.pkg{p}.test_m{m}" file="tests/pkg{p}/test_m{m}.py"><error message="collection failure">ImportError</error></testcase>"#,
            p = m % 10
        ));
    }
    xml.push_str("</testsuite></testsuites>");
    let ids = (0..250_000)
        .map(|i| {
            let m = i % 1_250;
            format!("tests/pkg{}/test_m{m}.py::TestC::test_{i}", m % 10)
        })
        .collect();
    (junit::parse(xml.as_bytes()).expect("parses"), ids)
}

/// A report log as pytest-reportlog writes it for 50,000 tests: every 50th fails (with a
/// structured traceback), every 50th is skipped by a mark, the rest pass.
fn report_log() -> (String, Vec<String>) {
    const TESTS: usize = 50_000;
    let mut log = String::with_capacity(TESTS * 3 * 520);
    let mut ids = Vec::with_capacity(TESTS);
    log.push_str("{\"pytest_version\": \"9.2.0\", \"$report_type\": \"SessionStart\"}\n");
    for i in 0..TESTS {
        let m = i / 200;
        let file = format!("tests/pkg{}/test_mod{m}.py", m % 7);
        let name = format!("test_case_{i}[param-{}]", i % 3);
        let id = format!("{file}::TestClass{}::{name}", i % 10);
        let line = |when: &str, outcome: &str, longrepr: &str| {
            format!(
                "{{\"nodeid\": \"{id}\", \"location\": [\"{file}\", {i}, \"TestClass{c}.{name}\"], \"keywords\": {{\"{name}\": 1, \"parametrize\": 1, \"pytestmark\": 1, \"TestClass{c}\": 1, \"test_mod{m}.py\": 1, \"pkg{p}\": 1, \"tests\": 1}}, \"outcome\": \"{outcome}\", \"longrepr\": {longrepr}, \"when\": \"{when}\", \"user_properties\": [], \"sections\": [], \"duration\": 0.00012, \"start\": 1796290329.84, \"stop\": 1796290329.85, \"$report_type\": \"TestReport\"}}\n",
                c = i % 10,
                p = m % 7
            )
        };
        match i % 50 {
            0 => {
                log.push_str(&line("setup", "passed", "null"));
                let failure = format!(
                    "{{\"reprcrash\": {{\"path\": \"/remote/root/{file}\", \"lineno\": 7, \"message\": \"assert 1 == 2\"}}, \"reprtraceback\": {{\"reprentries\": [{{\"type\": \"ReprEntry\", \"data\": {{\"lines\": [\"    def test():\", \">       assert 1 == 2\", \"E       assert 1 == 2\"], \"reprfuncargs\": {{\"args\": []}}, \"reprlocals\": null, \"reprfileloc\": {{\"path\": \"{file}\", \"lineno\": 7, \"message\": \"AssertionError\"}}, \"style\": \"long\"}}}}], \"extraline\": null, \"style\": \"long\"}}, \"sections\": [], \"chain\": []}}"
                );
                log.push_str(&line("call", "failed", &failure));
                log.push_str(&line("teardown", "passed", "null"));
            }
            1 => {
                let skip = format!("[\"/remote/root/{file}\", 12, \"Skipped: not here\"]");
                log.push_str(&line("setup", "skipped", &skip));
                log.push_str(&line("teardown", "passed", "null"));
            }
            _ => {
                log.push_str(&line("setup", "passed", "null"));
                log.push_str(&line("call", "passed", "null"));
                log.push_str(&line("teardown", "passed", "null"));
            }
        }
        ids.push(id);
    }
    log.push_str("{\"exitstatus\": 1, \"$report_type\": \"SessionFinish\"}\n");
    (log, ids)
}

fn map_report_log(log: &str, ids: &[String]) -> junit::Mapping {
    let mut reader = junit::ReportLog::new();
    for line in log.lines() {
        reader.push_line(line).expect("generated line reads");
    }
    reader.finish(Some(ids), &junit::MapOptions::default())
}

fn bench_scaling(c: &mut Criterion) {
    let skips = distinct_skips();
    let (errors_doc, error_ids) = collection_errors();
    let (log, log_ids) = report_log();
    // Sanity: what each case is meant to exercise.
    assert!(
        junit::render_text(&skips).contains("SKIPPED [1] tests/test_m99.py:99999: reason 99999")
    );
    let mapped = junit::map(&errors_doc, Some(&error_ids));
    assert_eq!(mapped.exit_code(), 2);
    assert_eq!(
        mapped.results[1_000].headline().message.as_deref(),
        Some("no result: collecting tests/pkg0/test_m0.py failed")
    );
    let from_log = map_report_log(&log, &log_ids);
    assert_eq!(from_log.results.len(), 50_000);
    assert_eq!(
        from_log.counts().parts(),
        ["1000 failed", "48000 passed", "1000 skipped"]
    );

    let mut group = c.benchmark_group("junit-scaling");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("render_text 100k distinct skip reasons", |b| {
        b.iter(|| black_box(junit::render_text(black_box(&skips))))
    });
    group.bench_function("map 1k collection errors x 250k expected ids", |b| {
        b.iter(|| black_box(junit::map(black_box(&errors_doc), Some(&error_ids))))
    });
    group.bench_function("report log 50k tests: push_line + finish", |b| {
        b.iter(|| black_box(map_report_log(black_box(&log), &log_ids)))
    });
    // The floor: serde_json only checking each line, keeping nothing.
    group.bench_function("report log 50k tests: JSON scan only", |b| {
        b.iter(|| {
            for line in black_box(&log).lines() {
                let _: serde::de::IgnoredAny = serde_json::from_str(line).expect("json");
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench, bench_scaling);
criterion_main!(benches);
