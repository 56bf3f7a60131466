//! Tests that run at the same time, each writing to its database and finding only its own
//! writes: under nextest each is a process, under `cargo test` a thread, and every one has a
//! database of its own (the driver checks from the records that no two shared one).

use pglease_e2e_suite::claim;
use sqlx::PgPool;

macro_rules! writers {
    ($($name:ident),* $(,)?) => {$(
        #[pglease::test(template = "app")]
        async fn $name(pool: PgPool) {
            claim(&pool, concat!("isolation::", stringify!($name))).await;
            // Writes everywhere a shared database would show them to the next test.
            sqlx::query("UPDATE accounts SET email = $1 || '@' || id").bind(stringify!($name)).execute(&pool).await.unwrap();
            sqlx::query("DELETE FROM tasks WHERE id = 3").execute(&pool).await.unwrap();
            sqlx::query("SELECT setval('invoice_numbers', 5000)").execute(&pool).await.unwrap();
            sqlx::query("CREATE TABLE private_table (n int)").execute(&pool).await.unwrap();
        }
    )*};
}

writers!(writer_01, writer_02, writer_03, writer_04, writer_05, writer_06, writer_07, writer_08);
