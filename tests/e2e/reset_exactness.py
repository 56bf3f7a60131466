#!/usr/bin/python3
"""A clone that pgleased resets is exactly a fresh clone of its template, whatever its lease did.

pgleased runs on its embedded cluster with one template (reset_template.py: foreign keys with
cascades, a trigger, identity, serial and standalone sequences, partitions, TOAST, an unlogged
table, a materialized view) and a pool of one clone, so that a recycled clone comes back to the
next lease. Every round runs a random workload of one kind (reset_workloads.py) on the leased
clone, then makes it fresh by one path:

  recycle  DELETE /v1/leases/{id} (?mode=recycle or no mode), then lease again: the same
           database (name and oid) when it was reset in place, another one when recloned
  sticky   POST /v1/leases/{id}/reset with the round's sessions idle: the same lease and
           database; an idle session opened before the workload stays connected and sees the
           template's data; a session left in a transaction or a statement gets 409
           sessions_busy first (a 409 naming no session of the test's, which is an
           autovacuum worker on the clone, is a known gap: counted and asked again)
  expiry   the lease renewed to one second and left to expire: recloned under a new name
  keep     DELETE ?mode=keep&keep_seconds=1: recloned under a new name once kept over

and compares the clone with a reference cloned from the template database by the test itself:
pg_dump's schema (the same text), every table's rows regardless of order, every sequence's
last_value and is_called, materialized views' rows, and the database's own settings. Any
difference fails the run. The outcome (reset or reclone, and why) comes from the sticky reset's
answer and from the pglease_resets_total counters, which must agree with what the clone shows
(same oid after a reset, a new one after a reclone). Workloads that write rows only (every kind but
maintenance and ddl) must end reset in place on the recycle and sticky paths; expiry and keep
must end recloned ("unattended"). At the end nothing may be left over: every pglease_ database
is counted by the pool.

Prints one line per round that fails, a table of rounds by kind and path (reset, reclone with
reasons), the reset durations, and `N passed, M failed`; exits 1 when anything failed.

usage: reset_exactness.py PGLEASED [--rounds N] [--seed N] [--strategy S] [--known-gaps]
                          [--keep]
"""

import argparse
import collections
import itertools
import json
import os
import random
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import psycopg2  # noqa: E402

from check_results import Results, wait_for  # noqa: E402
from pgleased_process import Daemon, http_request, metric_samples  # noqa: E402
from reset_template import Admin, Checksum, Contents, leaked_databases, migration_sql  # noqa: E402
from reset_workloads import Workload  # noqa: E402

TEMPLATE = "app"
REFERENCE = "reset_exactness_reference"
# Round kinds by weight; "known_gaps" only with --known-gaps.
KIND_WEIGHTS = {"dml": 4, "truncate": 3, "copy": 3, "sequences": 3, "rollback": 3, "multi": 3,
                "toast": 1, "unlogged": 1, "partition": 2, "maintenance": 1, "mixed": 3,
                "ddl": 3}
PATH_WEIGHTS = {"recycle": 48, "sticky": 48, "expiry": 2, "keep": 2}
# Kinds that write rows only: pgleased can prove those exact, so they must end reset in place.
MUST_RESET = {"dml", "truncate", "copy", "sequences", "rollback", "multi", "toast", "unlogged",
              "partition", "mixed"}


def work_directory():
    """On RAM-backed /dev/shm when it has room, as pgleased's own default would be."""
    try:
        stat = os.statvfs("/dev/shm")
        roomy = stat.f_bavail * stat.f_frsize > 2 << 30
    except OSError:
        roomy = False
    workdir = Path(tempfile.mkdtemp(prefix="pglease-reset-", dir="/dev/shm" if roomy else None))
    os.chmod(workdir, 0o755)
    return workdir


def start(binary, workdir, known_gaps, strategy):
    (workdir / "migrations").mkdir()
    (workdir / "migrations" / "0001_schema.sql").write_text(
        migration_sql(known_gaps=known_gaps))
    config = workdir / "pglease.json"
    config.write_text(json.dumps({"templates": {TEMPLATE: {
        "migrations": "migrations",
        "pool": {"min_idle": 1, "max_total": 1, "recycle": "reset", "strategy": strategy},
        "lease": {"ttl_seconds": 3600, "max_ttl_seconds": 3600, "keep_seconds": 1}}}}))
    daemon = Daemon(binary, "pgleased", workdir / "pgleased.log", workdir / "data", config=config,
                    extra_args=("--log-level", "debug"))
    if not daemon.wait_listening(time.monotonic() + 90):
        raise RuntimeError(f"pgleased did not start:\n    {daemon.log_tail()}")
    if not wait_for(lambda: pool_of(daemon.port).get("idle") == 1, 120):
        raise RuntimeError(f"the pool never filled:\n    {daemon.log_tail()}")
    return daemon


def pool_of(port):
    response = http_request(port, "GET", f"/v1/templates/{TEMPLATE}", timeout=10)
    return (response.json() or {}).get("pool", {}) if response.status == 200 else {}


def settled_pool(pool):
    """One idle clone and nothing else: nothing leased, under way or kept."""
    return pool.get("idle") == 1 and not any(
        pool.get(state) for state in ("leased", "creating", "dropping", "kept", "resetting"))


def acquire(port):
    response = http_request(port, "POST", f"/v1/templates/{TEMPLATE}/leases",
                            {"wait_seconds": 60, "owner": "reset-exactness"})
    if response.status != 201:
        raise RuntimeError(f"acquire answered {response.status}: {response.body[:300]!r}")
    return response.json()


class Counters:
    """pglease_resets_total and the in-place duration histogram's sum, from /metrics."""

    def __init__(self, port):
        samples = metric_samples(port)
        self.resets = {}
        self.duration_sum = 0.0
        for (name, labels), value in samples.items():
            labels = dict(labels)
            if labels.get("template") != TEMPLATE:
                continue
            if name == "pglease_resets_total":
                self.resets[(labels["result"], labels["reason"])] = value
            elif name == "pglease_reset_duration_seconds_sum":
                self.duration_sum = value

    def since(self, before):
        """The one outcome counted since `before` as (result, reason), and the in-place
        duration counted meanwhile; raises when not exactly one reset was counted."""
        moved = {key: value - before.resets.get(key, 0) for key, value in self.resets.items()
                 if value != before.resets.get(key, 0)}
        if list(moved.values()) != [1]:
            raise AssertionError(f"pglease_resets_total moved by {moved}, not by one reset")
        return next(iter(moved)), self.duration_sum - before.duration_sum


class Run:
    """The daemon, the reference, the lease held between rounds, and what the rounds found."""

    def __init__(self, args, daemon, results):
        self.args = args
        self.daemon = daemon
        self.port = daemon.port
        self.results = results
        self.rng = random.Random(args.seed)
        self.unique = itertools.count(1)
        self.admin = Admin(*daemon.embedded_socket())
        self.held = acquire(self.port)
        owner = self.admin.query("SELECT pg_get_userbyid(datdba) FROM pg_database "
                                 "WHERE datname = %s", self.held["database"])[0][0]
        self.admin.create_reference(REFERENCE, self.admin.template_database(TEMPLATE), owner)
        self.reference = Contents(self.admin, REFERENCE)
        fresh = Contents(self.admin, self.held["database"])
        # The database row of a clone is pgleased's to make; a fresh one of the pool is the model.
        self.reference.properties = fresh.properties
        self.checksum = Checksum(self.admin, REFERENCE)
        results.record("the first clone leased equals the reference",
                       fresh.differences(self.reference))
        self.outcomes = collections.defaultdict(collections.Counter)  # (kind, path) -> outcome
        self.durations = collections.defaultdict(list)  # what was timed -> seconds
        self.busy = collections.Counter()  # (path, how) -> rounds with a session left busy
        self.spurious_busy = 0  # 409 sessions_busy naming no session of the test's
        self.failures = []
        self.differences = 0

    def fail(self, round_number, kind, path, problem):
        self.failures.append(f"round {round_number} ({kind}, {path}): {problem}")
        print(f"FAIL  round {round_number} ({kind}, {path}, seed {self.args.seed}): {problem}",
              flush=True)

    def round(self, number, kind, path):
        started = time.monotonic()
        lease = self.held
        oid = self.admin.oid_of(lease["database"])
        workload = Workload(lease, self.rng, self.unique)
        watcher = None
        if path == "sticky":
            watcher = psycopg2.connect(lease["dsn"], connect_timeout=10)
            watcher.autocommit = True
        busy = None
        try:
            workload.run(kind)
            if path in ("recycle", "sticky") and self.rng.random() < 0.1:
                # A session still writing has no defined outcome on a sticky reset.
                busy = self.rng.choice(("in transaction", "aborted", "active") +
                                       (("writing",) if path == "recycle" else ()))
                workload.leave_busy(busy)
                self.busy[(path, busy)] += 1
            before = Counters(self.port)
            if path == "sticky":
                answered = self.sticky_reset(number, kind, workload, busy, watcher)
                if answered is None:
                    # Not reset: the next rounds start from a fresh clone all the same.
                    workload.end_busy()
                    self.end_lease("recycle", workload)
                    return
            else:
                answered = None
                self.end_lease(path, workload)
            try:
                (result, reason), in_place_seconds = Counters(self.port).since(before)
            except AssertionError as e:
                self.fail(number, kind, path, str(e))
                return
        finally:
            workload.end_busy()
            workload.close()
            if watcher is not None:
                watcher.close()
        if answered is not None and answered[0] != result:
            self.fail(number, kind, path, f"the answer says {answered}, the metrics "
                      f"{(result, reason)}")
        self.outcomes[(kind, path)][(result, reason)] += 1
        if self.args.verbose:
            print(f"round {number}: {kind} {path}{f' ({busy})' if busy else ''} -> {result} "
                  f"{reason} in {time.monotonic() - started:.2f} s", flush=True)
        if result == "reset":
            self.durations["reset in place (pglease_reset_duration_seconds)"].append(
                in_place_seconds)
        self.check_identity(number, kind, path, lease, oid, result)
        self.check_outcome(number, kind, path, result, reason)
        self.check_contents(number, kind, path)

    def sticky_reset(self, number, kind, workload, busy, watcher):
        """POST reset; (result, reason), or None when the round failed."""
        lease = self.held
        path = f"/v1/leases/{lease['id']}/reset"
        if busy is not None:
            answer = http_request(self.port, "POST", path, {})
            if answer.status != 409 or answer.error_code() != "sessions_busy":
                self.fail(number, kind, "sticky", f"a session {busy}: reset answered "
                          f"{answer.status} {answer.body[:200]!r}, not 409 sessions_busy")
            workload.end_busy()
        pid = watcher.get_backend_pid()
        ours = workload.pids() | {pid}
        with_body = self.rng.random() < 0.5  # the body is optional
        for attempt in range(4):
            started = time.monotonic()
            answer = http_request(self.port, "POST", path, {} if with_body else None)
            elapsed = time.monotonic() - started
            named = {int(n) for n in re.findall(r"pid (\d+)", answer.error_message() or "")}
            if answer.status != 409 or not named or named & ours or attempt == 3:
                break
            # A known gap: pgleased counts backends that are no session of the holder's (an
            # autovacuum worker on the clone) as busy. Asked again, as Retry-After says.
            self.spurious_busy += 1
            if self.args.known_gaps:
                break
            time.sleep(float(answer.header("retry-after") or 1))
        body = answer.json() or {}
        if answer.status != 200:
            # The sessions on the clone as the server shows them now, to tell whose they are.
            sessions = self.admin.query(
                "SELECT pid, backend_type, state, left(query, 80) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()", lease["database"])
            self.fail(number, kind, "sticky", f"reset answered {answer.status} {answer.body!r}; "
                      f"on the clone now: {sessions}")
            return None
        self.durations["sticky POST .../reset, answered"].append(elapsed)
        same = {k: body.get(k) for k in ("id", "database", "dsn", "template", "fingerprint")}
        if same != {k: lease.get(k) for k in same}:
            self.fail(number, kind, "sticky", f"reset answered another lease: {body!r}")
        outcome = (body["reset"]["result"], body["reset"]["reason"])  # the reason as a sentence
        if outcome[0] == "reset":
            try:
                with watcher.cursor() as cur:
                    cur.execute("SELECT pg_backend_pid()")
                    survived = cur.fetchone()[0] == pid
                seen = self.checksum.differences(self.checksum.of(watcher))
            except psycopg2.Error as e:
                survived, seen = False, [str(e)]
            if not survived or seen:
                self.fail(number, kind, "sticky", "the idle session did not survive the reset "
                          f"or does not see the template's data: {seen[:3]}")
        return outcome

    def end_lease(self, path, workload):
        """Ends the held lease by `path` and leases the pool's clone again."""
        lease = self.held
        if path == "recycle" and self.rng.random() < 0.5:
            workload.close_idle()  # else pgleased ends the sessions the workload left connected
        started = time.monotonic()
        if path == "recycle":
            query = self.rng.choice(("?mode=recycle", ""))
            answer = http_request(self.port, "DELETE", f"/v1/leases/{lease['id']}{query}")
        elif path == "keep":
            answer = http_request(self.port, "DELETE",
                                  f"/v1/leases/{lease['id']}?mode=keep&keep_seconds=1")
        else:
            answer = http_request(self.port, "POST", f"/v1/leases/{lease['id']}/renew",
                                  {"ttl_seconds": 1})
        if answer.status not in (200, 204):
            raise RuntimeError(f"{path}: answered {answer.status} {answer.body[:300]!r}")
        self.held = acquire(self.port)
        if path == "recycle":
            self.durations["DELETE ?mode=recycle until leased again"].append(
                time.monotonic() - started)

    def check_identity(self, number, kind, path, before, oid, result):
        """Reset in place keeps the database's name and oid; a reclone makes a new one."""
        database = self.held["database"]
        now = self.admin.oid_of(database)
        if result == "reset" and (database != before["database"] or now != oid):
            self.fail(number, kind, path, f"counted as reset in place, but {before['database']} "
                      f"(oid {oid}) came back as {database} (oid {now})")
        if result == "reclone" and now == oid:
            self.fail(number, kind, path, f"counted as recloned, but {database} kept oid {oid}")

    def check_outcome(self, number, kind, path, result, reason):
        if path in ("expiry", "keep") and (result, reason) != ("reclone", "unattended"):
            self.fail(number, kind, path, f"ended {result} {reason!r}, not reclone unattended")
        if path in ("recycle", "sticky") and kind in MUST_RESET and result != "reset":
            self.fail(number, kind, path, f"rows only, yet recloned: {reason!r}")

    def check_contents(self, number, kind, path):
        found = Contents(self.admin, self.held["database"]).differences(self.reference)
        if found:
            self.differences += 1
            self.fail(number, kind, path, "differs from a fresh clone:\n      " +
                      "\n      ".join(found))

    def finish(self):
        """Releases the held lease, waits for the pool to settle, and looks for leftovers."""
        answer = http_request(self.port, "DELETE", f"/v1/leases/{self.held['id']}")
        self.results.equal("the last lease is released", answer.status, 204)
        settled = wait_for(lambda: settled_pool(pool_of(self.port)), 60)
        self.results.check("the pool settles to one idle clone", settled, f"{pool_of(self.port)}")
        self.admin.drop(REFERENCE)
        self.results.record("every pglease_ database is counted by the pool",
                            leaked_databases(self.admin, pool_of(self.port)))


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def print_table(run):
    paths = list(PATH_WEIGHTS)
    print(f"\n{'kind':<12}" + "".join(f"{p:>22}" for p in paths) + "   reclone reasons")
    totals = collections.defaultdict(collections.Counter)
    for kind in sorted({k for k, _ in run.outcomes}):
        cells, reasons = [], collections.Counter()
        for path in paths:
            counted = run.outcomes.get((kind, path), collections.Counter())
            totals[path].update(counted)
            resets = sum(n for (result, _), n in counted.items() if result == "reset")
            rounds = sum(counted.values())
            cells.append(f"{rounds:>6} = {resets:>4} + {rounds - resets:>4}" if rounds else
                         f"{'-':>22}")
            reasons.update({reason: n for (result, reason), n in counted.items()
                            if result == "reclone"})
        print(f"{kind:<12}" + "".join(f"{c:>22}" for c in cells) + "   " +
              ", ".join(f"{r} {n}" for r, n in reasons.most_common()))
    cells = []
    for path in paths:
        rounds = sum(totals[path].values())
        resets = sum(n for (result, _), n in totals[path].items() if result == "reset")
        cells.append(f"{rounds:>6} = {resets:>4} + {rounds - resets:>4}")
    print(f"{'all':<12}" + "".join(f"{c:>22}" for c in cells))
    print("(cells: rounds = reset in place + recloned)")
    print("rounds with a session left busy: " + ", ".join(
        f"{path} {how} {n}" for (path, how), n in sorted(run.busy.items())))
    print(f"sticky resets answered 409 sessions_busy naming no session of the test's (an "
          f"autovacuum worker), asked again: {run.spurious_busy}\n")
    for what, values in run.durations.items():
        if values:
            print(f"{what}: n={len(values)} p50={percentile(values, 0.5) * 1000:.1f} ms "
                  f"p99={percentile(values, 0.99) * 1000:.1f} ms "
                  f"max={max(values) * 1000:.1f} ms")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pgleased", help="the pgleased binary")
    parser.add_argument("--rounds", type=int, default=250)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--known-gaps", action="store_true",
                        help="also what pgleased does not get right yet (reset_template.py, "
                             "reset_workloads.py's known_gaps kind, and a sticky reset refused "
                             "for an autovacuum worker is not asked again); fails until fixed")
    parser.add_argument("--strategy", choices=("FILE_COPY", "WAL_LOG"), default="FILE_COPY",
                        help="how pgleased clones (CREATE DATABASE … STRATEGY)")
    parser.add_argument("--verbose", action="store_true", help="a line per round")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    if args.seed is None:
        args.seed = random.randrange(1 << 30)
    kinds = dict(KIND_WEIGHTS, **({"known_gaps": 3} if args.known_gaps else {}))
    print(f"reset_exactness: seed {args.seed}, {args.rounds} rounds", flush=True)
    results = Results()
    workdir = work_directory()
    daemon = start(args.pgleased, workdir, args.known_gaps, args.strategy)
    started = time.monotonic()
    try:
        run = Run(args, daemon, results)
        plan = random.Random(args.seed + 1)
        for number in range(1, args.rounds + 1):
            kind = plan.choices(list(kinds), list(kinds.values()))[0]
            path = plan.choices(list(PATH_WEIGHTS), list(PATH_WEIGHTS.values()))[0]
            run.round(number, kind, path)
            if number % 100 == 0:
                print(f"reset_exactness: {number} rounds, {len(run.failures)} failures, "
                      f"{time.monotonic() - started:.0f} s", flush=True)
        run.finish()
        print_table(run)
        results.equal(f"rounds that differ from a fresh clone (of {args.rounds})",
                      run.differences, 0)
        results.record(f"every round as expected (of {args.rounds})", run.failures[:10])
    finally:
        status = daemon.stop()
        results.check("pgleased exits 0 on SIGTERM", status == 0,
                      f"status {status}:\n    {daemon.log_tail()}")
    print(f"reset_exactness: {args.rounds} rounds in {time.monotonic() - started:.0f} s, "
          f"seed {args.seed}")
    if args.keep:
        print(f"      logs and data are kept in {workdir}")
        return 0 if results.failed == 0 else 1
    return results.finish(workdir)


if __name__ == "__main__":
    sys.exit(main())
