//! A fresh PostgreSQL database for every test, leased from `pgleased`.
//!
//! - [`Client`] (blocking) and, with feature `tokio`, `AsyncClient`: every call of the HTTP API
//!   (`proto/openapi.yaml`), errors typed with the server's [`Code`], `503 not_ready` asked
//!   again while pgleased starts.
//! - [`Lease`]: a guard whose drop releases the lease with a plain blocking call, inside or
//!   outside a tokio runtime; the TTL is the safety net for a process killed before it runs.
//! - [`Client::reset`]: a fresh database on the same lease, in place when pgleased can prove it
//!   exact ([`ResetOutcome`] says whether it was cloned again); 409 [`Code::SessionsBusy`] while a
//!   session on it is inside a transaction or running a statement.
//! - Client-initialized templates: [`Client::build_template`] and, with feature `sqlx`,
//!   `SqlxTemplate`, fingerprinted from a `migrations/` directory ([`fingerprint()`]).
//! - With feature `sqlx`: `#[pglease::test(template = "app")] async fn t(pool: PgPool)` and the
//!   nextest setup script (`pglease::nextest`).

mod api;
mod client;
mod duration;
mod error;
pub mod fingerprint;
mod http;
mod lease;
mod model;
mod template;
mod transport;

#[cfg(feature = "tokio")]
mod async_client;
#[cfg(feature = "sqlx")]
mod migrate;
#[cfg(feature = "sqlx")]
pub mod nextest;
#[cfg(feature = "sqlx")]
pub mod testing;

pub use client::{Client, ClientBuilder, DEFAULT_URL};
pub use duration::parse_duration;
pub use error::{ApiError, Code, Error, Result};
pub use fingerprint::fingerprint;
pub use lease::Lease;
pub use model::{
    AcquireOptions, Build, EnsureOptions, Ensured, LeaseInfo, LeaseSummary, Pool, ReleaseMode, ResetOutcome,
    ResetResult, Template,
};
pub use template::{BuildOptions, TemplateVersion};

#[cfg(feature = "tokio")]
pub use async_client::AsyncClient;
#[cfg(feature = "sqlx")]
pub use migrate::{SQLX_MIGRATE_COMMAND, SqlxTemplate, run_migrations};
/// Runs an async test on a database of its own, leased from pgleased; see [`testing`].
///
/// ```ignore
/// #[pglease::test(template = "app")] // built from this crate's migrations/
/// async fn signup(pool: sqlx::PgPool) {
///     sqlx::query("INSERT INTO accounts (email) VALUES ('new@example.com')").execute(&pool).await.unwrap();
/// }
///
/// #[pglease::test(template = "app", migrations = "db/migrations")]
/// async fn other(mut conn: sqlx::PgConnection) -> Result<(), sqlx::Error> {
///     sqlx::query("SELECT 1").execute(&mut conn).await.map(drop)
/// }
///
/// #[pglease::test(template = "demo", migrations = false)] // a template configured on pgleased
/// async fn configured(lease: pglease::LeaseInfo) {
///     assert_eq!(lease.template, "demo");
/// }
/// ```
#[cfg(feature = "sqlx")]
pub use pglease_macros::test;
