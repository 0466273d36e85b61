//! Defines [`Leases`]: the lease state of every leased path, and the lease state machine.
//!
//! A *lease* is a lock on a path that lets only the holder of its id write or delete it.
//! States and answers follow the Blob "Lease Blob" documentation, which the DFS
//! `Path - Lease` operation shares: acquire (duration 15–60 s or -1 = infinite) → 201;
//! renew, change, release → 200; break → 202 with `x-ms-lease-time`. A fixed lease
//! expires by itself; a breaking lease becomes broken when its break period ends.
//! Nothing here does I/O; the clock is passed in (Unix nanoseconds).

use std::collections::HashMap;
use std::sync::Mutex;

use axum::http::StatusCode;

use crate::error::{Result, ServiceError};
use crate::lock::lock;

/// Which API asked: the error codes of write checks name it (`…WithPathOperation` on
/// DFS, `…WithBlobOperation` on Blob).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    Path,
    Blob,
}

/// One `x-ms-lease-action`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Duration in seconds (`None` = infinite) and the proposed id.
    Acquire(Option<u64>, Option<String>),
    Renew(String),
    /// Current id, proposed id.
    Change(String, String),
    Release(String),
    /// Break period in seconds; `None` = the rest of the lease (0 for infinite leases).
    Break(Option<u64>),
}

/// What a lease action answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: StatusCode,
    pub lease_id: Option<String>,
    /// Seconds until a breaking lease is broken (break only).
    pub lease_time: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Leased,
    Breaking,
    Broken,
    Expired,
}

#[derive(Debug, Clone)]
struct Lease {
    id: String,
    phase: Phase,
    /// Fixed duration in seconds; `None` = infinite.
    duration: Option<u64>,
    /// When a fixed lease expires, or a breaking lease breaks.
    until_ns: Option<u64>,
}

impl Lease {
    /// The phase at `now`: time turns `Leased` into `Expired` and `Breaking` into `Broken`.
    fn settle(&mut self, now: u64) {
        match (self.phase, self.until_ns) {
            (Phase::Leased, Some(t)) if now >= t => {
                self.phase = Phase::Expired;
                self.until_ns = None;
            }
            (Phase::Breaking, Some(t)) if now >= t => {
                self.phase = Phase::Broken;
                self.until_ns = None;
            }
            _ => {}
        }
    }

    fn locked(&self) -> bool {
        matches!(self.phase, Phase::Leased | Phase::Breaking)
    }
}

/// What HEAD and GET show about a path's lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View {
    /// `available`, `leased`, `expired`, `breaking` or `broken`.
    pub state: &'static str,
    /// `locked` or `unlocked`.
    pub status: &'static str,
    /// `infinite` or `fixed`, only while leased.
    pub duration: Option<&'static str>,
}

/// Leases by path key. Paths without an entry are `available`.
#[derive(Default)]
pub struct Leases {
    map: Mutex<HashMap<String, Lease>>,
}

const SEC: u64 = 1_000_000_000;

fn conflict(code: &'static str, message: &'static str) -> ServiceError {
    ServiceError::new(StatusCode::CONFLICT, code, message)
}

fn not_present() -> ServiceError {
    conflict(
        "LeaseNotPresentWithLeaseOperation",
        "There is currently no lease on the path.",
    )
}

fn mismatch() -> ServiceError {
    conflict(
        "LeaseIdMismatchWithLeaseOperation",
        "The lease ID specified did not match the lease ID for the path.",
    )
}

/// `x-ms-lease-duration`: -1 or 15..=60 seconds.
pub fn parse_duration(v: &str) -> Result<Option<u64>> {
    match v.trim().parse::<i64>() {
        Ok(-1) => Ok(None),
        Ok(n) if (15..=60).contains(&n) => Ok(Some(n as u64)),
        _ => Err(ServiceError::invalid_header("x-ms-lease-duration")),
    }
}

/// `x-ms-lease-break-period`: 0..=60 seconds.
pub fn parse_break_period(v: &str) -> Result<u64> {
    match v.trim().parse::<u64>() {
        Ok(n) if n <= 60 => Ok(n),
        _ => Err(ServiceError::invalid_header("x-ms-lease-break-period")),
    }
}

/// Lease ids are GUIDs; anything else is 400 `InvalidHeaderValue`.
pub fn parse_id(header: &str, v: &str) -> Result<String> {
    let v = v.trim();
    let parts: Vec<&str> = v.split('-').collect();
    let ok = parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.bytes().all(|c| c.is_ascii_hexdigit()));
    if ok {
        Ok(v.to_ascii_lowercase())
    } else {
        Err(ServiceError::invalid_header(header))
    }
}

impl Leases {
    /// Carries out `action` on the existing path `key`. `new_id` makes an id when an
    /// acquire proposes none.
    pub fn act(
        &self,
        key: &str,
        action: Action,
        now: u64,
        new_id: impl FnOnce() -> String,
    ) -> Result<Answer> {
        let mut map = lock(&self.map);
        let current = map.get_mut(key).map(|l| {
            l.settle(now);
            l.clone()
        });
        let answer = |status, id: Option<String>| Answer {
            status,
            lease_id: id,
            lease_time: None,
        };
        let leased = |id: String, duration: Option<u64>| Lease {
            id,
            phase: Phase::Leased,
            duration,
            until_ns: duration.map(|d| now + d * SEC),
        };
        match action {
            Action::Acquire(duration, proposed) => {
                if let Some(l) = &current {
                    match l.phase {
                        Phase::Breaking => {
                            return Err(conflict(
                                "LeaseIsBreakingAndCannotBeAcquired",
                                "There is already a lease present, and it is being broken.",
                            ));
                        }
                        // Acquiring again with the holder's id renews with the new duration.
                        Phase::Leased if proposed.as_deref() != Some(l.id.as_str()) => {
                            return Err(conflict(
                                "LeaseAlreadyPresent",
                                "There is already a lease present.",
                            ));
                        }
                        _ => {}
                    }
                }
                let id = proposed.unwrap_or_else(new_id);
                map.insert(key.to_owned(), leased(id.clone(), duration));
                Ok(answer(StatusCode::CREATED, Some(id)))
            }
            Action::Renew(id) => {
                let l = current.ok_or_else(mismatch)?;
                if l.id != id {
                    return Err(mismatch());
                }
                match l.phase {
                    Phase::Breaking | Phase::Broken => Err(conflict(
                        "LeaseIsBrokenAndCannotBeRenewed",
                        "The lease ID matched, but the lease has been broken explicitly and cannot be renewed.",
                    )),
                    // An expired lease can be renewed by its holder while nobody else took it.
                    Phase::Leased | Phase::Expired => {
                        map.insert(key.to_owned(), leased(id.clone(), l.duration));
                        Ok(answer(StatusCode::OK, Some(id)))
                    }
                }
            }
            Action::Change(id, proposed) => {
                let l = current.ok_or_else(not_present)?;
                match l.phase {
                    Phase::Leased if l.id == id || l.id == proposed => {
                        let mut next = l;
                        next.id = proposed.clone();
                        map.insert(key.to_owned(), next);
                        Ok(answer(StatusCode::OK, Some(proposed)))
                    }
                    Phase::Leased => Err(mismatch()),
                    Phase::Breaking if l.id == id || l.id == proposed => Err(conflict(
                        "LeaseIsBreakingAndCannotBeChanged",
                        "The lease ID matched, but the lease is currently in breaking state and cannot be changed.",
                    )),
                    Phase::Breaking => Err(mismatch()),
                    Phase::Broken | Phase::Expired => Err(not_present()),
                }
            }
            Action::Release(id) => {
                let l = current.ok_or_else(mismatch)?;
                if l.id != id {
                    return Err(mismatch());
                }
                map.remove(key);
                Ok(answer(StatusCode::OK, None))
            }
            Action::Break(period) => {
                let Some(l) = current else {
                    return Err(not_present());
                };
                let remaining = l.until_ns.map(|t| t.saturating_sub(now).div_ceil(SEC));
                let wait = match l.phase {
                    Phase::Leased => match (period, remaining) {
                        (Some(p), Some(r)) => p.min(r),
                        (Some(p), None) => p,
                        (None, Some(r)) => r,
                        (None, None) => 0,
                    },
                    Phase::Breaking => match period {
                        Some(p) => p.min(remaining.unwrap_or(0)),
                        None => remaining.unwrap_or(0),
                    },
                    Phase::Broken | Phase::Expired => 0,
                };
                let next = Lease {
                    id: l.id,
                    phase: if wait == 0 {
                        Phase::Broken
                    } else {
                        Phase::Breaking
                    },
                    duration: l.duration,
                    until_ns: (wait > 0).then(|| now + wait * SEC),
                };
                map.insert(key.to_owned(), next);
                Ok(Answer {
                    status: StatusCode::ACCEPTED,
                    lease_id: None,
                    lease_time: Some(wait),
                })
            }
        }
    }

    /// Whether a write or delete of `key` carrying `given` (`x-ms-lease-id`) may go ahead.
    pub fn check_write(
        &self,
        key: &str,
        given: Option<&str>,
        now: u64,
        surface: Surface,
    ) -> Result<()> {
        // An empty id (the DataLake SDK sends `x-ms-source-lease-id:` on renames) is none.
        let given = given.map(str::trim).filter(|g| !g.is_empty());
        let mut map = lock(&self.map);
        let lease = map.get_mut(key).map(|l| {
            l.settle(now);
            l.clone()
        });
        let (mismatch_code, lost_code, what) = match surface {
            Surface::Path => (
                "LeaseIdMismatchWithPathOperation",
                "LeaseNotPresentWithPathOperation",
                "path",
            ),
            Surface::Blob => (
                "LeaseIdMismatchWithBlobOperation",
                "LeaseNotPresentWithBlobOperation",
                "blob",
            ),
        };
        let failed = |code: &'static str, msg: String| {
            ServiceError::new(StatusCode::PRECONDITION_FAILED, code, msg)
        };
        match (lease, given) {
            (Some(l), None) if l.locked() => Err(failed(
                "LeaseIdMissing",
                format!(
                    "There is currently a lease on the {what} and no lease ID was specified in the request."
                ),
            )),
            (Some(l), Some(g)) if l.locked() => {
                if l.id.eq_ignore_ascii_case(g.trim()) {
                    Ok(())
                } else {
                    Err(failed(
                        mismatch_code,
                        format!(
                            "The lease ID specified did not match the lease ID for the {what}."
                        ),
                    ))
                }
            }
            (_, Some(_)) => Err(failed(
                lost_code,
                format!("There is currently no lease on the {what}."),
            )),
            (_, None) => Ok(()),
        }
    }

    /// The lease as HEAD and GET show it.
    pub fn view(&self, key: &str, now: u64) -> View {
        let mut map = lock(&self.map);
        let Some(l) = map.get_mut(key) else {
            return View {
                state: "available",
                status: "unlocked",
                duration: None,
            };
        };
        l.settle(now);
        let (state, status) = match l.phase {
            Phase::Leased => ("leased", "locked"),
            Phase::Breaking => ("breaking", "locked"),
            Phase::Broken => ("broken", "unlocked"),
            Phase::Expired => ("expired", "unlocked"),
        };
        View {
            state,
            status,
            duration: (l.phase == Phase::Leased).then_some(if l.duration.is_some() {
                "fixed"
            } else {
                "infinite"
            }),
        }
    }

    /// Forgets the lease of `key` (the path was deleted, or overwritten by a create,
    /// which the documentation says breaks the lease).
    pub fn remove(&self, key: &str) {
        lock(&self.map).remove(key);
    }

    /// Forgets the leases of `key` and everything below it (a recursive delete).
    pub fn remove_tree(&self, key: &str) {
        let prefix = format!("{key}/");
        lock(&self.map).retain(|k, _| k != key && !k.starts_with(&prefix));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "aaaaaaaa-0000-0000-0000-000000000001";
    const B: &str = "bbbbbbbb-0000-0000-0000-000000000002";

    fn act(l: &Leases, a: Action, now_s: u64) -> std::result::Result<Answer, (u16, &'static str)> {
        l.act("k", a, now_s * SEC, || A.to_owned())
            .map_err(|e| (e.status.as_u16(), e.code))
    }

    #[test]
    fn state_machine() {
        let l = Leases::default();
        assert_eq!(l.view("k", 0).state, "available");
        assert_eq!(
            act(&l, Action::Renew(A.into()), 0),
            Err((409, "LeaseIdMismatchWithLeaseOperation"))
        );
        assert_eq!(
            act(&l, Action::Break(None), 0),
            Err((409, "LeaseNotPresentWithLeaseOperation"))
        );
        let a = act(&l, Action::Acquire(Some(15), None), 0).unwrap();
        assert_eq!((a.status.as_u16(), a.lease_id.as_deref()), (201, Some(A)));
        assert_eq!(
            act(&l, Action::Acquire(Some(15), Some(B.into())), 1),
            Err((409, "LeaseAlreadyPresent"))
        );
        assert_eq!(l.view("k", 14 * SEC).duration, Some("fixed"));
        // Expires by time; the holder may renew an expired lease.
        assert_eq!(l.view("k", 15 * SEC).state, "expired");
        assert_eq!(
            act(&l, Action::Renew(A.into()), 16)
                .unwrap()
                .status
                .as_u16(),
            200
        );
        assert_eq!(l.view("k", 30 * SEC).state, "leased");
        let c = act(&l, Action::Change(A.into(), B.into()), 20).unwrap();
        assert_eq!(c.lease_id.as_deref(), Some(B));
        assert_eq!(
            act(&l, Action::Release(A.into()), 20),
            Err((409, "LeaseIdMismatchWithLeaseOperation"))
        );
        // Break with a period: breaking (still locked), then broken.
        let b = act(&l, Action::Break(Some(10)), 20).unwrap();
        assert_eq!((b.status.as_u16(), b.lease_time), (202, Some(10)));
        assert_eq!(l.view("k", 25 * SEC).state, "breaking");
        assert_eq!(
            act(&l, Action::Acquire(None, None), 25),
            Err((409, "LeaseIsBreakingAndCannotBeAcquired"))
        );
        assert_eq!(
            act(&l, Action::Renew(B.into()), 25),
            Err((409, "LeaseIsBrokenAndCannotBeRenewed"))
        );
        assert_eq!(l.view("k", 30 * SEC).state, "broken");
        assert!(
            l.check_write("k", None, 30 * SEC, Surface::Path).is_ok(),
            "a broken lease no longer locks"
        );
        assert_eq!(
            act(&l, Action::Release(B.into()), 31)
                .unwrap()
                .status
                .as_u16(),
            200
        );
        assert_eq!(l.view("k", 31 * SEC).state, "available");
    }

    #[test]
    fn infinite_lease_breaks_at_once_and_writes_need_the_id() {
        let l = Leases::default();
        act(&l, Action::Acquire(None, Some(B.into())), 0).unwrap();
        assert_eq!(l.view("k", 1000 * SEC).duration, Some("infinite"));
        let code = |r: Result<()>| r.map_err(|e| (e.status.as_u16(), e.code));
        assert_eq!(
            code(l.check_write("k", None, SEC, Surface::Path)),
            Err((412, "LeaseIdMissing"))
        );
        assert_eq!(
            code(l.check_write("k", Some(A), SEC, Surface::Path)),
            Err((412, "LeaseIdMismatchWithPathOperation"))
        );
        assert_eq!(
            code(l.check_write("k", Some(A), SEC, Surface::Blob)),
            Err((412, "LeaseIdMismatchWithBlobOperation"))
        );
        assert!(l.check_write("k", Some(B), SEC, Surface::Path).is_ok());
        let b = act(&l, Action::Break(None), 2).unwrap();
        assert_eq!(b.lease_time, Some(0));
        assert_eq!(l.view("k", 2 * SEC).state, "broken");
        assert_eq!(
            code(l.check_write("k", Some(B), 3 * SEC, Surface::Path)),
            Err((412, "LeaseNotPresentWithPathOperation"))
        );
    }

    #[test]
    fn header_values_are_checked() {
        assert_eq!(parse_duration("-1").unwrap(), None);
        assert_eq!(parse_duration("15").unwrap(), Some(15));
        assert!(parse_duration("14").is_err());
        assert!(parse_duration("61").is_err());
        assert!(parse_break_period("61").is_err());
        assert!(parse_id("x-ms-lease-id", "not-a-guid").is_err());
        assert_eq!(
            parse_id("x-ms-lease-id", &A.to_ascii_uppercase()).unwrap(),
            A
        );
    }
}
