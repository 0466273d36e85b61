//! Parse + map a 20,000-testcase pytest junit XML (xunit1 shape, with failures, skips,
//! a teardown-error pair and captured output), with and without expected node ids.
//! Target: well under 100 ms per iteration.

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

criterion_group!(benches, bench);
criterion_main!(benches);
