//! The quick start of client/rust/README.md, as it is there (e2e/run checks that it still is).

use sqlx::PgPool;

#[pglease::test(template = "app")] // built from this crate's migrations/ on first use
async fn adding_a_task_counts_it(pool: PgPool) {
    sqlx::query("INSERT INTO tasks (project_id, title) VALUES (2, 'drivers')").execute(&pool).await.unwrap();
    let count: i32 = sqlx::query_scalar("SELECT task_count FROM projects WHERE id = 2").fetch_one(&pool).await.unwrap();
    assert_eq!(count, 2); // the template's 1, and this test's task: no other test's
}
