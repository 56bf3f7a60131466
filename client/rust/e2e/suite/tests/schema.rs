//! Every `#[pglease::test]` gets a whole copy of the template: tables, rows, sequences,
//! triggers and foreign keys, owned by the role it connects as.

use pglease_e2e_suite::claim;
use sqlx::{PgPool, Row};

#[pglease::test(template = "app")]
async fn the_database_is_the_template_as_migrated(pool: PgPool) {
    claim(&pool, "schema::the_database_is_the_template_as_migrated").await;
}

#[pglease::test(template = "app")]
async fn sqlx_recorded_every_migration_reversible_ones_included(pool: PgPool) {
    let versions: Vec<(i64, String)> =
        sqlx::query_as("SELECT version, description FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        versions,
        [
            (20240101000000, "schema".to_owned()),
            (20240102000000, "seed".to_owned()),
            (20240103000000, "labels".to_owned())
        ]
    );
    let labels: i64 = sqlx::query_scalar("SELECT count(*) FROM labels").fetch_one(&pool).await.unwrap();
    assert_eq!(labels, 2);
    claim(&pool, "schema::sqlx_recorded_every_migration_reversible_ones_included").await;
}

#[pglease::test(template = "app")]
async fn the_trigger_counts_tasks(pool: PgPool) {
    claim(&pool, "schema::the_trigger_counts_tasks").await;
    sqlx::query("INSERT INTO tasks (project_id, title) VALUES (2, 'drivers'), (2, 'memory')")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM tasks WHERE title = 'parser'").execute(&pool).await.unwrap();
    let counts: Vec<i32> =
        sqlx::query_scalar("SELECT task_count FROM projects ORDER BY id").fetch_all(&pool).await.unwrap();
    assert_eq!(counts, [1, 3]);
}

#[pglease::test(template = "app")]
async fn foreign_keys_refuse_orphans(pool: PgPool) {
    claim(&pool, "schema::foreign_keys_refuse_orphans").await;
    let error =
        sqlx::query("INSERT INTO projects (account_id, name) VALUES (99, 'orphan')").execute(&pool).await.unwrap_err();
    let code = error.as_database_error().and_then(|e| e.code()).map(|c| c.into_owned());
    assert_eq!(code.as_deref(), Some("23503"), "{error}");
    let error =
        sqlx::query("INSERT INTO accounts (email) VALUES ('ada@example.com')").execute(&pool).await.unwrap_err();
    assert!(error.to_string().contains("accounts_email_key"), "{error}");
}

#[pglease::test(template = "app")]
async fn sequences_continue_from_the_template(pool: PgPool) {
    claim(&pool, "schema::sequences_continue_from_the_template").await;
    let id: i64 = sqlx::query_scalar("INSERT INTO accounts (email) VALUES ('new@example.com') RETURNING id")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(id, 4);
    let invoice: i64 = sqlx::query_scalar("SELECT nextval('invoice_numbers')").fetch_one(&pool).await.unwrap();
    assert_eq!(invoice, 1000);
}

#[pglease::test(template = "app")]
async fn the_lease_role_owns_everything_and_may_change_it(pool: PgPool) {
    claim(&pool, "schema::the_lease_role_owns_everything_and_may_change_it").await;
    let foreign: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner <> current_user")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(foreign, 0);
    sqlx::query("ALTER TABLE tasks ADD COLUMN due date").execute(&pool).await.unwrap();
    sqlx::query("CREATE TABLE notes (body text)").execute(&pool).await.unwrap();
    sqlx::query("TRUNCATE labels, tasks").execute(&pool).await.unwrap();
    let super_user: bool = sqlx::query_scalar("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(!super_user, "workers must never get a superuser");
}

#[pglease::test(template = "app")]
async fn a_rolled_back_transaction_leaves_nothing(pool: PgPool) {
    claim(&pool, "schema::a_rolled_back_transaction_leaves_nothing").await;
    let mut transaction = pool.begin().await.unwrap();
    sqlx::query("DELETE FROM tasks").execute(&mut *transaction).await.unwrap();
    transaction.rollback().await.unwrap();
    let tasks: i64 = sqlx::query_scalar("SELECT count(*) FROM tasks").fetch_one(&pool).await.unwrap();
    assert_eq!(tasks, 3);
}

#[pglease::test(template = "app")]
async fn the_pool_opens_several_connections_to_its_own_database(pool: PgPool) {
    let database = claim(&pool, "schema::the_pool_opens_several_connections_to_its_own_database").await;
    let (a, b, c) = tokio::join!(
        sqlx::query("SELECT current_database()::text AS db, pg_backend_pid() AS pid, pg_sleep(0.2)::text")
            .fetch_one(&pool),
        sqlx::query("SELECT current_database()::text AS db, pg_backend_pid() AS pid, pg_sleep(0.2)::text")
            .fetch_one(&pool),
        sqlx::query("SELECT current_database()::text AS db, pg_backend_pid() AS pid, pg_sleep(0.2)::text")
            .fetch_one(&pool),
    );
    let rows = [a.unwrap(), b.unwrap(), c.unwrap()];
    let mut pids: Vec<i32> = rows.iter().map(|row| row.get("pid")).collect();
    pids.sort();
    pids.dedup();
    assert_eq!(pids.len(), 3, "three queries at once run on three connections");
    assert!(rows.iter().all(|row| row.get::<String, _>("db") == database));
}
