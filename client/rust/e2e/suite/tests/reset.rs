//! `reset()` on a lease that goes on, against the real daemon: the same lease, database and
//! connection see the template's state again; a session inside a transaction or running a
//! query holds the reset back with 409 `sessions_busy`; a change of the schema is cloned again
//! under the same name.

use std::time::Duration;

use pglease::{AcquireOptions, AsyncClient, Code, Error, ReleaseMode, ResetResult};
use pglease_e2e_suite::{app, assert_pristine, claim, client};
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, PgPool};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// A pool of exactly one connection: it keeps the same session while that session lives.
async fn one_connection(dsn: &str) -> PgPool {
    PgPoolOptions::new().max_connections(1).connect(dsn).await.expect("the leased database takes connections")
}

async fn backend_pid(pool: &PgPool) -> i32 {
    sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(pool).await.unwrap()
}

/// What a test writes: rows in four tables (one through a trigger) and two sequences.
async fn write(pool: &PgPool, round: u32) {
    for statement in [
        format!("INSERT INTO accounts (email) VALUES ('reset-{round}@example.com')"),
        format!("UPDATE projects SET name = 'renamed {round}'"),
        "DELETE FROM tasks WHERE id = 3".to_owned(),
        "DELETE FROM labels".to_owned(),
        "SELECT nextval('invoice_numbers')".to_owned(),
        format!("INSERT INTO scratch (test) VALUES ('round {round}')"),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(statement)).execute(pool).await.unwrap();
    }
    let accounts: i64 = sqlx::query_scalar("SELECT count(*) FROM accounts").fetch_one(pool).await.unwrap();
    assert_eq!(accounts, 4, "the write landed");
}

#[test]
fn a_reset_undoes_the_writes_in_place_on_the_same_lease_and_connection() {
    let client = client();
    let mut lease = client.acquire(app(), &AcquireOptions::new().owner("reset::in_place")).unwrap();
    let before = lease.info().clone();
    let runtime = runtime();
    let pool = runtime.block_on(one_connection(&lease.dsn));
    let pid = runtime.block_on(backend_pid(&pool));
    runtime.block_on(claim(&pool, "reset::a_reset_undoes_the_writes_in_place_on_the_same_lease_and_connection"));
    // Two tests in a row on one lease: write, reset, find the template's state.
    for round in 1..=2 {
        runtime.block_on(write(&pool, round));
        let outcome = client.reset(&mut lease).expect("the reset succeeds while the session is idle");
        assert_eq!((outcome.result, outcome.reason.as_str()), (ResetResult::Reset, ""), "round {round}");
        assert_eq!(
            (&lease.id, &lease.database, &lease.dsn, &lease.expires_at),
            (&before.id, &before.database, &before.dsn, &before.expires_at),
            "a reset keeps the lease as it was"
        );
        runtime.block_on(async {
            assert_eq!(backend_pid(&pool).await, pid, "the idle session stayed connected through the reset");
            assert_pristine(&pool).await;
        });
    }
    runtime.block_on(pool.close());
    let id = lease.id.clone();
    lease.release().unwrap();
    assert_eq!(client.lease(&id).unwrap_err().code(), Some(&Code::UnknownLease));
}

/// The reset is refused with 409 `sessions_busy`, naming session `pid` in `state`.
fn assert_refused(client: &pglease::Client, lease: &mut pglease::Lease, pid: i32, state: &str) {
    match client.reset(lease).expect_err("a busy session refuses the reset") {
        Error::Api(api) => {
            assert_eq!((api.status, &api.code), (409, &Code::SessionsBusy), "{api}");
            assert_eq!(api.retry_after, Some(Duration::from_secs(1)));
            let named = format!("pid {pid} ({state})");
            assert!(api.message.contains(&named), "the refusal names {named:?}: {}", api.message);
        }
        other => panic!("expected 409 sessions_busy, got {other}"),
    }
}

#[test]
fn a_session_in_a_transaction_or_a_query_holds_the_reset_back_with_sessions_busy() {
    let client = client();
    let mut lease = client.acquire(app(), &AcquireOptions::new().owner("reset::busy")).unwrap();
    let runtime = runtime();
    let mut busy = runtime.block_on(PgConnection::connect(&lease.dsn)).unwrap();
    let pid: i32 = runtime.block_on(sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(&mut busy)).unwrap();

    // Inside a transaction, with a write of its own not yet committed.
    runtime.block_on(sqlx::query("BEGIN").execute(&mut busy)).unwrap();
    runtime
        .block_on(sqlx::query("UPDATE accounts SET email = 'mine@example.com' WHERE id = 1").execute(&mut busy))
        .unwrap();
    assert_refused(&client, &mut lease, pid, "idle in transaction");
    runtime.block_on(sqlx::query("COMMIT").execute(&mut busy)).unwrap();

    // Running a statement.
    runtime.block_on(async {
        let sleeping = sqlx::query("SELECT pg_sleep(3)").execute(&mut busy);
        tokio::pin!(sleeping);
        let mut watcher = PgConnection::connect(&lease.dsn).await.unwrap();
        loop {
            tokio::select! {
                done = &mut sleeping => panic!("the query ended before the reset was tried: {done:?}"),
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
            let state: Option<String> = sqlx::query_scalar("SELECT state FROM pg_stat_activity WHERE pid = $1")
                .bind(pid)
                .fetch_optional(&mut watcher)
                .await
                .unwrap()
                .flatten();
            if state.as_deref() == Some("active") {
                break;
            }
        }
        // The blocking call runs while this runtime's only thread waits; the query runs on the server.
        assert_refused(&client, &mut lease, pid, "active");
        sleeping.await.unwrap();
        watcher.close().await.unwrap();
    });

    // Idle again: the reset goes through, undoes the committed write, and the session stays.
    let outcome = client.reset(&mut lease).expect("an idle session lets the reset through");
    assert_eq!(outcome.result, ResetResult::Reset, "{outcome:?}");
    let (email, same_pid): (String, i32) = runtime
        .block_on(sqlx::query_as("SELECT email, pg_backend_pid() FROM accounts WHERE id = 1").fetch_one(&mut busy))
        .unwrap();
    assert_eq!((email.as_str(), same_pid), ("ada@example.com", pid));
    runtime.block_on(busy.close()).unwrap();
}

#[tokio::test]
async fn a_schema_change_is_cloned_again_under_the_same_name() {
    let client = AsyncClient::from_env().unwrap();
    let name = tokio::task::spawn_blocking(app).await.unwrap();
    let mut lease = client.acquire(name, &AcquireOptions::new().owner("reset::reclone")).await.unwrap();
    let before = lease.info().clone();
    let pool = one_connection(&lease.dsn).await;
    let pid = backend_pid(&pool).await;
    claim(&pool, "reset::a_schema_change_is_cloned_again_under_the_same_name").await;
    sqlx::query("CREATE TABLE private_table (n int)").execute(&pool).await.unwrap();
    sqlx::query("INSERT INTO accounts (email) VALUES ('ddl@example.com')").execute(&pool).await.unwrap();

    let outcome = client.reset(&mut lease).await.unwrap();
    assert_eq!(outcome.result, ResetResult::Reclone, "DDL cannot be undone in place: {outcome:?}");
    assert!(!outcome.reason.is_empty(), "a reclone says why");
    assert_eq!((&lease.id, &lease.database, &lease.dsn), (&before.id, &before.database, &before.dsn));
    // The reclone ended the session; the pool connects again, to the same name, fresh.
    assert_ne!(backend_pid(&pool).await, pid, "a reclone ends the database's sessions");
    assert_pristine(&pool).await;
    pool.close().await;
    client.release(lease, ReleaseMode::Recycle).await.unwrap();
}
