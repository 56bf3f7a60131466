//! What pgleased answers (`proto/openapi.yaml`), and what a caller may ask for.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;

/// A lease as pgleased describes it: everything a worker needs to use its database.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
pub struct LeaseInfo {
    /// 128 random bits in hex; whoever holds it may renew, reset or release the lease.
    pub id: String,
    pub template: String,
    /// The template version's fingerprint (64 hex digits).
    pub fingerprint: String,
    pub database: String,
    /// `postgresql://user:password@host:port/database`.
    pub dsn: String,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    pub owner: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// RFC 3339 UTC with milliseconds.
    pub acquired_at: String,
    /// RFC 3339 UTC with milliseconds; past it the broker ends the clone's sessions and recycles it.
    pub expires_at: String,
    pub backend: String,
}

impl fmt::Debug for LeaseInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeaseInfo")
            .field("id", &self.id)
            .field("template", &self.template)
            .field("database", &self.database)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("owner", &self.owner)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A live lease as listed by `GET /v1/leases`: without its id, DSN and password.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct LeaseSummary {
    pub template: String,
    pub fingerprint: String,
    pub database: String,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub owner: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub acquired_at: String,
    pub expires_at: String,
    pub backend: String,
}

/// The clones of a template's versions, by state, and the pool's settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Pool {
    pub idle: u32,
    pub leased: u32,
    pub creating: u32,
    pub dropping: u32,
    pub kept: u32,
    /// Released or expired clones being reset in place to the template's state.
    #[serde(default)]
    pub resetting: u32,
    pub waiters: u32,
    pub min_idle: u32,
    pub max_total: u32,
    /// How a released clone is made fresh: `reset` (in place, falling back to `reclone` when it
    /// cannot prove the result exact) or `reclone` (dropped and cloned again).
    #[serde(default)]
    pub recycle: String,
}

/// A template: its state (`building`, `ready`, `failed`), ready fingerprint and pool.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Template {
    pub name: String,
    /// The ready version's fingerprint; empty while none is ready.
    pub fingerprint: String,
    pub state: String,
    /// The last build error; empty when none.
    pub error: String,
    /// `migrations`, `database`, `command` or `client`.
    pub source: String,
    pub pool: Pool,
}

/// An empty template database for the caller to migrate, held by a build lease.
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct Build {
    /// The build id, for finalize and abort.
    pub id: String,
    pub template: String,
    pub fingerprint: String,
    pub database: String,
    pub dsn: String,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    /// Finalize or abort before this, or the next caller builds.
    pub expires_at: String,
}

impl fmt::Debug for Build {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Build")
            .field("id", &self.id)
            .field("template", &self.template)
            .field("fingerprint", &self.fingerprint)
            .field("database", &self.database)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// How a reset made the leased database fresh.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ResetResult {
    /// Undone in place: only what the lease wrote was put back; sessions idle outside a
    /// transaction stayed connected and now see the template's state.
    Reset,
    /// The database was dropped and cloned again under the same name (DDL, a prepared
    /// transaction, or a template that recycles by reclone); its sessions were ended.
    Reclone,
}

/// What `POST /v1/leases/{id}/reset` did.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ResetOutcome {
    pub result: ResetResult,
    /// Why it was cloned again (`catalog`, `prepared`, …, as the server words it); empty after a
    /// reset in place.
    #[serde(default)]
    pub reason: String,
}

#[derive(Deserialize)]
pub(crate) struct ResetWire {
    #[serde(flatten)]
    pub lease: LeaseInfo,
    pub reset: ResetOutcome,
}

/// The answer to ensuring a client-initialized template.
// One answer per build: boxing the larger variant would save nothing worth the indirection.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ensured {
    /// A version with this fingerprint is ready.
    Ready(Template),
    /// This caller must build it: migrate `build.dsn`, then finalize (or abort).
    Build(Template, Build),
}

#[derive(Deserialize)]
pub(crate) struct EnsuredWire {
    pub state: String,
    pub template: Template,
    pub build: Option<Build>,
}

#[derive(Deserialize)]
pub(crate) struct TemplateListWire {
    pub templates: Vec<Template>,
}

#[derive(Deserialize)]
pub(crate) struct LeaseListWire {
    pub leases: Vec<LeaseSummary>,
}

/// What an acquire asks for; every field is optional and defaults to the template's settings.
#[derive(Clone, Debug, Default)]
pub struct AcquireOptions {
    /// Lease duration (whole seconds, at least 1); default the template's `ttl_seconds`.
    pub ttl: Option<Duration>,
    /// How long the server may wait for a clone; default the template's `wait_seconds`.
    pub wait: Option<Duration>,
    /// Who holds the lease (at most 200 characters), shown by `GET /v1/leases`.
    pub owner: Option<String>,
    /// Free string labels.
    pub labels: BTreeMap<String, String>,
    /// Exactly this template version. Sent only when set (pgleased releases that refuse the
    /// field answer 400 `invalid_argument`).
    pub fingerprint: Option<String>,
}

impl AcquireOptions {
    pub fn new() -> AcquireOptions {
        AcquireOptions::default()
    }
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }
    pub fn wait(mut self, wait: Duration) -> Self {
        self.wait = Some(wait);
        self
    }
    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self
    }
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }
    pub fn fingerprint(mut self, fingerprint: impl Into<String>) -> Self {
        self.fingerprint = Some(fingerprint.into());
        self
    }
}

/// What becomes of a clone when its lease ends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReleaseMode {
    /// Back to the template's state for the next lease: reset in place, or dropped and cloned
    /// again (the template's `recycle`).
    #[default]
    Recycle,
    /// The worker wrote nothing (its tests rolled back): its sessions are ended and it goes back
    /// to the pool as it is.
    Reuse,
    /// Kept for inspection this long (`None`: the template's `keep_seconds`), then dropped.
    Keep(Option<Duration>),
}

/// How long an ensure waits for another caller's build, and how long this caller may build.
#[derive(Clone, Debug, Default)]
pub struct EnsureOptions {
    /// Per request to the server, at most 600 s (default 30 s).
    pub wait: Option<Duration>,
    /// The build lease: finalize or abort within it (default 600 s).
    pub build_ttl: Option<Duration>,
}

/// Whole seconds for the API, at least `minimum`.
pub(crate) fn seconds(duration: Duration, minimum: u64) -> u64 {
    (duration.as_secs_f64().round() as u64).max(minimum)
}
