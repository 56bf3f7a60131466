//! Client-initialized templates: one caller builds, the others wait; a failed build lets the
//! next caller build; the fingerprint follows the migrations.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use pglease::{AcquireOptions, AsyncClient, BuildOptions, Code, Error, SqlxTemplate};
use pglease_e2e_suite::{client, unique_template};
use sqlx::Connection;

async fn execute(dsn: &str, sql: &'static str) -> Result<(), sqlx::Error> {
    let mut conn = sqlx::PgConnection::connect(dsn).await?;
    sqlx::query(sql).execute(&mut conn).await?;
    conn.close().await
}

fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(future)
}

#[test]
fn exactly_one_of_many_concurrent_callers_builds() {
    let name = unique_template("race");
    let callers = 6;
    let builds = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(callers));
    let threads: Vec<_> = (0..callers)
        .map(|_| {
            let (name, builds, barrier) = (name.clone(), builds.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                client()
                    .build_template(&name, "race-v1", &BuildOptions::default(), |build| {
                        builds.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(500)); // the others arrive meanwhile
                        block_on(execute(&build.dsn, "CREATE TABLE built_once (n int)"))
                    })
                    .unwrap()
            })
        })
        .collect();
    let versions: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(builds.load(Ordering::SeqCst), 1);
    assert_eq!(versions.iter().filter(|v| v.built).count(), 1);
    assert!(versions.iter().all(|v| v.template.state == "ready"));
    let lease = client().acquire(&name, &AcquireOptions::new()).unwrap();
    block_on(execute(&lease.dsn, "INSERT INTO built_once VALUES (1)")).expect("the clone has the built schema");
}

#[test]
fn a_failed_build_is_aborted_and_the_next_caller_builds() {
    let name = unique_template("fail");
    let error = client()
        .build_template(&name, "v1", &BuildOptions::default(), |build| {
            block_on(execute(&build.dsn, "CREATE TABLE broken (n no_such_type)"))
        })
        .unwrap_err();
    assert!(matches!(error, Error::Migration(_)), "{error}");
    assert!(error.to_string().contains("no_such_type"), "the migration's error is kept: {error}");
    let version = client()
        .build_template(&name, "v1", &BuildOptions::default(), |build| {
            block_on(execute(&build.dsn, "CREATE TABLE fixed (n int)"))
        })
        .unwrap();
    assert!(version.built, "after an abort the next caller builds at once, not after the build TTL");
}

#[test]
fn a_panicking_migration_aborts_its_build() {
    let name = unique_template("panic");
    let panicked = std::panic::catch_unwind(|| {
        let _ = client().build_template(&name, "v1", &BuildOptions::default(), |_build| -> Result<(), String> {
            panic!("the migration tool crashed")
        });
    });
    assert!(panicked.is_err());
    let version = client()
        .build_template(&name, "v1", &BuildOptions { timeout: Duration::from_secs(5), ..Default::default() }, |_| {
            Ok::<_, String>(())
        })
        .expect("the panicked build was aborted: this caller builds within seconds");
    assert!(version.built);
}

#[test]
fn a_caller_waits_no_longer_than_its_timeout_for_another_build() {
    let name = unique_template("slow");
    let ensured = client().ensure_template(&name, "v1", &Default::default()).unwrap();
    let pglease::Ensured::Build(_, build) = ensured else { panic!("the first caller builds") };
    let options = BuildOptions { timeout: Duration::from_secs(2), ..Default::default() };
    let started = std::time::Instant::now();
    let error = client().build_template(&name, "v1", &options, |_| Ok::<_, String>(())).unwrap_err();
    assert_eq!(error.code(), Some(&Code::TemplateBuilding), "{error}");
    assert!(started.elapsed() < Duration::from_secs(6), "gave up after {:?}", started.elapsed());
    client().abort_build(&name, "v1", &build.id).unwrap();
}

#[tokio::test]
async fn the_async_client_builds_with_sqlx_migrations() {
    let client = AsyncClient::from_env().unwrap();
    let base = std::env::temp_dir().join(unique_template("mig"));
    std::fs::create_dir_all(base.join("migrations")).unwrap();
    std::fs::write(base.join("migrations/1_one.sql"), "CREATE TABLE one (n int); INSERT INTO one VALUES (1);").unwrap();
    let template = SqlxTemplate::new(unique_template("asy"), &base, "migrations");
    let first = template.ensure_async(&client, &Default::default()).await.unwrap();
    assert!(first.built);
    let again = template.ensure_async(&client, &Default::default()).await.unwrap();
    assert!(!again.built, "the same migrations are built once");

    std::fs::write(base.join("migrations/2_two.sql"), "INSERT INTO one VALUES (2);").unwrap();
    assert_ne!(template.fingerprint().unwrap(), first.fingerprint, "a new migration is a new version");
    let second = template.ensure_async(&client, &Default::default()).await.unwrap();
    assert!(second.built);
    let lease = client.acquire(template.name(), &AcquireOptions::new()).await.unwrap();
    let mut conn = sqlx::PgConnection::connect(&lease.dsn).await.unwrap();
    let rows: Vec<i32> = sqlx::query_scalar("SELECT n FROM one ORDER BY n").fetch_all(&mut conn).await.unwrap();
    assert_eq!(rows, [1, 2], "new leases are of the new version");
    conn.close().await.unwrap();
    client.release(lease, pglease::ReleaseMode::Recycle).await.unwrap();

    // The first version lives on beside the second: a lease naming it gets it (another branch's
    // job, whose migrations stop at the first file).
    let options = AcquireOptions::new().fingerprint(first.fingerprint.clone());
    let lease = client.acquire(template.name(), &options).await.unwrap();
    let mut conn = sqlx::PgConnection::connect(&lease.dsn).await.unwrap();
    let rows: Vec<i32> = sqlx::query_scalar("SELECT n FROM one ORDER BY n").fetch_all(&mut conn).await.unwrap();
    assert_eq!(rows, [1], "a lease of the first version by its fingerprint");
    conn.close().await.unwrap();
    client.release(lease, pglease::ReleaseMode::Recycle).await.unwrap();
    let unknown = client.acquire(template.name(), &AcquireOptions::new().fingerprint("no-such-version")).await;
    assert!(
        matches!(&unknown, Err(Error::Api(e)) if e.code == Code::UnknownVersion && e.status == 404),
        "a fingerprint no version has: {unknown:?}"
    );
    std::fs::remove_dir_all(&base).unwrap();
}

#[test]
fn the_suites_fingerprint_names_its_migrations_relative_to_the_crate() {
    let files = pglease::fingerprint::migration_files(&["migrations"], env!("CARGO_MANIFEST_DIR")).unwrap();
    let names: Vec<&str> = files.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "migrations/20240101000000_schema.sql",
            "migrations/20240102000000_seed.sql",
            "migrations/20240103000000_labels.down.sql",
            "migrations/20240103000000_labels.up.sql",
        ]
    );
    let expected = pglease::fingerprint(&["migrations"], env!("CARGO_MANIFEST_DIR"), "sqlx migrate run").unwrap();
    assert_eq!(pglease_e2e_suite::template().fingerprint().unwrap(), expected);
}
