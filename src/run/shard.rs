//! Splits a selection of node ids into shards of about equal running time.
//!
//! A *unit* is what never gets split: the tests of one class (class-scoped fixtures, such as
//! dbt's `project`, are expensive to set up twice), or the top-level test functions of one
//! module (module-scoped fixtures) — unless that module weighs more than a quarter of a
//! shard's fair share, in which case its functions become units of their own: keeping it
//! whole would unbalance the run by more than its fixtures could save. A test's *weight* is
//! its duration recorded by earlier runs; a test never seen weighs the mean of the recorded
//! ones, and with nothing recorded every test weighs 1 (balancing by counts).
//!
//! Units go heaviest first to the lightest shard (longest-processing-time scheduling), so a
//! shard ends at most one unit's weight above the mean. Inside a shard the ids keep the
//! order of the selection, as one pytest run would run them. No I/O happens here.

use std::collections::HashMap;

/// How the weights were chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// Durations recorded by earlier runs (tests never seen weigh their mean).
    Durations,
    /// Nothing recorded for these tests: every test weighs the same.
    Counts,
}

/// The selection split into shards.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// Each shard's ids, in the order of the selection; never empty.
    pub shards: Vec<Vec<String>>,
    /// Each shard's expected weight (seconds with [`Basis::Durations`], tests otherwise).
    pub estimates: Vec<f64>,
    pub basis: Basis,
}

/// What keeps tests together: `path::Class` (never split) or `path` (the module's top-level
/// functions, split when heavy). The parameter id (from the first `[` after the path) is
/// ignored, as it may hold `::`.
pub fn unit_key(nodeid: &str) -> (&str, bool) {
    let Some((path, tail)) = nodeid.split_once("::") else {
        return (nodeid, true);
    };
    let names = tail.split_once('[').map_or(tail, |(names, _)| names);
    match names.split_once("::") {
        Some((class, _)) => (&nodeid[..path.len() + 2 + class.len()], false),
        None => (path, true),
    }
}

/// Splits `ids` (the selection, in order, without repeats) into at most `n` shards.
pub fn split(ids: &[String], n: usize, durations: &HashMap<String, f64>) -> Split {
    let known: Vec<f64> = ids
        .iter()
        .filter_map(|id| durations.get(id).copied())
        .filter(|d| d.is_finite() && *d >= 0.0)
        .collect();
    let (basis, fallback) = if known.is_empty() {
        (Basis::Counts, 1.0)
    } else {
        (
            Basis::Durations,
            known.iter().sum::<f64>() / known.len() as f64,
        )
    };
    let weight = |id: &str| match basis {
        Basis::Counts => 1.0,
        Basis::Durations => durations
            .get(id)
            .copied()
            .filter(|d| d.is_finite() && *d >= 0.0)
            .unwrap_or(fallback),
    };

    // Units in order of first appearance: (ids' positions, weight, splittable).
    let mut units: Vec<(Vec<usize>, f64, bool)> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, id) in ids.iter().enumerate() {
        let (key, splittable) = unit_key(id);
        let u = *index.entry(key).or_insert_with(|| {
            units.push((Vec::new(), 0.0, splittable));
            units.len() - 1
        });
        units[u].0.push(i);
        units[u].1 += weight(id);
    }
    let n = n.max(1);
    let total: f64 = units.iter().map(|u| u.1).sum();
    let limit = total / n as f64 / 4.0;
    let mut pieces: Vec<(Vec<usize>, f64)> = Vec::new();
    for (members, w, splittable) in units {
        if splittable && w > limit && members.len() > 1 {
            pieces.extend(members.into_iter().map(|i| (vec![i], weight(&ids[i]))));
        } else {
            pieces.push((members, w));
        }
    }

    let n = n.min(pieces.len()).max(1);
    // Heaviest first; equal weights keep the selection's order.
    pieces.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0[0].cmp(&b.0[0])));
    let mut load = vec![0.0f64; n];
    let mut count = vec![0usize; n];
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (piece, w) in pieces {
        let s = (0..n)
            .min_by(|&a, &b| {
                load[a]
                    .total_cmp(&load[b])
                    .then(count[a].cmp(&count[b]))
                    .then(a.cmp(&b))
            })
            .unwrap_or(0);
        load[s] += w;
        count[s] += piece.len();
        members[s].extend(piece);
    }
    let shards = members
        .into_iter()
        .map(|mut m| {
            m.sort_unstable();
            m.into_iter().map(|i| ids[i].clone()).collect::<Vec<_>>()
        })
        .filter(|s: &Vec<String>| !s.is_empty())
        .collect::<Vec<_>>();
    Split {
        estimates: load.into_iter().take(shards.len()).collect(),
        shards,
        basis,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn units() {
        for (id, key, splittable) in [
            ("t.py::test_a", "t.py", true),
            ("t.py::test_a[x::y]", "t.py", true),
            ("t.py::TestA::test_b", "t.py::TestA", false),
            ("t.py::TestA::test_b[1-a::b]", "t.py::TestA", false),
            ("t.py::TestA::Inner::test_b", "t.py::TestA", false),
            ("d/t.py", "d/t.py", true),
        ] {
            assert_eq!(unit_key(id), (key, splittable), "{id}");
        }
    }

    #[test]
    fn counts_keep_classes_together_and_balance_by_tests() {
        let all = ids(&[
            "a.py::TestA::t1",
            "a.py::TestA::t2",
            "a.py::TestB::t1",
            "a.py::TestB::t2",
            "b.py::TestC::t1",
            "b.py::TestC::t2",
            "b.py::TestD::t1",
            "b.py::TestD::t2",
        ]);
        let s = split(&all, 2, &HashMap::new());
        assert_eq!(s.basis, Basis::Counts);
        assert_eq!(
            s.shards,
            vec![
                ids(&[
                    "a.py::TestA::t1",
                    "a.py::TestA::t2",
                    "b.py::TestC::t1",
                    "b.py::TestC::t2"
                ]),
                ids(&[
                    "a.py::TestB::t1",
                    "a.py::TestB::t2",
                    "b.py::TestD::t1",
                    "b.py::TestD::t2"
                ]),
            ]
        );
        assert_eq!(s.estimates, vec![4.0, 4.0]);
    }

    #[test]
    fn recorded_durations_move_heavy_classes_apart() {
        let all = ids(&[
            "a.py::TestHeavy1::t1",
            "a.py::TestLight1::t1",
            "a.py::TestHeavy2::t1",
            "a.py::TestLight2::t1",
        ]);
        // By counts the two heavy classes share a shard.
        let by_count = split(&all, 2, &HashMap::new());
        assert_eq!(
            by_count.shards[0],
            ids(&["a.py::TestHeavy1::t1", "a.py::TestHeavy2::t1"])
        );
        let d: HashMap<String, f64> = [
            ("a.py::TestHeavy1::t1", 5.0),
            ("a.py::TestHeavy2::t1", 5.0),
            ("a.py::TestLight1::t1", 0.1),
            ("a.py::TestLight2::t1", 0.1),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let s = split(&all, 2, &d);
        assert_eq!(s.basis, Basis::Durations);
        assert_eq!(
            s.shards,
            vec![
                ids(&["a.py::TestHeavy1::t1", "a.py::TestLight1::t1"]),
                ids(&["a.py::TestHeavy2::t1", "a.py::TestLight2::t1"]),
            ]
        );
        assert_eq!(s.estimates, vec![5.1, 5.1]);
    }

    #[test]
    fn unseen_tests_weigh_the_mean_of_the_recorded_ones() {
        let all = ids(&[
            "a.py::TestA::t",
            "a.py::TestB::t",
            "a.py::TestC::t",
            "a.py::TestD::t",
        ]);
        let d: HashMap<String, f64> = [
            ("a.py::TestA::t".to_string(), 6.0),
            ("a.py::TestD::t".to_string(), 2.0),
        ]
        .into();
        let s = split(&all, 2, &d);
        assert_eq!(
            s.shards,
            vec![
                ids(&["a.py::TestA::t", "a.py::TestD::t"]),
                ids(&["a.py::TestB::t", "a.py::TestC::t"])
            ]
        );
        assert_eq!(s.estimates, vec![8.0, 8.0]);
    }

    #[test]
    fn a_heavy_module_of_functions_is_split_a_light_one_kept_whole() {
        let mut all: Vec<String> = (0..8).map(|i| format!("big.py::test_{i}")).collect();
        all.push("small.py::test_a".into());
        all.push("small.py::test_b".into());
        let d: HashMap<String, f64> = all
            .iter()
            .map(|id| (id.clone(), if id.starts_with("big") { 1.0 } else { 0.1 }))
            .collect();
        let s = split(&all, 2, &d);
        assert_eq!(s.shards.len(), 2);
        assert_eq!(s.shards[0].len() + s.shards[1].len(), 10);
        assert!((s.estimates[0] - s.estimates[1]).abs() < 0.25, "{s:?}");
        let small: Vec<usize> = (0..2)
            .filter(|&k| s.shards[k].iter().any(|id| id.starts_with("small")))
            .collect();
        assert_eq!(small.len(), 1, "the light module stays in one shard: {s:?}");
    }

    #[test]
    fn never_more_shards_than_units_and_never_an_empty_one() {
        let all = ids(&["a.py::TestA::t1", "a.py::TestA::t2"]);
        let s = split(&all, 4, &HashMap::new());
        assert_eq!(s.shards, vec![all.clone()]);
        // Zero durations still spread over every shard.
        let all = ids(&["a.py::TestA::t", "a.py::TestB::t", "a.py::TestC::t"]);
        let d: HashMap<String, f64> = all.iter().map(|id| (id.clone(), 0.0)).collect();
        let s = split(&all, 3, &d);
        assert_eq!(s.shards.len(), 3);
        assert!(s.shards.iter().all(|s| s.len() == 1));
        assert_eq!(
            split(&[], 3, &HashMap::new()).shards,
            Vec::<Vec<String>>::new()
        );
    }
}
