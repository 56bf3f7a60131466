"""Workers never share a database: while two xdist workers run at once, each has its own, and
each sees only what it wrote. (First in collection order, so xdist hands these four tests to
four different workers.)"""

import json
import time

import pytest


@pytest.mark.parametrize("n", range(4))
def test_workers_at_the_same_time_have_different_databases(n, conn, pglease_db, worker_id,
                                                            testrun_uid, tmp_path_factory):
    token = f"{testrun_uid}-{n}"
    conn.execute("INSERT INTO scratch (writer, note) VALUES (%s, %s)", (worker_id, token))
    meeting = tmp_path_factory.getbasetemp().parent / f"workers-{testrun_uid}"
    meeting.mkdir(exist_ok=True)
    mine = meeting / f"{n}.json"
    mine.with_suffix(".tmp").write_text(json.dumps({"worker": worker_id, "database": pglease_db.database}))
    mine.with_suffix(".tmp").rename(mine)

    # Wait, holding this database, until a test on another worker holds one too.
    deadline = time.monotonic() + 60
    others = []
    while not others and time.monotonic() < deadline:
        others = [seen for seen in (json.loads(p.read_text()) for p in meeting.glob("*.json"))
                  if seen["worker"] != worker_id]
        time.sleep(0.05)
    assert others, "no test on another worker ran at the same time (run with -n 2 or more)"
    assert all(other["database"] != pglease_db.database for other in others)
    assert conn.execute("SELECT writer, note FROM scratch").fetchall() == [(worker_id, token)]
