//! `fabric-remote emulator`: serves OneLake (DFS and Blob) and the Fabric REST API on
//! loopback until Ctrl-C. The first stdout line is `listening on http://127.0.0.1:PORT`
//! (`https://` with `--tls`), so scripts and tests can read the port; `--access-log FILE`
//! appends every request served to FILE.

use fabric_emulator::{Config, Emulator};

use crate::cli::ExitStatus;
use crate::cli::args::EmulatorArgs;

pub async fn run(args: &EmulatorArgs) -> anyhow::Result<ExitStatus> {
    for (name, rate) in [
        ("--fail-rate", args.fail_rate),
        ("--reset-rate", args.reset_rate),
    ] {
        if !(0.0..=1.0).contains(&rate) {
            anyhow::bail!("{name} must be between 0 and 1, got {rate}");
        }
    }
    if args.page_size == 0 {
        anyhow::bail!("--page-size must be at least 1");
    }
    let config = Config {
        data_dir: args.data_dir.clone(),
        port: args.port,
        workspace: args.workspace.clone(),
        lakehouses: args.lakehouse.clone(),
        fail_rate: args.fail_rate,
        reset_rate: args.reset_rate,
        latency_ms: args.latency_ms,
        page_size: args.page_size,
        seed: args.seed,
        python: Some(absolute_program(&args.python)),
        job_visible_after_ms: args.job_visible_after_ms,
        fabric_retry_after_secs: args.retry_after_secs,
        lro_rate: args.lro_rate,
        tls: args.tls,
        ..Config::default()
    };
    let emulator = tokio::task::spawn_blocking(move || Emulator::start(config))
        .await?
        .map_err(|e| anyhow::anyhow!("could not start the emulator: {e}"))?;
    let url = emulator.url();
    println!("listening on {url}");
    if let Some(ca) = emulator.ca_file() {
        eprintln!(
            "TLS certificate authority: {} (trust it: export FABRIC_REMOTE_CA_FILE={0}; Python SDKs: connection_verify or REQUESTS_CA_BUNDLE)",
            ca.display()
        );
    }
    let ws = emulator.workspace_name().to_string();
    eprintln!("data directory: {}", emulator.data_dir().display());
    eprintln!("workspace: {ws} ({})", emulator.workspace_id());
    for lh in &args.lakehouse {
        eprintln!(
            "lakehouse: {lh} ({})  →  {url}/{}/{lh}.Lakehouse/Files/",
            emulator.lakehouse_id(lh).unwrap_or_default(),
            ws.replace(' ', "%20")
        );
    }
    eprintln!(
        "point the CLI at it: export FABRIC_REMOTE_TOKEN=emulator FABRIC_REMOTE_ONELAKE_ENDPOINT={url} FABRIC_REMOTE_API_ENDPOINT={url} (any token works); Ctrl-C stops"
    );
    let emulator = std::sync::Arc::new(emulator);
    let mut log = match &args.access_log {
        Some(path) => Some(AccessLog::open(path)?),
        None => None,
    };
    // Ctrl-C or SIGTERM (test harnesses and scripts stop it that way) end it cleanly.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(200));
    loop {
        tokio::select! {
            _ = tick.tick(), if log.is_some() => {
                if let Some(log) = &mut log {
                    log.write_new(&emulator)?;
                }
            }
            r = tokio::signal::ctrl_c() => {
                r?;
                break;
            }
            _ = term.recv() => break,
        }
    }
    if let Some(log) = &mut log {
        log.write_new(&emulator)?;
    }
    drop(emulator);
    Ok(ExitStatus::Success)
}

/// `--access-log`: the requests served so far, appended as they come.
struct AccessLog {
    file: std::io::BufWriter<std::fs::File>,
    written: usize,
}

impl AccessLog {
    fn open(path: &std::path::Path) -> anyhow::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| anyhow::anyhow!("cannot open the access log {}: {e}", path.display()))?;
        Ok(Self {
            file: std::io::BufWriter::new(file),
            written: 0,
        })
    }

    fn write_new(&mut self, emulator: &Emulator) -> anyhow::Result<()> {
        use std::io::Write;
        let requests = emulator.requests();
        for r in requests.iter().skip(self.written) {
            let query = if r.query.is_empty() { "" } else { "?" };
            writeln!(
                self.file,
                "{} {}{query}{} {}",
                r.method, r.path, r.query, r.status
            )?;
        }
        self.written = self.written.max(requests.len());
        self.file.flush()?;
        Ok(())
    }
}

/// A program given as a relative path (`.venv/bin/python`) made absolute, since jobs run in
/// their own working directory; a bare name (`python3`) is left to `PATH`.
pub fn absolute_program(program: &std::path::Path) -> std::path::PathBuf {
    if program.components().count() > 1 && program.is_relative() {
        std::path::absolute(program).unwrap_or_else(|_| program.to_path_buf())
    } else {
        program.to_path_buf()
    }
}
