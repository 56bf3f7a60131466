#!/usr/bin/env python3
"""Versions of one client-initialized template side by side, leased by fingerprint, and evicted
when nobody uses them, on pgleased's embedded cluster.

- Two "jobs" on one template name, each with its own migrations (fingerprints job-a and job-b)
  and 4 workers that ensure their version, lease it by fingerprint, check the schema and
  release (recycle or reuse) in a loop for --seconds: every clone has its job's schema, no
  error, and each version was built once (neither rebuilt while both run). Without a
  fingerprint the newest version is leased; an unknown fingerprint answers 404
  unknown_version; a version still building answers 503 template_building.
- Idle eviction (defaults.version_idle_seconds 8): an older version nobody leases is evicted
  with its clones and template database; one with a live lease stays until the lease ends,
  then goes; the newest stays. The template database's comment records the last lease time,
  and an older version last leased before a restart is evicted after it by that time.
- Cap eviction (max_databases): a worker waiting for a clone under the cap makes room by
  evicting the least recently leased version that holds no lease, never one with a live lease.

Prints `N passed, M failed`; exits 1 when anything failed.

usage: template_versions_e2e.py PGLEASED [--seconds N]
"""

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg2

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from check_results import Results, wait_for  # noqa: E402
from pgleased_process import Daemon, http_request, metric_samples  # noqa: E402

TEMPLATE = "app"


def start(binary, workdir, name, data_dir, config):
    path = workdir / f"{name}.json"
    path.write_text(json.dumps(config))
    daemon = Daemon(binary, name, workdir / f"{name}.log", data_dir, config=path)
    if not daemon.wait_listening(time.monotonic() + 60):
        raise RuntimeError(f"{name} did not listen:\n    {daemon.log_tail()}")
    if not wait_for(lambda: http_request(daemon.port, "GET", "/readyz").status == 200, 60):
        raise RuntimeError(f"{name} never became ready:\n    {daemon.log_tail()}")
    return daemon


def ensure(port, fingerprint, table, build=True):
    """PUT the template at `fingerprint`; builds it (a table named `table`) when told to."""
    answer = http_request(port, "PUT", f"/v1/templates/{TEMPLATE}",
                          {"fingerprint": fingerprint, "wait_seconds": 60})
    if answer.status == 200:
        return "ready"
    if answer.status != 201:
        raise RuntimeError(f"PUT {fingerprint} answered {answer.status}: {answer.body[:300]!r}")
    built = answer.json()["build"]
    if not build:
        return built
    with psycopg2.connect(built["dsn"], connect_timeout=10) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {table} (id serial PRIMARY KEY, note text)")
    answer = http_request(port, "POST",
                          f"/v1/templates/{TEMPLATE}/builds/{fingerprint}/finalize",
                          {"build_id": built["id"]})
    if answer.status != 200:
        raise RuntimeError(f"finalize {fingerprint}: {answer.status} {answer.body[:300]!r}")
    return "built"


def acquire(port, fingerprint=None, wait=30):
    body = {"wait_seconds": wait, "owner": "versions-e2e"}
    if fingerprint is not None:
        body["fingerprint"] = fingerprint
    return http_request(port, "POST", f"/v1/templates/{TEMPLATE}/leases", body)


def tables_of(dsn):
    with psycopg2.connect(dsn, connect_timeout=10) as conn, conn.cursor() as cur:
        cur.execute("SELECT relname FROM pg_class WHERE relkind = 'r' AND relnamespace = "
                    "'public'::regnamespace ORDER BY 1")
        return [row[0] for row in cur.fetchall()]


def versions(port):
    answer = http_request(port, "GET", f"/v1/templates/{TEMPLATE}")
    return answer.json().get("versions", []) if answer.status == 200 else None


def sample(port, name, **labels):
    total = 0.0
    for (metric, found), value in metric_samples(port).items():
        if metric == name and set(labels.items()) <= set(found):
            total += value
    return total


def our_databases(daemon):
    socket_dir, pg_port = daemon.embedded_socket()
    with psycopg2.connect(host=str(socket_dir), port=pg_port, user="postgres",
                          dbname="postgres") as conn, conn.cursor() as cur:
        cur.execute("SELECT datname, coalesce(shobj_description(oid, 'pg_database'), '') "
                    "FROM pg_database WHERE datname LIKE 'pglease_%' ORDER BY 1")
        return dict(cur.fetchall())


def internal(daemon, fingerprint):
    """The fingerprint the template reports for a version the client named `fingerprint`."""
    answer = acquire(daemon.port, fingerprint)
    lease = answer.json()
    http_request(daemon.port, "DELETE", f"/v1/leases/{lease['id']}")
    return lease["fingerprint"]


def check_race(results, binary, workdir, seconds):
    config = {"defaults": {"pool": {"min_idle": 2, "max_total": 8}}}
    daemon = start(binary, workdir, "race", workdir / "data-race", config)
    try:
        jobs = {"job-a": "job_a", "job-b": "job_b"}
        problems = []
        counts = {name: 0 for name in jobs}
        lock = threading.Lock()
        stop_at = time.monotonic() + seconds

        def worker(job, index):
            table = jobs[job]
            n = 0
            while time.monotonic() < stop_at:
                try:
                    ensure(daemon.port, job, table)
                    answer = acquire(daemon.port, job)
                    if answer.status != 201:
                        raise RuntimeError(f"acquire answered {answer.status} "
                                           f"{answer.body[:200]!r}")
                    lease = answer.json()
                    found = tables_of(lease["dsn"])
                    if found != [table]:
                        raise RuntimeError(f"{lease['database']} has tables {found}")
                    mode = "reuse" if n % 2 else "recycle"
                    answer = http_request(daemon.port, "DELETE",
                                          f"/v1/leases/{lease['id']}?mode={mode}")
                    if answer.status != 204:
                        raise RuntimeError(f"release answered {answer.status}")
                    n += 1
                except Exception as error:  # noqa: BLE001 - every failure is a finding
                    with lock:
                        problems.append(f"{job} worker {index}: {error}")
                    return
            with lock:
                counts[job] += n

        threads = [threading.Thread(target=worker, args=(job, i))
                   for job in jobs for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        print(f"template_versions: {counts} leases in {seconds} s", flush=True)
        results.record(f"two jobs x 4 workers for {seconds} s: every clone has its job's schema, "
                       "no error", problems[:5])
        results.check("both jobs leased", all(counts.values()), f"{counts}")
        results.equal("builds of the template (each version once, none rebuilt)",
                      sample(daemon.port, "pglease_template_builds_total", template=TEMPLATE,
                             result="success"), 2.0)
        results.equal("pglease_template_versions", sample(
            daemon.port, "pglease_template_versions", template=TEMPLATE), 2.0)
        newest = acquire(daemon.port).json()
        results.equal("without a fingerprint the newest version is leased",
                      tables_of(newest["dsn"]), ["job_b"])
        http_request(daemon.port, "DELETE", f"/v1/leases/{newest['id']}")
        by_internal = acquire(daemon.port, newest["fingerprint"])
        results.check("the fingerprint the lease reports leases that version too",
                      by_internal.status == 201 and
                      by_internal.json()["fingerprint"] == newest["fingerprint"],
                      f"{by_internal.status} {by_internal.body[:200]!r}")
        if by_internal.status == 201:
            http_request(daemon.port, "DELETE", f"/v1/leases/{by_internal.json()['id']}")
        unknown = acquire(daemon.port, "job-z")
        results.check("an unknown fingerprint -> 404 unknown_version",
                      unknown.status == 404 and unknown.error_code() == "unknown_version",
                      f"{unknown.status} {unknown.body[:200]!r}")
        bad = acquire(daemon.port, "not a fingerprint!")
        results.check("a malformed fingerprint -> 400 invalid_argument",
                      bad.status == 400 and bad.error_code() == "invalid_argument",
                      f"{bad.status} {bad.body[:200]!r}")
        build = ensure(daemon.port, "job-c", "job_c", build=False)
        building = acquire(daemon.port, "job-c")
        results.check("a version still building -> 503 template_building with Retry-After",
                      building.status == 503 and building.error_code() == "template_building"
                      and building.header("retry-after") is not None,
                      f"{building.status} {building.body[:200]!r}")
        http_request(daemon.port, "POST", f"/v1/templates/{TEMPLATE}/builds/job-c/abort",
                     {"build_id": build["id"]})
    finally:
        daemon.stop()


def check_idle_eviction(results, binary, workdir):
    config = {"defaults": {"pool": {"min_idle": 1, "max_total": 4}, "version_idle_seconds": 8}}
    data_dir = workdir / "data-idle"
    daemon = start(binary, workdir, "idle", data_dir, config)
    try:
        for fingerprint in ("v1", "v2", "v3"):
            ensure(daemon.port, fingerprint, fingerprint)
        v1, v2, v3 = (internal(daemon, f) for f in ("v1", "v2", "v3"))
        v2_template = next(name for name, comment in our_databases(daemon).items()
                           if '"kind":"template"' in comment and v2 in comment)
        versions_dir = data_dir / "versions"
        results.check("each version's rows are recorded for resets",
                      (versions_dir / v2_template).is_dir(), f"{versions_dir / v2_template}")
        held = acquire(daemon.port, "v1").json()
        leased_at = time.monotonic()
        # v3 is the newest: it stays whether leased or not.
        gone = wait_for(lambda: v2 not in (versions(daemon.port) or [v2]), 20, 0.5)
        results.check("an older version nobody leases is evicted after its idle time",
                      gone and time.monotonic() - leased_at >= 7, f"{versions(daemon.port)}")
        results.check("an older version with a live lease stays past its idle time",
                      v1 in (versions(daemon.port) or []), f"{versions(daemon.port)}")
        names = our_databases(daemon)
        results.check("the evicted version's template database and clones are dropped",
                      wait_for(lambda: not any(v2 in comment for comment in
                                               our_databases(daemon).values()), 20),
                      f"{sorted(names)}")
        results.check("what the evicted version recorded for resets is removed with it",
                      wait_for(lambda: not (versions_dir / v2_template).exists(), 10) and
                      any(versions_dir.iterdir()),
                      f"{sorted(p.name for p in versions_dir.iterdir())}")
        http_request(daemon.port, "DELETE", f"/v1/leases/{held['id']}")
        results.check("once its lease ends, that version goes too", wait_for(
            lambda: v1 not in (versions(daemon.port) or [v1]), 20, 0.5),
            f"{versions(daemon.port)}")
        results.equal("the newest version stays", versions(daemon.port), [v3])
        results.equal("pglease_template_evictions_total{reason=idle}",
                      sample(daemon.port, "pglease_template_evictions_total", template=TEMPLATE,
                             reason="idle"), 2.0)
        # Restart: the catalog keeps when an older version was last leased.
        old = acquire(daemon.port, "v3").json()
        http_request(daemon.port, "DELETE", f"/v1/leases/{old['id']}")
        ensure(daemon.port, "v4", "v4")
        v4 = internal(daemon, "v4")
        comment = next((c for c in our_databases(daemon).values()
                        if '"kind":"template"' in c and v3 in c), "")
        results.check("the template database's comment records the last lease time",
                      "last_leased_ms" in comment, comment[:300])
        daemon.stop()
        time.sleep(3)
        daemon = start(binary, workdir, "idle-again", data_dir, config)
        ready_at = time.monotonic()
        results.check("after a restart both versions are there",
                      set(versions(daemon.port) or []) >= {v3, v4}, f"{versions(daemon.port)}")
        evicted = wait_for(lambda: v3 not in (versions(daemon.port) or [v3]), 20, 0.25)
        # Timed from the restart it would go 8 s after it; by the recorded lease, sooner.
        results.check("the older one is evicted by its recorded last lease, not the restart",
                      evicted and time.monotonic() - ready_at < 7.5,
                      f"{versions(daemon.port)} {time.monotonic() - ready_at:.1f} s after")
        results.equal("the newest stays after the restart", versions(daemon.port), [v4])
    finally:
        daemon.stop()


def check_cap_eviction(results, binary, workdir):
    # Three versions of min_idle 1 hold 6 databases; a 7th is room for one more clone.
    config = {"defaults": {"pool": {"min_idle": 1, "max_total": 6}}}
    (workdir / "cap.json").write_text(json.dumps(config))
    daemon = Daemon(binary, "cap", workdir / "cap.log", workdir / "data-cap",
                    config=workdir / "cap.json", extra_args=("--max-databases", "7"))
    if not daemon.wait_listening(time.monotonic() + 60) or not wait_for(
            lambda: http_request(daemon.port, "GET", "/readyz").status == 200, 60):
        raise RuntimeError(f"cap did not start:\n    {daemon.log_tail()}")
    held = []
    try:
        for fingerprint in ("c1", "c2", "c3"):
            ensure(daemon.port, fingerprint, fingerprint)
            wait_for(lambda: (http_request(daemon.port, "GET", f"/v1/templates/{TEMPLATE}")
                              .json()["pool"]["creating"] == 0), 30)
        c1, c2, c3 = (internal(daemon, f) for f in ("c1", "c2", "c3"))
        # c1 leased last: c2 is the least recently leased.
        lease = acquire(daemon.port, "c1").json()
        http_request(daemon.port, "DELETE", f"/v1/leases/{lease['id']}?mode=reuse")
        for _ in range(2):
            answer = acquire(daemon.port, "c3", wait=20)
            if answer.status == 201:
                held.append(answer.json())
        results.equal("workers of the newest version got clones under the cap", len(held), 2)
        results.check("the least recently leased version made room", c2 not in (
            versions(daemon.port) or [c2]) and c1 in (versions(daemon.port) or []),
            f"{versions(daemon.port)}")
        results.equal("pglease_template_evictions_total{reason=cap}",
                      sample(daemon.port, "pglease_template_evictions_total", template=TEMPLATE,
                             reason="cap"), 1.0)
        held.append(acquire(daemon.port, "c1").json())
        refused = None
        for _ in range(4):
            answer = acquire(daemon.port, "c3", wait=3)
            if answer.status != 201:
                refused = answer
                break
            held.append(answer.json())
        results.check("with every other version leased, the cap refuses rather than evicting "
                      "a version with a live lease",
                      refused is not None and refused.status == 503 and
                      c1 in (versions(daemon.port) or []),
                      f"{refused and refused.status} {versions(daemon.port)}")
    finally:
        for lease in held:
            http_request(daemon.port, "DELETE", f"/v1/leases/{lease['id']}")
        daemon.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pgleased")
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()
    results = Results()
    workdir = Path(tempfile.mkdtemp(prefix="pglease-versions-"))
    os.chmod(workdir, 0o755)
    check_race(results, args.pgleased, workdir, args.seconds)
    check_idle_eviction(results, args.pgleased, workdir)
    check_cap_eviction(results, args.pgleased, workdir)
    return results.finish(workdir)


if __name__ == "__main__":
    sys.exit(main())
