"""Whole pytest runs of their own (pytester), for what one run cannot show about itself: a
failing test's database kept, a worker killed mid-run, an unreachable daemon, --help."""

import json
import os
import re
import socket
import threading
import time
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

import pglease


@pytest.fixture
def subrun(pytester, monkeypatch):
    """A pytest project using the template this suite built, run in a subprocess."""
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)
    pytester.makeini("[pytest]\npglease_template = e2e_app\n")
    return pytester


def test_a_failing_tests_database_is_kept_and_the_report_says_where(subrun, pglease_client):
    subrun.makepyfile(test_keep="""
        import psycopg

        def test_passes(pglease_dsn):
            with psycopg.connect(pglease_dsn, autocommit=True) as c:
                c.execute("INSERT INTO scratch (writer, note) VALUES ('sub', 'passed')")

        def test_fails(pglease_dsn):
            with psycopg.connect(pglease_dsn, autocommit=True) as c:
                c.execute("INSERT INTO scratch (writer, note) VALUES ('sub', 'evidence')")
            assert False, "this failure is expected"
    """)
    result = subrun.runpytest_subprocess("-n", "2", "--pglease-keep-failed", "2m")
    result.assert_outcomes(passed=1, failed=1)
    output = result.stdout.str()
    kept = re.findall(r"^test_keep\.py::(\w+): kept database (\S+) for 2m: (\S+)$", output, re.M)
    assert [name for name, _, _ in kept] == ["test_fails"], output
    _, database, dsn = kept[0]
    assert f"keeping database {database} for 2m" in output  # in the failure's own report
    with psycopg.connect(dsn) as c:
        assert c.execute("SELECT current_database()").fetchone()[0] == database
        assert c.execute("SELECT note FROM scratch").fetchall() == [("evidence",)]
    assert pglease_client.template("e2e_app")["pool"]["kept"] >= 1


def test_a_killed_workers_lease_expires_at_its_ttl(subrun, pglease_client, tmp_path):
    record = tmp_path / "killed.json"
    subrun.makepyfile(test_killed=f"""
        import json, os, signal, time

        def test_dies(pglease_lease, pglease_client):
            first = pglease_client.lease(pglease_lease.id)
            time.sleep(4.5)  # longer than the 3 s TTL: only the background renewal keeps it
            later = pglease_client.lease(pglease_lease.id)
            with open({str(record) + ".tmp"!r}, "w") as out:
                json.dump({{"id": later.id, "first": first.expires_at.isoformat(),
                           "later": later.expires_at.isoformat()}}, out)
            os.rename({str(record) + ".tmp"!r}, {str(record)!r})
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    # Watch the lease from the moment the worker is about to die, while the sub-run winds down.
    seen: dict = {}

    def watch():
        deadline = time.monotonic() + 60
        while not record.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not record.exists():
            return
        seen.update(json.loads(record.read_text()))
        while time.monotonic() < deadline:
            try:
                pglease_client.lease(seen["id"])
            except pglease.NotFoundError as error:
                seen["gone_code"] = error.code
                seen["gone_at"] = datetime.now(timezone.utc)
                return
            time.sleep(0.1)

    watcher = threading.Thread(target=watch)
    watcher.start()
    result = subrun.runpytest_subprocess("-n", "1", "--max-worker-restart", "0",
                                         "--pglease-ttl", "3s")
    watcher.join()
    assert re.search(r"crashed|node down", result.stdout.str()), result.stdout.str()
    assert record.exists(), result.stdout.str()
    killed_at = datetime.fromtimestamp(record.stat().st_mtime, timezone.utc)
    # Renewed in the background past its first expiry while the worker lived...
    assert datetime.fromisoformat(seen["later"]) > datetime.fromisoformat(seen["first"])
    # ...then, once the worker was killed, left to expire at its TTL.
    assert seen.get("gone_code") == "unknown_lease", "the killed worker's lease never expired"
    assert (seen["gone_at"] - killed_at).total_seconds() <= 3 + 2
    assert seen["gone_at"] >= datetime.fromisoformat(seen["later"]) - timedelta(seconds=1)


def test_a_transaction_left_open_or_a_lost_lease_costs_the_worker_its_database(subrun):
    subrun.makepyfile(test_leaks="""
        import psycopg
        import pytest

        seen = []

        def test_1_leaves_a_transaction_open(pglease_db):
            leaked = psycopg.connect(pglease_db.dsn)  # not autocommit: the INSERT opens a transaction
            leaked.execute("INSERT INTO scratch (writer) VALUES ('leaked')")
            seen.append((pglease_db, leaked))

        def test_2_gets_a_new_lease(pglease_db):
            old, leaked = seen[0]
            assert pglease_db.reset is None and pglease_db.id != old.id
            with psycopg.connect(pglease_db.dsn) as c:
                assert c.execute("SELECT count(*) FROM scratch").fetchone()[0] == 0
            with pytest.raises(psycopg.OperationalError):  # released: its sessions were ended
                leaked.execute("SELECT 1")
            seen.append((pglease_db, None))

        def test_3_loses_its_lease(pglease_db, pglease_client):
            assert pglease_db.reset.result == "reset" and pglease_db.id == seen[1][0].id
            pglease_client.release(pglease_db.id)

        def test_4_gets_another(pglease_db, pglease_client):
            assert pglease_db.reset is None and pglease_db.id != seen[1][0].id
            assert pglease_client.lease(pglease_db.id).database == pglease_db.database
    """)
    result = subrun.runpytest_subprocess()
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines([
        "*PgleaseWarning: pglease: database pglease_e2e_app_* still had a session inside a "
        "transaction or running a query 2 s after its test ended (*pid * (idle in transaction)*); "
        "it was released and this test got a new lease, pglease_e2e_app_*",
        "pglease: 4 tests got a fresh database: 1 reset in place, 0 cloned again, 3 on a new lease"])


def test_an_unreachable_daemon_is_one_clear_error(subrun):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    subrun.makepyfile(test_unreachable="def test_needs_a_database(pglease_db):\n    pass\n")
    started = time.monotonic()
    result = subrun.runpytest_subprocess("--pglease-url", f"http://127.0.0.1:{closed}")
    assert time.monotonic() - started < 20
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*pglease: cannot reach pgleased at http://127.0.0.1:{closed}: "
                                 f"connection refused. Start pgleased, or point --pglease-url*"])
    assert "Traceback" not in result.stdout.str()


def test_help_describes_every_setting(subrun):
    result = subrun.runpytest_subprocess("--help")
    text = result.stdout.str()
    for option in ("--pglease-url=URL", "--pglease-template=NAME", "--pglease-migrations=CMD",
                   "--pglease-migrations-files=PATH", "--pglease-keep-failed=DURATION",
                   "--pglease-ttl=DURATION", "pglease_url", "pglease_template", "PGLEASE_TOKEN"):
        assert option in text, option


BRANCH_MIGRATION = """
import os
import psycopg

with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
    conn.execute("CREATE TABLE {table} (n int)")
"""


def test_two_branches_of_one_template_each_get_their_own_schema(subrun, pglease_client):
    """Jobs of two branches share one pgleased and one template name with different
    migrations: each run leases the version it built, even once the other built a newer one,
    and neither rebuilds the other's."""
    name = f"e2e_branch_{os.getpid()}"
    subrun.makepyfile(test_branch="""
        import psycopg

        def test_schema(pglease_dsn, pytestconfig):
            with psycopg.connect(pglease_dsn) as c:
                tables = [r[0] for r in c.execute(
                    "SELECT relname FROM pg_class WHERE relkind = 'r' "
                    "AND relnamespace = 'public'::regnamespace ORDER BY 1")]
            assert tables == [pytestconfig.getini("branch_table")]
    """)

    subrun.makeconftest('def pytest_addoption(parser):\n'
                        '    parser.addini("branch_table", "the table this branch makes")\n')

    def run_branch(table):
        subrun.makeini(f"[pytest]\npglease_template = {name}\n"
                       "pglease_migrations = python migrate_branch.py\n"
                       "pglease_migrations_files = migrate_branch.py\n"
                       f"branch_table = {table}\n")
        subrun.path.joinpath("migrate_branch.py").write_text(BRANCH_MIGRATION.format(table=table))
        result = subrun.runpytest_subprocess("-p", "no:cacheprovider")
        result.assert_outcomes(passed=1)

    run_branch("branch_a")
    run_branch("branch_b")  # the newest version of the template now
    run_branch("branch_a")  # still its own schema: it leases its version by fingerprint
    versions = pglease_client.template(name)["versions"]
    assert len(versions) == 2, f"both versions side by side, each built once: {versions}"
