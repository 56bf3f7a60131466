"""The two ways a suite gets a fresh database per test, for `compare` to time: pglease_db, and
the fixture suites write by hand, a CREATE DATABASE … TEMPLATE per test (same server, same
template, same strategy, and the same role and login as pglease's leases)."""

import os
import uuid

import psycopg
import pytest


@pytest.fixture(scope="session")
def admin():
    """A superuser session on the cluster (over its private socket)."""
    with psycopg.connect(host=os.environ["COMPARE_SOCKET_DIR"], port=os.environ["COMPARE_PG_PORT"],
                         user="postgres", dbname="postgres", autocommit=True) as connection:
        yield connection


@pytest.fixture
def fresh_dsn(request, admin):
    if os.environ["COMPARE_WAY"] == "pglease":
        yield request.getfixturevalue("pglease_dsn")
        return
    name = f"handmade_{uuid.uuid4().hex[:16]}"
    admin.execute(f'CREATE DATABASE {name} TEMPLATE "{os.environ["COMPARE_TEMPLATE_DB"]}" '
                  f'OWNER pglease_worker STRATEGY FILE_COPY')
    yield (f"postgresql://pglease_worker:{os.environ['COMPARE_PASSWORD']}@127.0.0.1:"
           f"{os.environ['COMPARE_PG_PORT']}/{name}")
    admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
