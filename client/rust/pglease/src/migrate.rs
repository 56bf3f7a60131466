//! Templates built by sqlx's migrator from a `migrations/` directory, as `sqlx migrate run`
//! applies it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::Connection;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgConnection;

use crate::error::Result;
use crate::fingerprint::fingerprint;
use crate::model::Build;
use crate::template::{BuildOptions, TemplateVersion};
use crate::{AsyncClient, Client};

/// What the fingerprint says built the template: the same label the other languages' packages
/// use for a template built by `sqlx migrate run`, so their value is the same for the same files.
pub const SQLX_MIGRATE_COMMAND: &str = "sqlx migrate run";

/// A client-initialized template built by sqlx's migrator from a directory of migrations in
/// sqlx's layout (`<version>_<name>.sql`, or `.up.sql`/`.down.sql` pairs).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SqlxTemplate {
    name: String,
    base: PathBuf,
    migrations: PathBuf,
}

/// The [`SqlxTemplate`] `name` built from `migrations/` (or the directory given) of the calling
/// crate: `pglease::sqlx_template!("app")`, `pglease::sqlx_template!("app", "db/migrations")`.
#[macro_export]
macro_rules! sqlx_template {
    ($name:expr) => {
        $crate::SqlxTemplate::new($name, env!("CARGO_MANIFEST_DIR"), "migrations")
    };
    ($name:expr, $migrations:expr) => {
        $crate::SqlxTemplate::new($name, env!("CARGO_MANIFEST_DIR"), $migrations)
    };
}

impl SqlxTemplate {
    /// Template `name`, built from `migrations` (relative to `base`, usually the crate's
    /// directory: the fingerprint names each file relative to it).
    pub fn new(name: impl Into<String>, base: impl Into<PathBuf>, migrations: impl Into<PathBuf>) -> SqlxTemplate {
        SqlxTemplate { name: name.into(), base: base.into(), migrations: migrations.into() }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The directory of migrations.
    pub fn migrations_dir(&self) -> PathBuf {
        self.base.join(&self.migrations)
    }

    /// The fingerprint of the migrations: `fingerprint([migrations], base, "sqlx migrate run")`.
    pub fn fingerprint(&self) -> Result<String> {
        fingerprint(&[&self.migrations], &self.base, SQLX_MIGRATE_COMMAND)
    }

    /// Makes sure the template is ready at the migrations' fingerprint, running them here when
    /// this caller is the one told to build. Blocking; it must not run inside a tokio runtime
    /// (it starts one of its own for the migrator).
    pub fn ensure(&self, client: &Client, options: &BuildOptions) -> Result<TemplateVersion> {
        let fingerprint = self.fingerprint()?;
        let dir = self.migrations_dir();
        client.build_template(&self.name, &fingerprint, options, |build| {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(run_migrations(&build, &dir))
        })
    }

    /// [`SqlxTemplate::ensure`] for async callers.
    pub async fn ensure_async(&self, client: &AsyncClient, options: &BuildOptions) -> Result<TemplateVersion> {
        let fingerprint = self.fingerprint()?;
        let dir = self.migrations_dir();
        client
            .build_template(
                &self.name,
                &fingerprint,
                options,
                |build| async move { run_migrations(&build, &dir).await },
            )
            .await
    }
}

/// Applies the migrations in `dir` to the build database, as `sqlx migrate run` would.
pub async fn run_migrations(
    build: &Build,
    dir: &Path,
) -> std::result::Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let migrator = Migrator::new(dir.to_path_buf())
        .await
        .map_err(|error| format!("reading the migrations in {}: {error}", dir.display()))?;
    let mut connection = tokio::time::timeout(Duration::from_secs(60), PgConnection::connect(&build.dsn))
        .await
        .map_err(|_| format!("connecting to the build database {} timed out", build.database))?
        .map_err(|error| format!("connecting to the build database {}: {error}", build.database))?;
    migrator
        .run(&mut connection)
        .await
        .map_err(|error| format!("migrating {} from {}: {error}", build.database, dir.display()))?;
    connection.close().await?;
    Ok(())
}
