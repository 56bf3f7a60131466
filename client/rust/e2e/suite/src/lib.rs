//! What the suite's tests share: the template, what "fresh from the template" means for its
//! schema, and a record of which database each test got, for the driver (e2e/run) to check
//! that no two tests shared one.

use std::io::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pglease::{Client, SqlxTemplate};
use sqlx::PgPool;

/// The suite's template, built from this crate's migrations/.
pub fn template() -> SqlxTemplate {
    pglease::sqlx_template!("app")
}

/// A blocking client of the daemon the driver started ($PGLEASE_URL).
pub fn client() -> Client {
    Client::from_env().expect("PGLEASE_URL names pgleased")
}

/// The suite's template, made ready once per process (the nextest setup script has already
/// built it; under `cargo test` the first caller may build it); its name. Blocking.
pub fn app() -> &'static str {
    static READY: std::sync::Once = std::sync::Once::new();
    READY.call_once(|| {
        template().ensure(&client(), &Default::default()).expect("the suite's template builds");
    });
    "app"
}

/// Tables of the template, in order.
pub const TABLES: &[&str] = &["_sqlx_migrations", "accounts", "labels", "projects", "scratch", "tasks"];

/// The database is exactly as migrations/ leaves it: tables, rows, sequences, trigger.
pub async fn assert_pristine(pool: &PgPool) {
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
            .fetch_all(pool)
            .await
            .unwrap();
    assert_eq!(tables, TABLES);
    let emails: Vec<String> =
        sqlx::query_scalar("SELECT email FROM accounts ORDER BY id").fetch_all(pool).await.unwrap();
    assert_eq!(emails, ["ada@example.com", "grace@example.com", "linus@example.com"]);
    let projects: Vec<(String, i32)> =
        sqlx::query_as("SELECT name, task_count FROM projects ORDER BY id").fetch_all(pool).await.unwrap();
    assert_eq!(projects, [("compiler".to_owned(), 2), ("kernel".to_owned(), 1)]);
    let scratch: i64 = sqlx::query_scalar("SELECT count(*) FROM scratch").fetch_one(pool).await.unwrap();
    assert_eq!(scratch, 0, "another test's rows are in this database");
    let accounts_seq: (i64, bool) =
        sqlx::query_as("SELECT last_value, is_called FROM accounts_id_seq").fetch_one(pool).await.unwrap();
    assert_eq!(accounts_seq, (3, true));
    let invoices: (i64, bool) =
        sqlx::query_as("SELECT last_value, is_called FROM invoice_numbers").fetch_one(pool).await.unwrap();
    assert_eq!(invoices, (1000, false));
    let applied: i64 =
        sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success").fetch_one(pool).await.unwrap();
    assert_eq!(applied, 3);
}

/// Marks the database as this test's, lets other tests run meanwhile, and asserts that no
/// other test's mark appeared: a test that shared a database with another would see it.
pub async fn claim(pool: &PgPool, test: &str) -> String {
    let started = now_ms();
    assert_pristine(pool).await;
    let database: String = sqlx::query_scalar("SELECT current_database()::text").fetch_one(pool).await.unwrap();
    sqlx::query("INSERT INTO scratch (test) VALUES ($1)").bind(test).execute(pool).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let marks: Vec<String> = sqlx::query_scalar("SELECT test FROM scratch").fetch_all(pool).await.unwrap();
    assert_eq!(marks, [test], "database {database} was written by another test");
    record(test, &database, started);
    database
}

/// Milliseconds since the epoch, for [`record`].
pub fn now_ms() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis()
}

/// One line `test database pid started_ms ended_ms` in `$PGLEASE_E2E_RECORD/`, when set. The
/// driver checks that no two tests used one database at the same time (a database recycled by
/// a reset in place keeps its name, so later tests may get it again).
pub fn record(test: &str, database: &str, started_ms: u128) {
    let Some(dir) = std::env::var_os("PGLEASE_E2E_RECORD") else { return };
    let path = std::path::Path::new(&dir).join(format!("{}-{}", test.replace("::", "."), std::process::id()));
    let mut file = std::fs::File::create(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    writeln!(file, "{test} {database} {} {started_ms} {}", std::process::id(), now_ms()).unwrap();
}

/// A template name of this process's own (at most 27 characters).
pub fn unique_template(prefix: &str) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{prefix}_{:x}_{:x}", std::process::id(), nanos)
}
