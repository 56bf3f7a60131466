//! What `#[pglease::test]` runs: the template ensured once per process, a lease of a fresh clone
//! for the test, the test on a tokio runtime of its own, and the lease released however the
//! test ends. Under nextest every test is a process of its own, so it gets its own lease and
//! its own database; under `cargo test` each test (thread) does too.
//!
//! Settings, from the environment: `PGLEASE_URL` and `PGLEASE_TOKEN` (the daemon),
//! `PGLEASE_TTL` (the lease's TTL; default the template's), `PGLEASE_WAIT` (how long to wait
//! for a clone; default 2m), `PGLEASE_KEEP_FAILED` (keep a failing test's database this long
//! and print its DSN; default: recycle it). Durations are `90s`, `10m`, `1h30m` or seconds.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};

use crate::migrate::SqlxTemplate;
use crate::model::{AcquireOptions, LeaseInfo, ReleaseMode};
use crate::template::BuildOptions;
use crate::{Client, Lease};

/// Written by the nextest setup script: `name@fingerprint` of every template it made ready,
/// space-separated, so that test processes need not ask again.
pub(crate) const READY_TEMPLATES_ENV: &str = "PGLEASE_READY_TEMPLATES";

/// What the attribute knows about a test.
#[doc(hidden)]
pub struct TestArgs {
    pub template: &'static str,
    /// The migrations directory relative to `manifest_dir`; `None` for a template configured on
    /// the daemon.
    pub migrations: Option<&'static str>,
    pub manifest_dir: &'static str,
    /// `module::path::test_name`, the lease's owner.
    pub test: &'static str,
}

/// The leased database, as the test's arguments are made from it.
pub struct TestContext {
    lease: LeaseInfo,
}

impl TestContext {
    pub fn lease(&self) -> &LeaseInfo {
        &self.lease
    }
}

/// A type a `#[pglease::test]` function may take as an argument: `PgPool`, `PgConnection`,
/// `PgConnectOptions`, or [`LeaseInfo`] (for tokio-postgres or another driver: its `dsn`).
pub trait TestArg: Sized {
    fn from_context(context: &TestContext) -> impl Future<Output = Self>;
}

impl TestArg for LeaseInfo {
    async fn from_context(context: &TestContext) -> LeaseInfo {
        context.lease.clone()
    }
}

impl TestArg for PgConnectOptions {
    async fn from_context(context: &TestContext) -> PgConnectOptions {
        context.lease.dsn.parse().unwrap_or_else(|error| panic!("pglease: the lease's DSN does not parse: {error}"))
    }
}

impl TestArg for PgPool {
    async fn from_context(context: &TestContext) -> PgPool {
        PgPoolOptions::new()
            .max_connections(5)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(PgConnectOptions::from_context(context).await)
            .await
            .unwrap_or_else(|error| panic!("pglease: cannot connect to {}: {error}", context.lease.database))
    }
}

impl TestArg for PgConnection {
    async fn from_context(context: &TestContext) -> PgConnection {
        PgConnection::connect_with(&PgConnectOptions::from_context(context).await)
            .await
            .unwrap_or_else(|error| panic!("pglease: cannot connect to {}: {error}", context.lease.database))
    }
}

/// Whether a test's return value says it failed.
pub trait Outcome {
    fn failed(&self) -> bool;
}

impl Outcome for () {
    fn failed(&self) -> bool {
        false
    }
}

impl<T, E> Outcome for Result<T, E> {
    fn failed(&self) -> bool {
        self.is_err()
    }
}

struct Settings {
    ttl: Option<Duration>,
    wait: Duration,
    keep_failed: Option<Duration>,
}

fn duration_env(name: &str) -> Option<Duration> {
    let text = std::env::var(name).ok().filter(|text| !text.trim().is_empty())?;
    match crate::parse_duration(&text) {
        Ok(duration) => Some(duration),
        Err(error) => panic!("pglease: {name}={text:?}: {error}"),
    }
}

impl Settings {
    fn from_env() -> Settings {
        Settings {
            ttl: duration_env("PGLEASE_TTL"),
            wait: duration_env("PGLEASE_WAIT").unwrap_or(Duration::from_secs(120)),
            keep_failed: duration_env("PGLEASE_KEEP_FAILED").filter(|keep| !keep.is_zero()),
        }
    }
}

fn client() -> &'static Client {
    static CLIENT: OnceLock<Result<Client, String>> = OnceLock::new();
    match CLIENT.get_or_init(|| Client::from_env().map_err(|error| error.to_string())) {
        Ok(client) => client,
        Err(error) => panic!("{error}"),
    }
}

/// Makes sure the template is ready, once per process: the first test that needs it ensures
/// it (and builds it when told to), the others wait for that; a failure is kept and repeated.
fn ensure_template(template: &SqlxTemplate) {
    static ENSURED: Mutex<Option<HashMap<SqlxTemplate, Result<(), String>>>> = Mutex::new(None);
    let mut ensured = ENSURED.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let outcome = ensured.get_or_insert_with(HashMap::new).entry(template.clone()).or_insert_with(|| {
        let fingerprint = template.fingerprint().map_err(|error| error.to_string())?;
        let ready_here = format!("{}@{fingerprint}", template.name());
        if std::env::var(READY_TEMPLATES_ENV).is_ok_and(|ready| ready.split_whitespace().any(|t| t == ready_here)) {
            return Ok(());
        }
        template
            .ensure(client(), &BuildOptions::default())
            .map(drop)
            .map_err(|error| format!("pglease: template {} is not ready: {error}{}", template.name(), hint(&error)))
    });
    if let Err(error) = outcome {
        panic!("{error}");
    }
}

/// Runs one test on a database of its own. Used by `#[pglease::test]`.
#[doc(hidden)]
pub fn run<F, Fut, T>(args: TestArgs, test: F) -> T
where
    F: FnOnce(TestContext) -> Fut,
    Fut: Future<Output = T>,
    T: Outcome,
{
    let settings = Settings::from_env();
    let template = args.migrations.map(|dir| SqlxTemplate::new(args.template, args.manifest_dir, dir));
    if let Some(template) = &template {
        ensure_template(template);
    }
    let mut lease = acquire(&args, &settings, template.as_ref());
    let keep = ReleaseMode::Keep(settings.keep_failed);
    if settings.keep_failed.is_some() {
        lease.set_release_on_panic(keep);
    }
    let outcome = {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|error| panic!("pglease: cannot start a tokio runtime: {error}"));
        // The runtime, and with it every connection the test opened, ends before the release.
        runtime.block_on(test(TestContext { lease: lease.info().clone() }))
    };
    if outcome.failed() && settings.keep_failed.is_some() {
        lease.set_release_on_drop(keep);
    }
    drop(lease);
    outcome
}

/// What to do about an error that says pgleased is not there.
fn hint(error: &crate::Error) -> &'static str {
    match error {
        crate::Error::Unreachable { .. } => ". Start pgleased, or point PGLEASE_URL at it.",
        _ => "",
    }
}

fn acquire(args: &TestArgs, settings: &Settings, template: Option<&SqlxTemplate>) -> Lease {
    let runner = if std::env::var_os("NEXTEST").is_some() { "nextest" } else { "cargo-test" };
    let mut options = AcquireOptions::new()
        .wait(settings.wait)
        .owner(args.test.chars().take(200).collect::<String>())
        .label("runner", runner);
    options.ttl = settings.ttl;
    // Exactly the version this test ensured: another job's newer migrations of the same template
    // name, on the same pgleased, do not reach it.
    options.fingerprint = template.and_then(|t| t.fingerprint().ok());
    client().acquire(args.template, &options).unwrap_or_else(|error| {
        panic!("pglease: no database of template {} for {}: {error}{}", args.template, args.test, hint(&error))
    })
}
