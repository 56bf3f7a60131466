//! The nextest setup script: run once before the tests, it checks that pgleased answers and is
//! ready, makes every template ready (building it on the first run after a change of the
//! migrations), and writes `PGLEASE_URL` and the templates it made ready to `$NEXTEST_ENV`, so
//! that every test process leases at once instead of asking for the template again.
//!
//! ```toml
//! # .config/nextest.toml
//! experimental = ["setup-scripts"]
//!
//! [scripts.setup.pglease]
//! command = "cargo run --quiet --bin pglease-setup"
//!
//! [[profile.default.scripts]]
//! filter = "all()"
//! setup = "pglease"
//! ```
//!
//! ```no_run
//! // src/bin/pglease-setup.rs
//! fn main() -> std::process::ExitCode {
//!     pglease::nextest::setup(&[pglease::sqlx_template!("app")])
//! }
//! ```

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::migrate::SqlxTemplate;
use crate::template::BuildOptions;
use crate::testing::READY_TEMPLATES_ENV;
use crate::{Client, ClientBuilder};

/// How long pgleased may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs the setup script for `templates`; its exit code, with what failed on standard error.
pub fn setup(templates: &[SqlxTemplate]) -> ExitCode {
    match prepare(templates) {
        Ok(lines) => match write_env(&lines) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("pglease setup: cannot write the test environment: {error}");
                ExitCode::FAILURE
            }
        },
        Err(error) => {
            eprintln!("pglease setup: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The `KEY=value` lines for the tests' environment.
fn prepare(templates: &[SqlxTemplate]) -> Result<String, String> {
    let client = ClientBuilder::default().timeout(READY_TIMEOUT).build().map_err(|error| error.to_string())?;
    wait_ready(&client)?;
    let mut ready = Vec::new();
    for template in templates {
        let version = template
            .ensure(&client, &BuildOptions::default())
            .map_err(|error| format!("template {} is not ready: {error}", template.name()))?;
        eprintln!(
            "pglease setup: template {} ready at {} ({})",
            version.name,
            &version.fingerprint[..version.fingerprint.len().min(12)],
            if version.built { "built now from its migrations" } else { "already built" }
        );
        ready.push(format!("{}@{}", version.name, version.fingerprint));
    }
    let mut lines = String::new();
    let _ = writeln!(lines, "PGLEASE_URL={}", client.url());
    let _ = writeln!(lines, "{READY_TEMPLATES_ENV}={}", ready.join(" "));
    Ok(lines)
}

fn wait_ready(client: &Client) -> Result<(), String> {
    let give_up_at = Instant::now() + READY_TIMEOUT;
    loop {
        match client.ready() {
            Ok(true) => return Ok(()),
            Ok(false) if Instant::now() < give_up_at => std::thread::sleep(Duration::from_millis(500)),
            Ok(false) => {
                return Err(format!(
                    "pgleased at {} is not ready after {} s (GET /readyz answers 503)",
                    client.url(),
                    READY_TIMEOUT.as_secs()
                ));
            }
            Err(error @ Error::Unreachable { .. }) => {
                return Err(format!("{error}. Start pgleased (pgleased --config FILE), or point PGLEASE_URL at it."));
            }
            Err(error) => return Err(error.to_string()),
        }
    }
}

/// Appends to `$NEXTEST_ENV`; run by hand (no such variable), prints the lines instead.
fn write_env(lines: &str) -> std::io::Result<()> {
    match std::env::var_os("NEXTEST_ENV") {
        Some(path) => std::fs::OpenOptions::new().append(true).create(true).open(path)?.write_all(lines.as_bytes()),
        None => std::io::stdout().write_all(lines.as_bytes()),
    }
}
