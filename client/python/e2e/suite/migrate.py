"""The suite's migration tool: applies migrations/*.sql in order to $DATABASE_URL, each in its
own transaction, and notes each build in builds.log (the suite checks it ran once)."""

import os
from pathlib import Path

import psycopg

here = Path(__file__).resolve().parent
with psycopg.connect(os.environ["DATABASE_URL"]) as connection:
    for path in sorted((here / "migrations").glob("*.sql")):
        with connection.transaction():
            connection.execute(path.read_text())
with open(here / "builds.log", "a") as log:
    log.write(f"{os.environ['PGDATABASE']} {os.getpid()}\n")
