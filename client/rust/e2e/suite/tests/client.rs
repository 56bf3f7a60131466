//! The blocking and async clients and the `Lease` guard, against the real daemon.

use std::time::Duration;

use pglease::{AcquireOptions, AsyncClient, Client, Code, Error, ReleaseMode};
use pglease_e2e_suite::{app, client};

fn ended(client: &Client, id: &str) -> bool {
    match client.lease(id) {
        Ok(_) => false,
        Err(error) => {
            assert_eq!(error.code(), Some(&Code::UnknownLease), "{error}");
            true
        }
    }
}

#[test]
fn blocking_acquire_renew_release() {
    let client = client();
    let mut lease =
        client.acquire(app(), &AcquireOptions::new().ttl(Duration::from_secs(60)).owner("blocking")).unwrap();
    assert_eq!((lease.template.as_str(), lease.owner.as_str()), ("app", "blocking"));
    assert_eq!(client.lease(&lease.id).unwrap().database, lease.database);
    let before = lease.expires_at.clone();
    std::thread::sleep(Duration::from_millis(20));
    client.renew(&mut lease, Some(Duration::from_secs(120))).unwrap();
    assert!(lease.expires_at > before, "renew moved the expiry: {} -> {}", before, lease.expires_at);
    let id = lease.id.clone();
    client.release(lease, ReleaseMode::Recycle).unwrap();
    assert!(ended(&client, &id));
    let error = client.release_id(&id, ReleaseMode::Recycle).unwrap_err();
    assert_eq!((error.status(), error.code()), (Some(404), Some(&Code::UnknownLease)));
}

#[tokio::test]
async fn async_acquire_renew_release() {
    let client = AsyncClient::from_env().unwrap();
    let name = tokio::task::spawn_blocking(app).await.unwrap();
    let mut lease = client.acquire(name, &AcquireOptions::new().label("suite", "e2e")).await.unwrap();
    assert_eq!(lease.labels.get("suite").map(String::as_str), Some("e2e"));
    client.renew(&mut lease, None).await.unwrap();
    assert_eq!(client.lease(&lease.id).await.unwrap().expires_at, lease.expires_at);
    let listed = client.leases().await.unwrap();
    assert!(listed.iter().any(|l| l.database == lease.database), "GET /v1/leases lists it");
    let id = lease.id.clone();
    client.release(lease, ReleaseMode::Recycle).await.unwrap();
    let error = client.lease(&id).await.unwrap_err();
    assert_eq!(error.code(), Some(&Code::UnknownLease));
}

#[test]
fn drop_releases_outside_a_runtime() {
    let client = client();
    let id = client.acquire(app(), &AcquireOptions::new()).unwrap().id.clone();
    assert!(ended(&client, &id), "the temporary guard released at the end of the statement");
}

#[tokio::test(flavor = "current_thread")]
async fn drop_releases_inside_a_current_thread_runtime() {
    let client = AsyncClient::from_env().unwrap();
    let name = tokio::task::spawn_blocking(app).await.unwrap();
    let lease = client.acquire(name, &AcquireOptions::new()).await.unwrap();
    let id = lease.id.clone();
    drop(lease); // a blocking call on the runtime's only thread: no nested runtime, no panic
    let error = client.lease(&id).await.unwrap_err();
    assert_eq!(error.code(), Some(&Code::UnknownLease));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_releases_inside_a_multi_thread_runtime_task() {
    let client = AsyncClient::from_env().unwrap();
    let name = tokio::task::spawn_blocking(app).await.unwrap();
    let lease = client.acquire(name, &AcquireOptions::new()).await.unwrap();
    let id = lease.id.clone();
    tokio::spawn(async move { drop(lease) }).await.unwrap();
    let error = client.lease(&id).await.unwrap_err();
    assert_eq!(error.code(), Some(&Code::UnknownLease));
}

#[test]
fn a_guard_dropped_while_panicking_releases() {
    let client = client();
    let lease = client.acquire(app(), &AcquireOptions::new()).unwrap();
    let id = lease.id.clone();
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let _held = lease;
        panic!("unwinding with a lease");
    }));
    assert!(unwound.is_err());
    assert!(ended(&client, &id));
}

#[test]
fn into_info_gives_the_lease_up_until_released_by_id() {
    let client = client();
    let info = client.acquire(app(), &AcquireOptions::new()).unwrap().into_info();
    assert!(!ended(&client, &info.id), "a lease given up is not released");
    client.release_id(&info.id, ReleaseMode::Recycle).unwrap();
    assert!(ended(&client, &info.id));
}

#[test]
fn reuse_and_keep_end_the_lease_too() {
    let client = client();
    for mode in [ReleaseMode::Reuse, ReleaseMode::Keep(Some(Duration::from_secs(5)))] {
        let lease = client.acquire(app(), &AcquireOptions::new()).unwrap();
        let id = lease.id.clone();
        lease.release_with(mode).unwrap();
        assert!(ended(&client, &id), "{mode:?}");
    }
    let mut lease = client.acquire(app(), &AcquireOptions::new()).unwrap();
    lease.set_release_on_drop(ReleaseMode::Reuse);
    let id = lease.id.clone();
    drop(lease);
    assert!(ended(&client, &id));
}

#[test]
fn a_fingerprint_is_sent_only_when_given() {
    let client = client();
    let fingerprint = client.template(app()).unwrap().fingerprint;
    match client.acquire(app(), &AcquireOptions::new().fingerprint(&fingerprint)) {
        Ok(lease) => assert_eq!(lease.fingerprint, fingerprint),
        Err(error) => {
            assert_eq!(error.code(), Some(&Code::InvalidArgument), "{error}");
            assert!(error.to_string().contains("fingerprint"), "the refusal names the field: {error}");
        }
    }
    client.acquire(app(), &AcquireOptions::new()).expect("without one, nothing is sent");
}

#[test]
fn refusals_are_typed_with_the_servers_code() {
    let client = client();
    let error = client.acquire("no_such_template", &AcquireOptions::new()).unwrap_err();
    assert_eq!((error.status(), error.code()), (Some(404), Some(&Code::UnknownTemplate)));
    let error = client.acquire(app(), &AcquireOptions::new().ttl(Duration::from_secs(10_000_000))).unwrap_err();
    assert_eq!(error.code(), Some(&Code::InvalidArgument));
    assert!(error.to_string().contains("ttl_seconds"), "{error}");
    let error = client.lease("0123456789abcdef0123456789abcdef").unwrap_err();
    assert_eq!(error.code(), Some(&Code::UnknownLease));
}

#[test]
fn an_absent_daemon_is_unreachable_not_a_hang() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let client =
        Client::builder().url(format!("http://127.0.0.1:{port}")).timeout(Duration::from_secs(2)).build().unwrap();
    match client.templates() {
        Err(Error::Unreachable { reason, .. }) => assert_eq!(reason, "connection refused"),
        other => panic!("expected unreachable, got {other:?}"),
    }
}

#[test]
fn the_template_is_listed_with_its_pool() {
    let client = client();
    let template = client.template(app()).unwrap();
    assert_eq!((template.state.as_str(), template.source.as_str()), ("ready", "client"));
    assert_eq!(template.fingerprint.len(), 64);
    assert!(template.pool.max_total >= 1);
    assert_eq!(template.pool.recycle, "reset", "a released clone is reset in place by default");
    assert!(client.templates().unwrap().iter().any(|t| t.name == "app"));
    assert!(client.ready().unwrap());
}
