"""The recipes of client/python/README.md, exactly as a suite would write them, plus one
helper that states what "fresh from the template" means for this schema."""

import django
import psycopg
import psycopg2
import pytest
import sqlalchemy
from django.conf import settings

# ---------------------------------------------------------------- psycopg 3


@pytest.fixture
def conn(pglease_dsn):
    with psycopg.connect(pglease_dsn, autocommit=True) as connection:
        yield connection


# ---------------------------------------------------------------- psycopg2


@pytest.fixture
def conn2(pglease_dsn):
    connection = psycopg2.connect(pglease_dsn)
    yield connection
    connection.close()


# ---------------------------------------------------------------- SQLAlchemy 2


@pytest.fixture
def engine(pglease_dsn):
    engine = sqlalchemy.create_engine(pglease_dsn.replace("postgresql://", "postgresql+psycopg://", 1))
    yield engine
    engine.dispose()


# ---------------------------------------------------------------- Django

settings.configure(
    DATABASES={"default": {"ENGINE": "django.db.backends.postgresql", "NAME": "unset"}},
    INSTALLED_APPS=["django.contrib.contenttypes"], USE_TZ=True)
django.setup()


@pytest.fixture
def django_db(pglease_db):
    from django.db import connection
    connection.close()
    connection.settings_dict.update(NAME=pglease_db.database, USER=pglease_db.user,
                                    PASSWORD=pglease_db.password, HOST=pglease_db.host,
                                    PORT=pglease_db.port)
    yield connection
    connection.close()


# ---------------------------------------------------------------- the template's state

SEED_ACCOUNTS = ["ada@example.com", "grace@example.com", "linus@example.com"]
TABLES = {"accounts", "projects", "tasks", "audit_log", "scratch"}


def assert_pristine(conn):
    """The database is exactly as migrations/ leaves it: tables, rows, sequences, trigger."""
    tables = {row[0] for row in conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert tables == TABLES
    assert [r[0] for r in conn.execute("SELECT email FROM accounts ORDER BY id")] == SEED_ACCOUNTS
    assert conn.execute("SELECT count(*) FROM scratch").fetchone()[0] == 0
    assert conn.execute("SELECT name, task_count FROM projects ORDER BY id").fetchall() == [
        ("compiler", 2), ("kernel", 1)]
    assert conn.execute("SELECT count(*) FROM audit_log").fetchone()[0] == 3
    assert conn.execute("SELECT last_value, is_called FROM accounts_id_seq").fetchone() == (3, True)
    assert conn.execute("SELECT last_value, is_called FROM invoice_numbers").fetchone() == (1000, False)
    assert conn.execute("SELECT count(*) FROM pg_trigger WHERE tgname = 'tasks_changed'").fetchone()[0] == 1
