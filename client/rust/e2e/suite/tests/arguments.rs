//! What a `#[pglease::test]` function may take and return.

use pglease::LeaseInfo;
use pglease_e2e_suite::{assert_pristine, now_ms, record};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, PgPool};

#[pglease::test(template = "app")]
async fn a_connection(mut conn: PgConnection) {
    let started = now_ms();
    let database: String = sqlx::query_scalar("SELECT current_database()::text").fetch_one(&mut conn).await.unwrap();
    let accounts: i64 = sqlx::query_scalar("SELECT count(*) FROM accounts").fetch_one(&mut conn).await.unwrap();
    assert_eq!(accounts, 3);
    record("arguments::a_connection", &database, started);
}

#[pglease::test(template = "app")]
async fn the_lease_and_a_pool_of_the_same_database(pool: PgPool, lease: LeaseInfo) {
    let started = now_ms();
    let database: String = sqlx::query_scalar("SELECT current_database()::text").fetch_one(&pool).await.unwrap();
    assert_eq!(database, lease.database);
    assert_eq!(lease.template, "app");
    assert!(lease.dsn.starts_with("postgresql://") && lease.dsn.ends_with(&format!("/{}", lease.database)));
    assert_eq!(lease.owner, "arguments::the_lease_and_a_pool_of_the_same_database");
    let live = pglease_e2e_suite::client().lease(&lease.id).unwrap();
    assert_eq!(live.database, lease.database, "the lease is live while the test runs");
    assert_pristine(&pool).await;
    record("arguments::the_lease_and_a_pool_of_the_same_database", &database, started);
}

#[pglease::test(template = "app")]
async fn connect_options_for_a_connection_of_ones_own(options: PgConnectOptions) {
    let started = now_ms();
    let mut conn = PgConnection::connect_with(&options).await.unwrap();
    let database: String = sqlx::query_scalar("SELECT current_database()::text").fetch_one(&mut conn).await.unwrap();
    assert_eq!(options.get_database(), Some(database.as_str()));
    record("arguments::connect_options_for_a_connection_of_ones_own", &database, started);
}

#[pglease::test(template = "app")]
async fn a_result(pool: PgPool) -> Result<(), sqlx::Error> {
    let started = now_ms();
    let database: String = sqlx::query_scalar("SELECT current_database()::text").fetch_one(&pool).await?;
    sqlx::query("DELETE FROM labels").execute(&pool).await?;
    record("arguments::a_result", &database, started);
    Ok(())
}

#[pglease::test(template = "app")]
async fn nothing_at_all() {
    // The lease is taken and released all the same; the driver counts it in GET /v1/leases.
}

/// Runs under nextest only: the setup script's environment reached this process.
#[pglease::test(template = "app")]
async fn the_nextest_setup_script_prepared_the_run(lease: LeaseInfo) {
    if std::env::var_os("NEXTEST").is_none() || std::env::var_os("PGLEASE_E2E_EXPECT_SETUP").is_none() {
        return;
    }
    let ready = std::env::var("PGLEASE_READY_TEMPLATES").expect("the setup script wrote PGLEASE_READY_TEMPLATES");
    let fingerprint = pglease_e2e_suite::template().fingerprint().unwrap();
    assert_eq!(ready, format!("app@{fingerprint}"));
    assert_eq!(lease.labels.get("runner").map(String::as_str), Some("nextest"));
    let url = std::env::var("PGLEASE_URL").unwrap();
    assert!(!url.ends_with('/'), "the setup script wrote the normalized URL, not {url:?}");
}
