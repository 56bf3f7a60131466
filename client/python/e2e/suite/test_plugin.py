"""The plugin's session fixtures and the client under them, against the real daemon."""

import secrets
from datetime import datetime, timezone
from pathlib import Path

import psycopg
import pytest

import pglease


def test_the_template_was_built_once_for_all_workers(pglease_template):
    builds = (Path(__file__).parent / "builds.log").read_text().splitlines()
    assert len(builds) == 1, builds
    assert pglease_template.detail["state"] == "ready"
    assert pglease_template.detail["source"] == "client"
    assert len(pglease_template.fingerprint) == 64


def test_worker_lease_is_live_and_names_its_worker(pglease_lease, pglease_client, worker_id):
    live = pglease_client.lease(pglease_lease.id)
    assert live.database == pglease_lease.database
    assert worker_id in live.owner
    assert live.labels == {"runner": "pytest", "worker": worker_id}
    assert live.expires_at > datetime.now(timezone.utc)


def test_errors_carry_the_servers_status_and_code(pglease_client):
    with pytest.raises(pglease.NotFoundError) as unknown_lease:
        pglease_client.renew("0" * 32)
    assert (unknown_lease.value.status, unknown_lease.value.code) == (404, "unknown_lease")
    with pytest.raises(pglease.NotFoundError) as unknown_template:
        pglease_client.acquire("no_such_template", wait=0)
    assert unknown_template.value.code == "unknown_template"
    with pytest.raises(pglease.BadRequestError) as bad:
        pglease_client.acquire("e2e_app", ttl=10**9)
    assert bad.value.code == "invalid_argument" and "ttl_seconds" in bad.value.message


def test_release_modes(pglease_client, pglease_template):
    reused = pglease_client.acquire(pglease_template.name, ttl=60, owner="release-modes")
    renewed = pglease_client.renew(reused.id, ttl=120)
    assert renewed.id == reused.id and renewed.expires_at > reused.expires_at
    pglease_client.release(reused.id, "reuse")
    kept = pglease_client.acquire(pglease_template.name, ttl=60, owner="release-modes")
    before = pglease_client.template(pglease_template.name)["pool"]["kept"]
    pglease_client.release(kept.id, "keep", keep=30)
    assert pglease_client.template(pglease_template.name)["pool"]["kept"] >= before + 1
    with psycopg.connect(kept.dsn) as still_there:  # a kept database stays reachable
        assert still_there.execute("SELECT count(*) FROM accounts").fetchone()[0] == 3
    with pytest.raises(pglease.NotFoundError):
        pglease_client.lease(kept.id)


def test_reset_keeps_idle_sessions_and_refuses_while_one_is_in_a_transaction(pglease_client,
                                                                           pglease_template):
    lease = pglease_client.acquire(pglease_template.name, ttl=120, owner="reset-contract")
    try:
        with psycopg.connect(lease.dsn, autocommit=True) as idle, psycopg.connect(lease.dsn) as busy:
            idle.execute("INSERT INTO scratch (writer) VALUES ('before the reset')")
            busy.execute("SELECT 1")  # not autocommit: now idle inside a transaction
            with pytest.raises(pglease.ConflictError) as refused:
                pglease_client.reset(lease.id)
            assert (refused.value.status, refused.value.code) == (409, "sessions_busy")
            assert refused.value.retry_after == 1
            assert str(busy.info.backend_pid) in refused.value.message
            busy.rollback()
            fresh = pglease_client.reset(lease.id)
            assert (fresh.id, fresh.database, fresh.dsn) == (lease.id, lease.database, lease.dsn)
            if fresh.reset == pglease.Reset("reset", ""):
                # In place: the idle session stayed connected and sees the template's state.
                assert idle.execute("SELECT count(*) FROM scratch").fetchone()[0] == 0
            else:  # the daemon could not prove an in-place reset exact: cloned again
                assert fresh.reset.result == "reclone" and fresh.reset.reason
                with pytest.raises(psycopg.OperationalError):
                    idle.execute("SELECT 1")
        with psycopg.connect(lease.dsn, autocommit=True) as ddl:
            ddl.execute("CREATE TABLE ddl_here (n int)")
        again = pglease_client.reset(lease.id)  # DDL: cloned again, under the same name
        assert again.reset.result == "reclone" and "catalog" in again.reset.reason
        assert again.database == lease.database
        with psycopg.connect(lease.dsn) as after:
            assert after.execute("SELECT to_regclass('ddl_here')").fetchone()[0] is None
    finally:
        pglease_client.release(lease.id)


def test_client_initialized_template_build_abort_and_finalize(pglease_client):
    name, version = f"adhoc_{secrets.token_hex(4)}", f"v-{secrets.token_hex(8)}"
    first = pglease_client.ensure_template(name, version)
    assert first.state == "build" and first.build.fingerprint == version
    pglease_client.abort_build(name, version, first.build.id)

    def migrate(build):
        with psycopg.connect(build.dsn, autocommit=True) as c:
            c.execute("CREATE TABLE built_here (n int); INSERT INTO built_here VALUES (42)")

    built = pglease.build_template(pglease_client, name, version, migrate, timeout=60)
    assert built.built and built.detail["state"] == "ready"
    again = pglease.build_template(pglease_client, name, version, migrate, timeout=60)
    assert not again.built
    lease = pglease_client.acquire(name, wait=60)
    try:
        with psycopg.connect(lease.dsn) as c:
            assert c.execute("SELECT n FROM built_here").fetchall() == [(42,)]
    finally:
        pglease_client.release(lease.id)
