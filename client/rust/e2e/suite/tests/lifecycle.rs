//! However a test ends, its lease ends: a panic releases it (or keeps the database when asked),
//! a process killed with SIGKILL leaves it to its TTL. Each case runs a helper test of this
//! binary in a process of its own and looks at the lease from outside.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pglease::{Code, LeaseInfo};
use sqlx::PgPool;

/// Set for the helpers' processes only, so a run of ignored tests does not kill itself.
const HELPER: &str = "PGLEASE_E2E_HELPER";

fn helper_enabled() -> bool {
    std::env::var_os(HELPER).is_some()
}

/// Notes the lease where the parent finds it.
fn note(lease: &LeaseInfo) {
    if let Some(path) = std::env::var_os("PGLEASE_E2E_NOTE") {
        std::fs::write(path, format!("{}\n{}\n{}\n", lease.id, lease.database, lease.dsn)).unwrap();
    }
}

#[pglease::test(template = "app")]
#[ignore = "a helper: run by a_panicking_test_releases_its_lease"]
async fn helper_panics(lease: LeaseInfo, pool: PgPool) {
    if !helper_enabled() {
        return;
    }
    sqlx::query("INSERT INTO scratch (test) VALUES ('helper_panics')").execute(&pool).await.unwrap();
    note(&lease);
    panic!("this test fails on purpose");
}

#[pglease::test(template = "app")]
#[ignore = "a helper: run by a_failing_test_keeps_its_database_when_asked"]
async fn helper_returns_an_error(lease: LeaseInfo, pool: PgPool) -> Result<(), String> {
    if !helper_enabled() {
        return Ok(());
    }
    sqlx::query("INSERT INTO scratch (test) VALUES ('helper_returns_an_error')").execute(&pool).await.unwrap();
    note(&lease);
    Err("this test fails on purpose".into())
}

#[pglease::test(template = "app")]
#[ignore = "a helper: run by a_killed_test_leaves_a_lease_that_expires"]
async fn helper_is_killed(lease: LeaseInfo) {
    if !helper_enabled() {
        return;
    }
    note(&lease);
    Command::new("kill").args(["-KILL", &std::process::id().to_string()]).status().unwrap();
    tokio::time::sleep(Duration::from_secs(60)).await;
    unreachable!("SIGKILL did not end the process");
}

struct Helper {
    output: Output,
    lease_id: String,
    database: String,
    dsn: String,
}

/// Runs helper test `name` of this binary in a process of its own, with `env`.
fn run_helper(name: &str, env: &[(&str, &str)]) -> Helper {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let run = RUNS.fetch_add(1, Ordering::SeqCst);
    let note = std::env::temp_dir().join(format!("pglease-e2e-note-{name}-{}-{run}", std::process::id()));
    let _ = std::fs::remove_file(&note);
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.args([name, "--exact", "--ignored", "--nocapture", "--test-threads=1"]);
    command.env(HELPER, "1").env("PGLEASE_E2E_NOTE", &note).env_remove("PGLEASE_KEEP_FAILED").env_remove("PGLEASE_TTL");
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().unwrap();
    let noted = std::fs::read_to_string(&note)
        .unwrap_or_else(|e| panic!("{name} noted no lease ({e}): {}", String::from_utf8_lossy(&output.stderr)));
    let _ = std::fs::remove_file(&note);
    let mut lines = noted.lines().map(str::to_owned);
    Helper { lease_id: lines.next().unwrap(), database: lines.next().unwrap(), dsn: lines.next().unwrap(), output }
}

fn assert_lease_ended(id: &str) {
    let error = pglease_e2e_suite::client().lease(id).expect_err("the lease ended with its test");
    assert_eq!(error.code(), Some(&Code::UnknownLease), "{error}");
}

#[test]
fn a_panicking_test_releases_its_lease() {
    let helper = run_helper("helper_panics", &[]);
    assert_eq!(helper.output.status.code(), Some(101), "the helper test failed");
    let stderr = String::from_utf8_lossy(&helper.output.stderr);
    assert!(stderr.contains("this test fails on purpose"), "{stderr}");
    assert!(!stderr.contains("pglease: could not release"), "{stderr}");
    // With a TTL of minutes, a lease gone at once was released, not expired.
    assert_lease_ended(&helper.lease_id);
}

#[test]
fn a_failing_test_keeps_its_database_when_asked() {
    for helper in ["helper_panics", "helper_returns_an_error"] {
        let run = run_helper(helper, &[("PGLEASE_KEEP_FAILED", "2m")]);
        assert_eq!(run.output.status.code(), Some(101), "the helper test failed");
        let stderr = String::from_utf8_lossy(&run.output.stderr);
        let said = format!("pglease: kept database {} for 120 s: {}", run.database, run.dsn);
        assert!(stderr.contains(&said), "{helper} did not say {said:?}:\n{stderr}");
        assert_lease_ended(&run.lease_id);
        let kept = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
            let pool = PgPool::connect(&run.dsn).await.expect("the kept database takes connections");
            sqlx::query_scalar::<_, String>("SELECT test FROM scratch").fetch_all(&pool).await.unwrap()
        });
        assert_eq!(kept, [helper], "the kept database is the failed test's, as it left it");
    }
}

#[test]
fn a_killed_test_leaves_a_lease_that_expires() {
    let ttl = 4;
    let started = Instant::now();
    let helper = run_helper("helper_is_killed", &[("PGLEASE_TTL", &ttl.to_string())]);
    assert_eq!(helper.output.status.signal(), Some(9), "the helper was killed: {:?}", helper.output.status);
    let client = pglease_e2e_suite::client();
    let live = client.lease(&helper.lease_id).expect("nobody released the killed test's lease");
    assert_eq!(live.database, helper.database);
    loop {
        match client.lease(&helper.lease_id) {
            Ok(_) => {
                assert!(started.elapsed() < Duration::from_secs(ttl + 3), "the lease outlived its TTL of {ttl} s");
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(error) => {
                assert_eq!(error.code(), Some(&Code::UnknownLease), "{error}");
                break;
            }
        }
    }
    let lasted = started.elapsed();
    assert!(lasted >= Duration::from_secs(ttl - 1), "the lease ended after {lasted:?}, before its TTL of {ttl} s");
}

#[pglease::test(template = "app")]
#[should_panic(expected = "a panic inside a pglease test")]
async fn a_should_panic_test_runs_on_its_own_database(pool: PgPool) {
    pglease_e2e_suite::claim(&pool, "lifecycle::a_should_panic_test_runs_on_its_own_database").await;
    panic!("a panic inside a pglease test");
}
