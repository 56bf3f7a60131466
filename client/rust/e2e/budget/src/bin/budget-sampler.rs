//! Samples the server's client connections every 20 ms until standard input closes, then
//! prints the peaks as JSON: `{"samples", "peak_total", "peak_admin", "peak_tests"}`, where
//! "admin" is sessions on the `postgres` database (pgleased's, or the fixture's admin pools) and
//! "tests" every other session. Its own session is not counted.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options: PgConnectOptions = std::env::var("BUDGET_ADMIN_URL")?.parse()?;
    let mut conn = PgConnection::connect_with(&options).await?;
    let done = Arc::new(AtomicBool::new(false));
    let stdin_closed = done.clone();
    std::thread::spawn(move || {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        stdin_closed.store(true, Ordering::SeqCst);
    });
    let (mut samples, mut peak_total, mut peak_admin, mut peak_tests) = (0u64, 0i64, 0i64, 0i64);
    while !done.load(Ordering::SeqCst) {
        let (total, admin): (i64, i64) = sqlx::query_as(
            "SELECT count(*), count(*) FILTER (WHERE datname = 'postgres') FROM pg_stat_activity \
             WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
        )
        .fetch_one(&mut conn)
        .await?;
        samples += 1;
        peak_total = peak_total.max(total);
        peak_admin = peak_admin.max(admin);
        peak_tests = peak_tests.max(total - admin);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "{{\"samples\": {samples}, \"peak_total\": {peak_total}, \"peak_admin\": {peak_admin}, \"peak_tests\": {peak_tests}}}"
    );
    conn.close().await?;
    Ok(())
}
