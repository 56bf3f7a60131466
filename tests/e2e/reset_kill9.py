#!/usr/bin/python3
"""pgleased killed with SIGKILL in the middle of resets in place never hands out a clone half
reset, leaks no database and gives no database to two leases.

Setup: a PostgreSQL 15 server started here (an external backend, which lives on while pgleased
is killed; it keeps 256 MB of WAL, as a backend whose clones are reset in place should) and
pgleased in front of it on a fixed port and data directory, with one template (reset_template.py
plus a table of BULK_ROWS rows, so that a reset takes long enough to be hit; min_idle 2,
max_total 4).

First a few resets without a kill measure how long one takes. Then, --kills times: lease a clone
and wait for the pool to replace it, run a random workload on it that always touches the bulk
table, and start a reset, alternately by releasing it (recycle: the reset runs after the answer)
or by POST /v1/leases/{id}/reset (a sticky lease: the reset runs before the answer); wait a
random 0..N ms (N: 0.8 x the median measured reset of that kind) and SIGKILL pgleased, noting
whether a reset was under way at that moment (the sticky reset not answered yet, the pool
showing a clone `resetting`, or the reset's transaction open on the clone); start pgleased again
and wait until it is ready and its pool settles (a release the kill cut short is asked again, as
its holder would). Then:

- the sticky lease survived and its clone holds either the state before the reset (the reset
  did not commit) or exactly the template's (it did): nothing in between; a reset asked again
  answers 200 and leaves exactly the template's data;
- every clone the pool offers, leased one after the other, holds exactly the template's data
  (a checksum of every table's rows, every sequence, the columns and the triggers), none is the
  sticky lease's, and none is leased twice;
- every pglease_ database on the server is counted by the pool, carries its comment and is
  valid.

Prints the kills, how many landed inside a reset, the clones checked, and `N passed, M failed`;
exits 1 when anything failed. --known-gaps also kills while the pool makes a clone and while a
sticky reset falls back to cloning again (DDL in the workloads, clones given back by reuse, whose
catalog record keeps no reset baseline): pgleased loses the sticky lease and leaks a database
there today.

usage: reset_kill9.py PGLEASED [--kills N] [--seed N] [--known-gaps] [--keep]
"""

import argparse
import collections
import http.client
import itertools
import json
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from check_results import Results, wait_for  # noqa: E402
from pg_server import PgServer, free_port  # noqa: E402
from pgleased_process import Daemon, Response, http_request  # noqa: E402
from reset_template import Admin, Checksum, leaked_databases, migration_sql  # noqa: E402
from reset_workloads import Workload  # noqa: E402

TEMPLATE = "app"
REFERENCE = "reset_kill9_reference"
BULK_ROWS = 40000
MIN_IDLE = 2
MAX_TOTAL = 4
KINDS = ("dml", "truncate", "copy", "sequences", "rollback", "multi", "partition", "mixed")
# The reset's transaction on the clone, open at the moment of the probe.
RESET_OPEN_SQL = ("SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                  "AND usename = 'postgres' AND xact_start IS NOT NULL")


class Broker:
    """pgleased on the external backend, killed and started again on the same directory."""

    def __init__(self, binary, workdir, pg):
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        (workdir / "migrations").mkdir()
        (workdir / "migrations" / "0001_schema.sql").write_text(migration_sql(BULK_ROWS))
        self.config = workdir / "pglease.json"
        self.config.write_text(json.dumps({
            "backends": [{"name": "main", "url": pg.url(), "lease_role": "pglease_worker",
                          "lease_password": "worker-secret", "max_parallel_clones": 2,
                          "max_databases": 40}],
            "templates": {TEMPLATE: {
                "migrations": "migrations",
                "pool": {"min_idle": MIN_IDLE, "max_total": MAX_TOTAL, "recycle": "reset"},
                "lease": {"ttl_seconds": 600, "max_ttl_seconds": 3600}}}}))
        self.starts = 0
        self.daemon = None
        self.start()

    def start(self):
        self.starts += 1
        self.daemon = Daemon(self.binary, f"pgleased-{self.starts}",
                             self.workdir / f"pgleased-{self.starts}.log", self.workdir / "data",
                             config=self.config,
                             extra_args=("--listen", f"127.0.0.1:{self.port}",
                                         "--log-level", "debug"))
        if not self.daemon.wait_listening(time.monotonic() + 60):
            raise RuntimeError(f"pgleased did not start:\n    {self.daemon.log_tail()}")
        if not wait_for(lambda: self.call("GET", "/readyz").status == 200, 90):
            raise RuntimeError(f"pgleased never became ready:\n    {self.daemon.log_tail()}")

    def kill(self):
        self.daemon.process.kill()
        self.daemon.process.wait()
        self.daemon.log.close()

    def call(self, method, path, body=None, timeout=60):
        """The answer; status None when pgleased did not answer (it was killed)."""
        try:
            return http_request(self.port, method, path, body, timeout=timeout)
        except (OSError, http.client.HTTPException) as e:
            return Response(None, {}, str(e).encode())

    def pool(self):
        answer = self.call("GET", f"/v1/templates/{TEMPLATE}", timeout=10)
        return (answer.json() or {}).get("pool", {}) if answer.status == 200 else {}

    def settled(self, leased=0):
        """Nothing under way, `leased` clones leased, at least min_idle idle (clones given back
        beyond that stay idle a while before they are dropped)."""
        pool = self.pool()
        return (pool.get("idle", 0) >= MIN_IDLE and pool.get("leased") == leased and
                not any(pool.get(s) for s in ("creating", "dropping", "kept", "resetting")))

    def acquire(self, wait=30):
        answer = self.call("POST", f"/v1/templates/{TEMPLATE}/leases",
                           {"wait_seconds": wait, "owner": "reset-kill9"})
        if answer.status != 201:
            raise RuntimeError(f"acquire answered {answer.status}: {answer.body[:300]!r}")
        return answer.json()


class Trial:
    """The kills and what was found after each."""

    def __init__(self, args, pg, broker, results):
        self.args = args
        self.rng = random.Random(args.seed)
        self.unique = itertools.count(1)
        self.broker = broker
        self.results = results
        self.admin = Admin(pg.run_dir, pg.port)
        self.admin.create_reference(REFERENCE, self.admin.template_database(TEMPLATE),
                                    "pglease_worker")
        self.checksum = Checksum(self.admin, REFERENCE)
        self.counts = collections.Counter()
        self.problems = []
        self.window = {}

    def problem(self, text):
        self.problems.append(text)
        print(f"FAIL  kill {self.counts['kills']}: {text}", flush=True)

    def dirty(self, lease):
        """Runs a workload on the lease's clone that touches the bulk table."""
        workload = Workload(lease, self.rng, self.unique)
        try:
            workload.run(self.rng.choice(KINDS + (("ddl",) if self.args.known_gaps else ())))
            with workload.cursor() as cur:
                cur.execute("UPDATE bulk SET note = 'changed' WHERE id %% %s = 0",
                            (self.rng.randint(50, 500),))
            workload.session().commit()
        finally:
            workload.close()

    def measure(self):
        """How long a reset takes here, released and sticky: the kills come within that."""
        taken = collections.defaultdict(list)
        for sticky in (False, True) * 3:
            lease = self.broker.acquire()
            wait_for(lambda: self.broker.settled(1), 60)
            self.dirty(lease)
            started = time.monotonic()
            if sticky:
                answer = self.broker.call("POST", f"/v1/leases/{lease['id']}/reset", {})
                taken["sticky"].append(time.monotonic() - started)
                self.results.check("a sticky reset before any kill resets in place",
                                   answer.status == 200 and
                                   (answer.json() or {}).get("reset", {}).get("result") == "reset",
                                   f"{answer.status} {answer.body[:300]!r}")
                self.broker.call("DELETE", f"/v1/leases/{lease['id']}")
            else:
                self.broker.call("DELETE", f"/v1/leases/{lease['id']}")
                wait_for(lambda: not self.broker.pool().get("resetting"), 30, 0.005)
                taken["release"].append(time.monotonic() - started)
            wait_for(self.broker.settled, 60)
        # Most kills within the reset, some past its end.
        self.window = {path: 0.8 * sorted(times)[len(times) // 2] for path, times in taken.items()}
        print("reset_kill9: resets took " + "; ".join(
            f"{path} {', '.join(f'{t * 1000:.0f}' for t in times)} ms"
            for path, times in taken.items()) + "; kills come 0.." +
            ", ".join(f"{t * 1000:.0f} ms ({path})" for path, t in self.window.items()) +
            " after the call", flush=True)

    def one_kill(self, sticky):
        self.counts["kills"] += 1
        lease = self.broker.acquire()
        if not self.args.known_gaps:
            # The clone the pool makes to replace this one must not be under way at the kill.
            wait_for(lambda: self.broker.settled(1), 60)
        self.dirty(lease)
        before = self.checksum.of_database(self.admin, lease["database"]) if sticky else None
        path = f"/v1/leases/{lease['id']}"
        call = threading.Thread(target=self.broker.call, daemon=True,
                                args=("POST", f"{path}/reset", {}) if sticky else
                                ("DELETE", path))
        call.start()
        time.sleep(self.rng.uniform(0, self.window["sticky" if sticky else "release"]))
        # Under way at the kill: a sticky reset not answered yet, a clone the pool shows
        # resetting, or the reset's transaction open on the clone.
        open_reset = self.admin.query(RESET_OPEN_SQL, lease["database"])[0][0] > 0
        resetting = bool(self.broker.pool().get("resetting")) if not sticky else False
        unanswered = sticky and call.is_alive()
        self.broker.kill()
        call.join(timeout=30)
        if open_reset or resetting or unanswered:
            self.counts["inside a reset"] += 1
            self.counts[f"inside a {'sticky' if sticky else 'released'} reset"] += 1
        self.counts["pool showed resetting"] += resetting
        self.counts["reset transaction open"] += open_reset
        self.broker.start()
        if sticky:
            sticky = self.check_sticky(lease, before)
        elif self.broker.call("GET", path).status == 200:
            # Killed before the release was recorded: the lease lives on, and its holder, who
            # got no answer, releases it again.
            self.counts["release not recorded before the kill"] += 1
            self.broker.call("DELETE", path)
        if not wait_for(lambda: self.broker.settled(1 if sticky else 0), 60):
            self.problem(f"the pool did not settle after the restart: {self.broker.pool()}")
        self.sweep(lease["database"] if sticky else None)
        if sticky:
            self.give_back(lease)
            wait_for(self.broker.settled, 60)
        self.check_leaks()

    def give_back(self, lease):
        """Releases a lease whose clone was only read. With the known gaps by reuse, which
        keeps no reset baseline in the catalog: after the next kill that clone is cloned again
        when it is reset, which is where pgleased loses leases and leaks databases today."""
        mode = "reuse" if self.args.known_gaps else "recycle"
        self.broker.call("DELETE", f"/v1/leases/{lease['id']}?mode={mode}")

    def check_sticky(self, lease, before):
        """The sticky lease lives on with its clone either untouched by the reset or reset
        whole; asked again, the reset leaves the template's data. False when it is lost."""
        path = f"/v1/leases/{lease['id']}"
        if self.broker.call("GET", path).status != 200:
            self.problem(f"the sticky lease {lease['id'][:8]} on {lease['database']} is lost "
                         "after the restart")
            return False
        now = self.checksum.of_database(self.admin, lease["database"])
        if now == self.checksum.expected:
            self.counts["sticky: reset had committed"] += 1
        elif now == before:
            self.counts["sticky: reset had not committed"] += 1
        else:
            changed = [k for k in now if now[k] != before.get(k) and now[k] !=
                       self.checksum.expected[k]]
            self.problem(f"{lease['database']} is half reset: {changed} match neither the state "
                         "before the reset nor the template's")
        answer = self.broker.call("POST", f"{path}/reset", {})
        if answer.status != 200:
            self.problem(f"the reset asked again answered {answer.status} {answer.body[:200]!r}")
            return True
        self.counts[f"sticky: reset again ended {answer.json()['reset']['result']}"] += 1
        self.counts["clones checked"] += 1
        found = self.checksum.differences(
            self.checksum.of_database(self.admin, lease["database"]))
        if found:
            self.problem(f"{lease['database']} after the reset asked again: {found[:3]}")
        return True

    def sweep(self, sticky_database):
        """Leases every clone the pool offers and compares each with the reference."""
        leases = [self.broker.acquire() for _ in range(self.broker.pool().get("idle", 0))]
        names = [lease["database"] for lease in leases]
        if len(set(names)) != len(names) or sticky_database in names:
            self.problem(f"one database leased twice: {names}, sticky {sticky_database}")
        for lease in leases:
            self.counts["clones checked"] += 1
            found = self.checksum.differences(
                self.checksum.of_database(self.admin, lease["database"]))
            if found:
                self.problem(f"{lease['database']} was handed out unlike the template: "
                             f"{found[:3]}")
        for lease in leases:
            self.give_back(lease)
        wait_for(lambda: self.broker.settled(1 if sticky_database else 0), 60)

    def check_leaks(self):
        for found in leaked_databases(self.admin, self.broker.pool()):
            self.problem(found)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pgleased", help="the pgleased binary")
    parser.add_argument("--kills", type=int, default=26)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--known-gaps", action="store_true",
                        help="also kill while the pool refills and while a sticky reset falls "
                             "back to a reclone (DDL workloads; clones released by reuse); "
                             "pgleased loses leases and leaks databases there today")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    if args.seed is None:
        args.seed = random.randrange(1 << 30)
    print(f"reset_kill9: seed {args.seed}, {args.kills} kills", flush=True)
    results = Results()
    workdir = Path(tempfile.mkdtemp(prefix="pglease-kill9-"))
    os.chmod(workdir, 0o755)
    started = time.monotonic()
    # pgleased reads the WAL since a clone's last reset; a backend is to keep that much.
    pg = PgServer(workdir / "pg", {"wal_keep_size": "256MB", "log_statement": "ddl"})
    pg.start()
    broker = None
    try:
        broker = Broker(args.pgleased, workdir, pg)
        results.check("the pool fills", wait_for(broker.settled, 120), f"{broker.pool()}")
        trial = Trial(args, pg, broker, results)
        trial.measure()
        for number in range(args.kills):
            trial.one_kill(sticky=number % 2 == 1)
        counts = trial.counts
        print(f"reset_kill9: {counts['kills']} kills, {counts['inside a reset']} inside a reset "
              f"({counts['inside a released reset']} released, {counts['inside a sticky reset']} "
              f"sticky; {counts['pool showed resetting']} while the pool showed a clone resetting, "
              f"{counts['reset transaction open']} with the reset's transaction open), "
              f"{counts['clones checked']} clones checked, {len(trial.problems)} problems; " +
              ", ".join(f"{k} {v}" for k, v in sorted(counts.items())
                        if k.startswith(("sticky", "release"))),
              flush=True)
        results.record(f"{counts['kills']} kills: no clone handed out half reset, no leak, no "
                       "database leased twice", trial.problems[:10])
        results.check("at least a third of the kills landed inside a reset",
                      counts["inside a reset"] * 3 >= counts["kills"],
                      f"{counts['inside a reset']} of {counts['kills']}")
        trial.admin.drop(REFERENCE)
    finally:
        if broker is not None and broker.daemon.process.poll() is None:
            broker.daemon.stop()
        pg.stop("immediate")
    print(f"reset_kill9: {time.monotonic() - started:.0f} s, seed {args.seed}")
    if args.keep:
        print(f"      logs and data are kept in {workdir}")
        return 0 if results.failed == 0 else 1
    return results.finish(workdir)


if __name__ == "__main__":
    sys.exit(main())
