//! `-v`, `-vv`, `-vvv`, `--log-file PATH` and `RUST_LOG`: where the library's `tracing`
//! events go.
//!
//! The library logs each HTTP request once (in `fabric_remote::http`: method, URL with
//! secrets redacted, status, duration, attempt, `x-ms-request-id`), retries and decisions at
//! debug level, and a warning when a request is still retrying after a while. Without `-v`
//! only those warnings reach stderr, as `warning: …` lines. Every line written, to stderr or
//! to the file, goes through [`fabric_remote::secret::redact`] first.

use std::fmt;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use fabric_remote::secret::redact;
use indicatif::ProgressBar;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

use super::diagnostics::Report;

/// The progress bar on screen, if any: log lines are printed with it suspended.
static BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Registers (or, with `None`, forgets) the progress bar that log lines must not garble.
pub fn set_progress_bar(bar: Option<ProgressBar>) {
    *BAR.lock().unwrap_or_else(|p| p.into_inner()) = bar;
}

/// Sets up logging for the process. Fails only when `--log-file` cannot be written.
pub fn init(verbose: u8, log_file: Option<&Path>) -> Result<(), Report> {
    let started = Instant::now();
    let stderr_filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => EnvFilter::new(spec),
        _ => EnvFilter::new(match verbose {
            0 => "fabric_remote=warn",
            1 => "fabric_remote=info",
            2 => "fabric_remote=debug",
            _ => "trace",
        }),
    };
    let stderr = tracing_subscriber::fmt::layer()
        .event_format(Lines {
            started,
            verbose: verbose > 0 || std::env::var_os("RUST_LOG").is_some(),
        })
        .with_writer(StderrWriter)
        .with_filter(stderr_filter);
    let file = match log_file {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| {
                    Report::caused_by(
                        fabric_remote::diagnostic::Kind::Usage,
                        format!("cannot write the log file `{}`", path.display()),
                        e,
                    )
                })?;
            let level = if verbose >= 3 {
                "trace"
            } else {
                "fabric_remote=debug"
            };
            Some(
                tracing_subscriber::fmt::layer()
                    .event_format(Lines {
                        started,
                        verbose: true,
                    })
                    .with_writer(FileWriter(Arc::new(Mutex::new(file))))
                    .with_filter(EnvFilter::new(level)),
            )
        }
        None => None,
    };
    // A second initialisation (tests calling `main` twice) is harmless: the first one stays.
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(file)
        .try_init();
    Ok(())
}

/// `  1.234s INFO  message` with `-v`; `warning: message` without.
struct Lines {
    started: Instant,
    verbose: bool,
}

impl<S, N> FormatEvent<S, N> for Lines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let level = *event.metadata().level();
        if self.verbose {
            write!(
                w,
                "{:>9.3}s {:<5} ",
                self.started.elapsed().as_secs_f64(),
                level.as_str()
            )?;
        } else if level == Level::WARN {
            w.write_str("warning: ")?;
        } else if level == Level::ERROR {
            w.write_str("error: ")?;
        }
        ctx.format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}

/// Collects one event's text, then writes it redacted in one go.
struct Redacting<F: FnMut(&str)> {
    buf: Vec<u8>,
    sink: F,
}

impl<F: FnMut(&str)> Write for Redacting<F> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<F: FnMut(&str)> Drop for Redacting<F> {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            let text = String::from_utf8_lossy(&self.buf).into_owned();
            (self.sink)(&redact(&text));
        }
    }
}

struct StderrWriter;

impl<'a> MakeWriter<'a> for StderrWriter {
    type Writer = Redacting<fn(&str)>;

    fn make_writer(&'a self) -> Self::Writer {
        Redacting {
            buf: Vec::new(),
            sink: |text| {
                let write = || {
                    let _ = std::io::stderr().write_all(text.as_bytes());
                };
                match &*BAR.lock().unwrap_or_else(|p| p.into_inner()) {
                    Some(bar) => bar.suspend(write),
                    None => write(),
                }
            },
        }
    }
}

struct FileWriter(Arc<Mutex<std::fs::File>>);

impl<'a> MakeWriter<'a> for FileWriter {
    type Writer = Redacting<Box<dyn FnMut(&str) + 'a>>;

    fn make_writer(&'a self) -> Self::Writer {
        Redacting {
            buf: Vec::new(),
            sink: Box::new(move |text: &str| {
                let mut file = self.0.lock().unwrap_or_else(|p| p.into_inner());
                let _ = file.write_all(text.as_bytes());
            }),
        }
    }
}
