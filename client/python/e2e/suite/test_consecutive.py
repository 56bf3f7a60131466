"""Consecutive tests of one worker: each starts from the template's exact state, whatever the
one before it did, on the same lease and database name. Rows, truncations and sequences are
undone in place (`reset`: the same database, same oid), unless the daemon cannot prove that
exact (it then says `reclone`); after DDL the database is always cloned again. `xdist_group`
runs them in order on one worker."""

import pytest

from conftest import assert_pristine

pytestmark = pytest.mark.xdist_group("consecutive")


@pytest.fixture(autouse=True)
def earlier(request, conn, pglease_db, worker_id, testrun_uid, tmp_path_factory):
    """What the tests of the group that ran before this one noted; notes this one's database."""
    notes = tmp_path_factory.getbasetemp().parent / f"consecutive-{testrun_uid}"
    seen = [line.split() for line in notes.read_text().splitlines()] if notes.exists() else []
    (oid,) = conn.execute("SELECT oid FROM pg_database WHERE datname = current_database()").fetchone()
    with open(notes, "a") as out:
        out.write(f"{request.node.name} {worker_id} {pglease_db.id} {oid}\n")
    return [dict(zip(("test", "worker", "lease", "oid"), line)) for line in seen]


def made_fresh(pglease_db, earlier, conn):
    """How the database was made fresh since the test before: through the same lease, in place
    (the same database object) or cloned again (a new one under the same name)."""
    assert pglease_db.reset is not None and pglease_db.id == earlier[-1]["lease"]
    (oid,) = conn.execute("SELECT oid FROM pg_database WHERE datname = current_database()").fetchone()
    in_place = earlier[-1]["oid"] == str(oid)
    assert in_place == (pglease_db.reset.result == "reset"), (pglease_db.reset, in_place)
    return pglease_db.reset.result


def test_1_writes_rows(conn, worker_id):
    assert_pristine(conn)
    conn.execute("INSERT INTO scratch (writer) SELECT %s FROM generate_series(1, 500)", (worker_id,))
    conn.execute("INSERT INTO accounts (email) VALUES ('new@example.com')")
    conn.execute("UPDATE projects SET name = 'renamed'")


def test_2_truncates_with_cascade(conn, pglease_db, earlier):
    made_fresh(pglease_db, earlier, conn)
    assert_pristine(conn)
    conn.execute("TRUNCATE accounts CASCADE")
    assert conn.execute("SELECT count(*) FROM tasks").fetchone()[0] == 0


def test_3_moves_sequences(conn, pglease_db, earlier):
    made_fresh(pglease_db, earlier, conn)
    assert_pristine(conn)
    conn.execute("SELECT nextval('accounts_id_seq') FROM generate_series(1, 100)")
    conn.execute("SELECT setval('invoice_numbers', 5000)")


def test_4_drops_a_table_and_the_trigger(conn, pglease_db, earlier):
    made_fresh(pglease_db, earlier, conn)
    assert_pristine(conn)
    conn.execute("DROP TABLE tasks")
    conn.execute("DROP FUNCTION tasks_changed()")


def test_5_creates_a_table_and_restarts_a_sequence(conn, pglease_db, earlier):
    assert made_fresh(pglease_db, earlier, conn) == "reclone"  # DDL is never undone in place
    assert_pristine(conn)
    conn.execute("CREATE TABLE extra AS SELECT g AS n FROM generate_series(1, 5000) g")
    conn.execute("ALTER TABLE accounts ADD COLUMN nickname text")
    conn.execute("ALTER SEQUENCE invoice_numbers RESTART WITH 7000")


def test_6_finds_it_all_undone(conn, pglease_db, earlier, worker_id):
    assert made_fresh(pglease_db, earlier, conn) == "reclone"
    assert_pristine(conn)
    assert conn.execute("SELECT to_regclass('extra')").fetchone()[0] is None
    # The five before ran on this same worker, in order, just before this one, on one lease.
    assert [(seen["test"], seen["worker"]) for seen in earlier] == [
        (f"test_{n}_{name}", worker_id) for n, name in enumerate(
            ["writes_rows", "truncates_with_cascade", "moves_sequences",
             "drops_a_table_and_the_trigger", "creates_a_table_and_restarts_a_sequence"], 1)]
    assert {seen["lease"] for seen in earlier} == {pglease_db.id}
