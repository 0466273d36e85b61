//! Turns an error into what the user reads: `error: <one sentence>`, `Caused by:` lines for
//! sources that add information, and `hint:` lines that say what to do. Picks the exit status.

use super::ExitStatus;

/// Prints `err` to stderr and returns the exit status it deserves (2 for usage and
/// configuration errors, which is every error that reaches this point).
pub fn report(err: &anyhow::Error) -> ExitStatus {
    eprintln!("error: {err}");
    let mut last = err.to_string();
    for cause in err.chain().skip(1) {
        let text = cause.to_string();
        if !last.contains(&text) {
            eprintln!("  Caused by: {text}");
        }
        last = text;
    }
    for hint in hints(err) {
        eprintln!("hint: {hint}");
    }
    ExitStatus::Error
}

/// Hints owned by the error types in the chain.
fn hints(err: &anyhow::Error) -> Vec<String> {
    let mut out = Vec::new();
    for cause in err.chain() {
        if let Some(h) = fabric_remote::hint_for(cause) {
            out.push(h);
        }
    }
    out.dedup();
    out
}
