//! The fixture suites write for themselves: per test, an admin pool to the server, `CREATE
//! DATABASE … TEMPLATE`, a pool to the new database, and a `DROP DATABASE` at the end (when
//! the test gets there). `BUDGET_ADMIN_URL` is the server's superuser URL;
//! `BUDGET_ADMIN_CONNECTIONS` (default 4) how many admin connections the fixture keeps open.

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection, PgConnection};

/// The database every test's database is copied from (made by the `budget-template` binary).
pub const TEMPLATE: &str = "budget_tpl";

fn admin_options() -> PgConnectOptions {
    std::env::var("BUDGET_ADMIN_URL").expect("BUDGET_ADMIN_URL names the server").parse().unwrap()
}

fn admin_connections() -> u32 {
    std::env::var("BUDGET_ADMIN_CONNECTIONS").map_or(4, |n| n.parse().expect("BUDGET_ADMIN_CONNECTIONS is a number"))
}

/// A database of one test's own.
pub struct OwnDatabase {
    pub pool: PgPool,
    admin: PgPool,
    name: String,
}

impl OwnDatabase {
    pub async fn create(case: u32) -> OwnDatabase {
        let connections = admin_connections();
        let admin = PgPoolOptions::new()
            .min_connections(connections)
            .max_connections(connections)
            .connect_with(admin_options())
            .await
            .unwrap_or_else(|error| panic!("admin connection: {error}"));
        let name = format!("budget_case_{case}_{}", std::process::id());
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name} TEMPLATE {TEMPLATE}")))
            .execute(&admin)
            .await
            .unwrap_or_else(|error| panic!("CREATE DATABASE {name}: {error}"));
        let pool = PgPoolOptions::new()
            .max_connections(5)
            .connect_with(admin_options().database(&name))
            .await
            .unwrap_or_else(|error| panic!("connecting to {name}: {error}"));
        OwnDatabase { pool, admin, name }
    }

    pub async fn drop(self) {
        self.pool.close().await;
        sqlx::query(AssertSqlSafe(format!("DROP DATABASE {} WITH (FORCE)", self.name)))
            .execute(&self.admin)
            .await
            .unwrap_or_else(|error| panic!("DROP DATABASE {}: {error}", self.name));
        self.admin.close().await;
    }
}

/// Creates the template database from this crate's migrations, as such a suite's CI step does.
pub async fn create_template() -> Result<(), Box<dyn std::error::Error>> {
    let mut admin = PgConnection::connect_with(&admin_options()).await?;
    sqlx::query(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)"))).execute(&mut admin).await?;
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {TEMPLATE}"))).execute(&mut admin).await?;
    let mut template = PgConnection::connect_with(&admin_options().database(TEMPLATE)).await?;
    let migrations = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    sqlx::migrate::Migrator::new(migrations).await?.run(&mut template).await?;
    template.close().await?;
    admin.close().await?;
    Ok(())
}
