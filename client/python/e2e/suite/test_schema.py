"""A clone is the whole template: foreign keys, triggers, sequences, constraints and rows, and
the worker may change anything in it."""

import psycopg
import pytest

from conftest import assert_pristine


def test_starts_from_the_template(conn):
    assert_pristine(conn)


def test_foreign_key_refuses_a_missing_account(conn):
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        conn.execute("INSERT INTO projects (account_id, name) VALUES (999, 'orphan')")


def test_foreign_key_cascades_deletes(conn):
    conn.execute("DELETE FROM accounts WHERE email = 'ada@example.com'")
    assert conn.execute("SELECT name FROM projects").fetchall() == [("kernel",)]
    assert conn.execute("SELECT title FROM tasks").fetchall() == [("schedule",)]


def test_trigger_counts_and_audits_inserted_tasks(conn):
    (task_id,) = conn.execute(
        "INSERT INTO tasks (project_id, title) VALUES (2, 'boot') RETURNING id").fetchone()
    assert task_id == 4
    assert conn.execute("SELECT task_count FROM projects WHERE id = 2").fetchone()[0] == 2
    assert conn.execute("SELECT action, row_id FROM audit_log ORDER BY id DESC LIMIT 1").fetchone() == (
        "insert", 4)


def test_trigger_follows_cascaded_deletes(conn):
    conn.execute("DELETE FROM tasks WHERE project_id = 1")
    assert conn.execute("SELECT task_count FROM projects WHERE id = 1").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM audit_log WHERE action = 'delete'").fetchone()[0] == 2


def test_serial_sequence_continues_after_the_seed_rows(conn):
    (account_id,) = conn.execute(
        "INSERT INTO accounts (email) VALUES ('new@example.com') RETURNING id").fetchone()
    assert account_id == 4


def test_standalone_sequence_starts_where_the_template_left_it(conn):
    assert [conn.execute("SELECT nextval('invoice_numbers')").fetchone()[0] for _ in range(3)] == [
        1000, 1001, 1002]


def test_unique_constraint_holds(conn):
    with pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute("INSERT INTO accounts (email) VALUES ('grace@example.com')")


def test_the_lease_role_owns_everything_and_is_no_superuser(conn, pglease_db):
    assert conn.execute("SELECT current_user").fetchone()[0] == pglease_db.user
    assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0] is False
    conn.execute("ALTER TABLE tasks ADD COLUMN due date")
    conn.execute("CREATE INDEX ON tasks (due)")
    conn.execute("TRUNCATE audit_log")
    conn.execute("CREATE TABLE mine (id int)")
