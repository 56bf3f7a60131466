#!/usr/bin/python3
"""The HA pair, for real: two pgleased on one external PostgreSQL 15, the active one killed.

deploy/ha/failover_test.py [PGLEASED] [--leases N] [--rounds N]

PGLEASED defaults to build/release/daemon/pgleased. The test starts its own PostgreSQL 15
(initdb in a temporary directory, a free loopback port, as the unprivileged `postgres` account
when run as root: tests/e2e/pg_server.py), then two pgleased processes on that one backend with
the same prefix and the same config file (the backend's URL and lease password, the demo
template), each with a data directory of its own, as two Kubernetes replicas would have:

- the first takes the backend's advisory lock and serves; the second says it is a standby and
  answers /readyz and /v1 with 503 not_ready;
- leases are taken from the active one and a row written through each;
- the active one is killed with SIGKILL: the standby must serve within 5 s (the failover time is
  measured from the kill to the first lease answered by the survivor), and every lease taken
  before is honoured: it is listed, its DSN still connects and its rows are there, renew and
  release work, and no database of a live lease is handed out again;
- the killed one, restarted, waits as the standby of the survivor. Then the roles swap once more
  (--rounds, default 2: kill the survivor too), so each process has been killed while active.

Prints the failover times and closes with "N passed, N failed". Exits 77 with a line starting
"SKIPPED:" when PostgreSQL's server binaries or psycopg2 are missing.
"""

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

SOURCE = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(SOURCE / "tests" / "e2e"))

SKIPPED = 77
FAILOVER_LIMIT = 5.0
LEASE_PASSWORD = "ha-lease-secret"

try:
    import psycopg2
    from pg_server import PgServer, server_bin_dir
    from pgleased_process import Daemon, http_request, metric_samples
except ImportError as e:
    print(f"SKIPPED: HA failover test: {e} (python3-psycopg2, tests/e2e helpers)")
    sys.exit(SKIPPED)


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = []

    def check(self, what, ok, detail=""):
        if ok:
            self.passed += 1
            print(f"ok    {what}", flush=True)
        else:
            self.failed.append(what)
            print(f"FAIL  {what}{': ' + detail if detail else ''}", flush=True)
        return ok


def ready(daemon):
    try:
        return http_request(daemon.port, "GET", "/readyz", timeout=5).status == 200
    except OSError:
        return False


def wait_until(predicate, timeout, step=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


def rows(dsn):
    conn = psycopg2.connect(dsn, connect_timeout=5)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT note FROM ha_notes ORDER BY note")
            return [row[0] for row in cur.fetchall()]
    finally:
        conn.close()


class Pair:
    """Two pgleased on one backend; `active` and `standby` swap on each failover."""

    def __init__(self, binary, root, config):
        self.binary = binary
        self.root = root
        self.config = config
        self.started = 0
        self.active = self.start("a")
        self.standby = None

    def start(self, name):
        self.started += 1
        daemon = Daemon(self.binary, name, self.root / f"pgleased-{name}-{self.started}.log",
                        self.root / f"data-{name}", env={"PGLEASE_CONFIG_JSON": self.config})
        if not daemon.wait_listening(time.monotonic() + 60):
            raise RuntimeError(f"pgleased {name} did not listen:\n    {daemon.log_tail()}")
        return daemon

    def stop(self):
        for daemon in (self.active, self.standby):
            if daemon is not None:
                daemon.stop()


def take_leases(pair, count, round_no, checks):
    leases = []
    for i in range(count):
        response = http_request(pair.active.port, "POST", "/v1/templates/demo/leases",
                                {"ttl_seconds": 900, "wait_seconds": 30,
                                 "owner": f"ha-{round_no}-{i}"})
        if response.status != 201:
            checks.check(f"round {round_no}: lease {i} from the active broker (201)", False,
                         f"{response.status} {response.body[:300]!r}")
            continue
        lease = response.json()
        conn = psycopg2.connect(lease["dsn"], connect_timeout=5)
        with conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE ha_notes (note text PRIMARY KEY)")
            cur.execute("INSERT INTO ha_notes VALUES (%s)", (f"round {round_no} lease {i}",))
        conn.close()
        leases.append(lease)
    checks.check(f"round {round_no}: {count} leases from the active broker, a row written "
                 "through each", len(leases) == count)
    return leases


def failover(pair, leases, round_no, checks):
    """Kills the active broker; returns the seconds until the standby answered a lease call."""
    survivor = pair.standby
    probe = leases[0]["id"]
    killed_at = time.monotonic()
    pair.active.process.send_signal(signal.SIGKILL)
    pair.active.process.wait()
    pair.active.log.close()

    def serves():
        try:
            return http_request(survivor.port, "GET", f"/v1/leases/{probe}",
                                timeout=5).status == 200
        except OSError:
            return False

    served = wait_until(serves, 30)
    seconds = time.monotonic() - killed_at
    checks.check(f"round {round_no}: the standby serves within {FAILOVER_LIMIT:.0f} s of the "
                 f"kill -9 ({seconds:.2f} s)", served and seconds < FAILOVER_LIMIT,
                 "never" if not served else f"{seconds:.2f} s\n    {survivor.log_tail()}")
    checks.check(f"round {round_no}: the survivor's /readyz answers 200", ready(survivor))
    pair.active, pair.standby = survivor, None
    return seconds


def honoured(pair, leases, round_no, checks):
    port = pair.active.port
    listed = http_request(port, "GET", "/v1/leases").json() or {}
    listed_dbs = {entry.get("database") for entry in listed.get("leases", [])}
    checks.check(f"round {round_no}: every lease taken before is listed by the survivor",
                 all(lease["database"] in listed_dbs for lease in leases),
                 json.dumps(listed)[:500])
    intact = []
    for i, lease in enumerate(leases):
        response = http_request(port, "GET", f"/v1/leases/{lease['id']}")
        try:
            found = rows(lease["dsn"])
        except psycopg2.Error as e:
            found = [f"cannot connect: {e}"]
        intact.append(response.status == 200 and found == [f"round {round_no} lease {i}"])
    checks.check(f"round {round_no}: each one's DSN still connects and its row is intact",
                 all(intact), repr(intact))
    renewed = [http_request(port, "POST", f"/v1/leases/{lease['id']}/renew",
                            {"ttl_seconds": 1200}) for lease in leases]
    checks.check(f"round {round_no}: renew works for each one (200, later expiry)",
                 all(r.status == 200 and r.json()["expires_at"] > lease["expires_at"]
                     for r, lease in zip(renewed, leases)),
                 repr([r.status for r in renewed]))
    # A new lease while the old ones are out: never the database of one of them.
    response = http_request(port, "POST", "/v1/templates/demo/leases",
                            {"ttl_seconds": 60, "wait_seconds": 30})
    fresh = response.json() if response.status == 201 else {}
    checks.check(f"round {round_no}: a new lease from the survivor gets another database",
                 response.status == 201
                 and fresh["database"] not in {lease["database"] for lease in leases},
                 f"{response.status} {response.body[:300]!r}")
    released = [http_request(port, "DELETE", f"/v1/leases/{lease['id']}").status
                for lease in leases + ([fresh] if fresh else [])]
    checks.check(f"round {round_no}: release works for each one (204)",
                 all(status == 204 for status in released), repr(released))
    # How the survivor recycled them: it did not build the version, so it may lack the rows a
    # reset in place restores (they live in the data directory of the broker that built it).
    time.sleep(2)
    resets = {}
    for (name, labels), value in metric_samples(port).items():
        if name == "pglease_resets_total" and value:
            labels = dict(labels)
            key = labels["result"] + (f" ({labels['reason']})" if labels.get("reason") else "")
            resets[key] = resets.get(key, 0) + int(value)
    print(f"note  round {round_no}: the survivor's recycles so far: "
          + (", ".join(f"{k}: {v}" for k, v in sorted(resets.items())) or "none counted"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pgleased", nargs="?",
                        default=str(SOURCE / "build" / "release" / "daemon" / "pgleased"))
    parser.add_argument("--leases", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--generated-password", action="store_true",
                        help="give the backend no lease_password: each broker generates its own")
    options = parser.parse_args()
    options.pgleased = str(Path(options.pgleased).resolve())
    try:
        server_bin_dir()
    except RuntimeError as e:
        print(f"SKIPPED: HA failover test: {e} (apt-get install postgresql-15)")
        return SKIPPED
    if not os.access(options.pgleased, os.X_OK):
        print(f"HA failover test: {options.pgleased} is not built")
        return 1

    checks = Checks()
    times = []
    root = Path(tempfile.mkdtemp(prefix="pglease-ha-"))
    os.chmod(root, 0o755)
    backend = PgServer(root / "pg")
    pair = None
    try:
        backend.start()
        backend_config = {"name": "main", "url": backend.url()}
        if not options.generated_password:
            backend_config["lease_password"] = LEASE_PASSWORD
        # The whole config in PGLEASE_CONFIG_JSON, no file: as a Kubernetes Secret would give it.
        config = json.dumps({
            "prefix": "pglease_ha_",
            "backends": [backend_config],
            "templates": {"demo": {"migrations": str(SOURCE / "deploy" / "demo" / "migrations"),
                                   "pool": {"min_idle": 2, "max_total": 16}}},
        })
        pair = Pair(options.pgleased, root, config)
        if not checks.check("the first broker becomes ready",
                            wait_until(lambda: ready(pair.active), 120, 0.1),
                            pair.active.log_tail()):
            return finish(checks, times)
        for round_no in range(1, options.rounds + 1):
            pair.standby = pair.start("b" if pair.active.name == "a" else "a")
            waiting = wait_until(lambda: "waiting as standby" in
                                 pair.standby.log_path.read_text(errors="replace"), 30, 0.1)
            checks.check(f"round {round_no}: the second broker waits as standby", waiting,
                         pair.standby.log_tail())
            response = http_request(pair.standby.port, "GET", "/v1/templates")
            checks.check(f"round {round_no}: the standby answers /readyz and /v1 with 503",
                         not ready(pair.standby) and response.status == 503
                         and response.error_code() == "not_ready",
                         f"{response.status} {response.body[:200]!r}")
            leases = take_leases(pair, options.leases, round_no, checks)
            if not leases:
                break
            times.append(failover(pair, leases, round_no, checks))
            honoured(pair, leases, round_no, checks)
        return finish(checks, times)
    finally:
        if pair is not None:
            pair.stop()
        backend.destroy()
        if not checks.failed:
            import shutil
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"ha_failover: logs kept in {root}")


def finish(checks, times):
    print()
    for i, seconds in enumerate(times, 1):
        print(f"ha_failover: failover time, round {i}: {seconds:.2f} s (kill -9 to the first "
              "lease answered by the standby)")
    for what in checks.failed:
        print(f"ha_failover: FAILED: {what}")
    print(f"ha_failover: {checks.passed} passed, {len(checks.failed)} failed")
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
