#!/usr/bin/python3
"""Drives the pglease CLI against a real pgleased, as a CI job or a developer at a shell would.

Usage: cli_e2e.py PATH/TO/pgleased PATH/TO/pglease

Starts pgleased on an embedded cluster with a migrations template `app` (min_idle 2,
max_total 4, recycled by reclone) and one recycled by reset, `fresh`, and checks:
- `pglease run`: CMD gets DATABASE_URL and PG* in its environment, its exit status (or
  128+signal) is pglease's, and the lease ends with it whatever way CMD ends: exit, killed,
  or pglease itself sent SIGTERM (forwarded to CMD). A short --ttl is renewed while CMD runs;
  --mode-on-success reuse hands the database back as it is; --keep-on-failure keeps it and
  says where it is.
- `pglease lease` in every --format, then `renew` and `release`; `status` and `templates`.
- `pglease reset ID`: the database is fresh again under the same lease, an idle session stays
  connected; refused with exit 4 while a session is in a transaction.
- `lease --fingerprint`: the version named, or exit 7 when there is none.
- failures: each exits with its documented code and prints exactly one `pglease: ` line on
  stderr (unreachable 3, pool exhausted 4, other server errors 5, bad token 6 against a second
  daemon with PGLEASE_TOKEN, unknown template or lease 7, bad usage 2, CMD not executable 127).
At the end no lease is left.

Prints one line per check and finally `N passed, M failed`; exits 1 when anything failed.
"""

import glob
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg2  # Debian's python3-psycopg2

from check_results import Results, wait_for
from pgleased_process import Daemon, http_request

PSQL = ("/usr/lib/postgresql/15/bin/psql" if os.path.exists("/usr/lib/postgresql/15/bin/psql")
        else (sorted(glob.glob("/usr/lib/postgresql/*/bin/psql")) or ["psql"])[-1])
LEASE_ENV = ["DATABASE_URL", "PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE",
             "PGLEASE_ID"]
SUBCOMMANDS = ["lease", "release", "renew", "reset", "status", "templates", "run"]
MIN_IDLE = 2
MAX_TOTAL = 4
TOKEN = "secret"


def parse_time(text):
    return datetime.fromisoformat(text.strip().replace("Z", "+00:00"))


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def alive(pid):
    """True while `pid` runs (a zombie has ended)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def clean_env(**extra):
    """This process's environment without PGLEASE_* and libpq's PG* variables, plus `extra`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PGLEASE_") and not (k.startswith("PG") or k == "DATABASE_URL")}
    env.update(extra)
    return env


# ---------------------------------------------------------------- the daemon and the CLI


class Cli:
    """Runs the pglease binary with --url pointing at one daemon."""

    def __init__(self, binary, port):
        self.binary = str(binary)
        self.url = f"http://127.0.0.1:{port}"

    def command(self, *args, url=True):
        return [self.binary, *(["--url", self.url] if url else []), *map(str, args)]

    def run(self, *args, url=True, env=None, timeout=120):
        try:
            return subprocess.run(self.command(*args, url=url), capture_output=True, text=True,
                                  env=env or clean_env(), stdin=subprocess.DEVNULL,
                                  timeout=timeout)
        except subprocess.TimeoutExpired as expired:
            return subprocess.CompletedProcess(expired.cmd, None, expired.stdout or "",
                                               f"timed out after {timeout} s")

    def start(self, *args, stdout, stderr):
        return subprocess.Popen(self.command(*args), stdout=stdout, stderr=stderr,
                                stdin=subprocess.DEVNULL, env=clean_env())


def shown(proc):
    return f"exit {proc.returncode}, stdout {proc.stdout!r}, stderr {proc.stderr!r}"


def check_failure(results, label, proc, code):
    """pglease exited `code` and said why in exactly one `pglease: ` line on stderr."""
    lines = proc.stderr.splitlines()
    results.check(f"{label}: exit status {code}", proc.returncode == code, shown(proc))
    results.check(f"{label}: exactly one stderr line starting 'pglease: '",
                  len(lines) == 1 and lines[0].startswith("pglease: "), f"stderr {proc.stderr!r}")
    return lines[0] if lines else ""


class Broker:
    """One pgleased with template app, and what it says about its pool, leases and catalog."""

    def __init__(self, binary, workdir, name, config, env=None):
        self.daemon = Daemon(binary, name, workdir / f"pgleased-{name}.log",
                             workdir / f"data-{name}", config=config, env=env)
        self.token = (env or {}).get("PGLEASE_TOKEN")

    @property
    def port(self):
        return self.daemon.port

    def request(self, method, path, body=None):
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else None
        return http_request(self.port, method, path, body, headers=headers, timeout=60)

    def start(self, results, want_ready=True):
        if not results.check(f"pgleased {self.daemon.name} listens",
                             self.daemon.wait_listening(time.monotonic() + 90),
                             f"log:\n    {self.daemon.log_tail()}"):
            return False
        if not want_ready:
            return True
        return results.check(f"pgleased {self.daemon.name}: template app becomes ready",
                             wait_for(lambda: self.template().get("state") == "ready", 90),
                             f"log:\n    {self.daemon.log_tail()}")

    def template(self):
        response = self.request("GET", "/v1/templates/app")
        return (response.json() or {}) if response.status == 200 else {}

    def pool(self):
        return self.template().get("pool", {})

    def leases(self):
        return self.request("GET", "/v1/leases").json()["leases"]

    def lease(self, lease_id):
        """The lease, or None once the daemon does not know it (404)."""
        response = self.request("GET", f"/v1/leases/{lease_id}")
        return response.json() if response.status == 200 else None

    def acquire(self, template="app", **fields):
        response = self.request("POST", f"/v1/templates/{template}/leases",
                                {"wait_seconds": 30, **fields})
        if response.status != 201:
            raise RuntimeError(f"acquire answered {response.status}: {response.body!r}")
        return response.json()

    def release(self, lease_id, mode="recycle"):
        return self.request("DELETE", f"/v1/leases/{lease_id}?mode={mode}").status

    def settled(self, leased=0):
        """Waits until the pool is warm and still: min_idle idle, `leased` leased, nothing
        being created or dropped."""
        want = {"idle": MIN_IDLE, "leased": leased, "creating": 0, "dropping": 0,
                "resetting": 0}
        return wait_for(lambda: {k: self.pool().get(k) for k in want} == want, 60, 0.3)

    def databases(self):
        """Every database name in the embedded cluster, read as its superuser over the
        private socket."""
        port = (self.daemon.data_dir / "port").read_text().strip()
        run = subprocess.run([PSQL, "-h", str(self.daemon.data_dir / "run"), "-p", port,
                              "-U", "postgres", "-d", "postgres", "-XAtc",
                              "SELECT datname FROM pg_database"],
                             capture_output=True, text=True, timeout=30)
        if run.returncode != 0:
            raise RuntimeError(f"psql on the private socket failed: {run.stderr.strip()}")
        return set(run.stdout.split())

    def released_total(self, mode):
        text = self.request("GET", "/metrics").body.decode()
        match = re.search(r'^pglease_leases_released_total\{(?=[^}]*template="app")'
                          rf'(?=[^}}]*mode="{mode}")[^}}]*\}} (\S+)$', text, re.M)
        return float(match.group(1)) if match else None

    def stop(self):
        return self.daemon.stop()


def psql(dsn, sql, env=None):
    args = [PSQL, "-XAtc", sql] + ([dsn] if dsn else [])
    return subprocess.run(args, capture_output=True, text=True, timeout=60,
                          env=env or clean_env())


def write_config(workdir):
    migrations = workdir / "migrations"
    migrations.mkdir()
    (migrations / "001_items.sql").write_text(
        "CREATE TABLE items (id bigserial PRIMARY KEY, name text NOT NULL);\n")
    config = {"templates": {"app": {
        "migrations": str(migrations),
        # Recycled clones are dropped, so that a recycle shows from outside (resets in place
        # are tested in tests/integration/reset_pgtest.cpp and tests/e2e/reset_exactness.py).
        "pool": {"min_idle": MIN_IDLE, "max_total": MAX_TOTAL, "recycle": "reclone"},
        "lease": {"ttl_seconds": 60, "max_ttl_seconds": 600, "keep_seconds": 30,
                  "max_keep_seconds": 7200, "wait_seconds": 10, "max_wait_seconds": 60}},
        "fresh": {"migrations": str(migrations), "pool": {"min_idle": 1, "max_total": 1}}}}
    path = workdir / "pglease.json"
    path.write_text(json.dumps(config, indent=2))
    return path


# ---------------------------------------------------------------- pglease run


def sh(script):
    return ["sh", "-c", script]


def q(path):
    return shlex.quote(str(path))


def read(path):
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def check_run_environment_and_status(results, cli, broker, work):
    env_file, db_file = work / "env", work / "db"
    script = (f"env -0 > {q(env_file)}; echo \"$PGDATABASE\" > {q(db_file)}; "
              f"{q(PSQL)} -X -v ON_ERROR_STOP=1 \"$DATABASE_URL\" -c 'CREATE TABLE t (x int)' "
              f"> {q(work / 'psql.out')} 2>&1; echo $? > {q(work / 'psql.rc')}; exit 3")
    proc = cli.run("run", "-t", "app", "--", *sh(script))
    results.equal("run: exits with CMD's exit status", proc.returncode, 3, shown(proc))
    env = dict(entry.split("=", 1) for entry in read(env_file).split("\0") if "=" in entry)
    for name in LEASE_ENV:
        results.check(f"run: CMD's environment has {name}", env.get(name), f"env: {sorted(env)}")
    dsn = urllib.parse.urlparse(env.get("DATABASE_URL", ""))
    results.check("run: DATABASE_URL is postgresql://PGUSER:PGPASSWORD@PGHOST:PGPORT/PGDATABASE",
                  dsn.scheme == "postgresql" and dsn.path == f"/{env.get('PGDATABASE')}"
                  and dsn.hostname == env.get("PGHOST") and str(dsn.port) == env.get("PGPORT")
                  and urllib.parse.unquote(dsn.username or "") == env.get("PGUSER")
                  and urllib.parse.unquote(dsn.password or "") == env.get("PGPASSWORD"),
                  f"{ {k: env.get(k) for k in LEASE_ENV if k != 'PGPASSWORD'} }")
    results.check("run: PGLEASE_ID is a lease id", re.fullmatch(r"[0-9a-f]{32}",
                                                                env.get("PGLEASE_ID", "")),
                  f"{env.get('PGLEASE_ID')!r}")
    results.equal("run: CMD could write to its database (psql exit status)",
                  read(work / "psql.rc"), "0", read(work / "psql.out"))
    results.equal("run: no lease left once pglease exits", broker.leases(), [])
    database = read(db_file)
    results.check(f"run: the failed CMD's database {database} is recycled (dropped)",
                  database and wait_for(lambda: database not in broker.databases(), 30),
                  f"still in pg_database; pool {broker.pool()}")


def check_run_killed_by_signal(results, cli, broker, work):
    script = f"echo \"$PGLEASE_ID\" > {q(work / 'id')}; kill -KILL $$"
    proc = cli.run("run", "-t", "app", "--", *sh(script))
    results.equal("run: CMD killed by SIGKILL -> exit status 128+9", proc.returncode, 137,
                  shown(proc))
    lease_id = read(work / "id")
    results.check("run: CMD killed by a signal -> its lease is released",
                  lease_id and broker.lease(lease_id) is None and broker.leases() == [],
                  f"lease {lease_id!r}: {broker.lease(lease_id) if lease_id else None}")


def check_run_forwards_sigterm(results, cli, broker, work):
    pid_file, id_file = work / "pid", work / "id"
    script = f"echo \"$PGLEASE_ID\" > {q(id_file)}; echo $$ > {q(pid_file)}; exec sleep 300"
    with open(work / "out", "w") as out, open(work / "err", "w") as err:
        proc = cli.start("run", "-t", "app", "--", *sh(script), stdout=out, stderr=err)
    child = None
    try:
        started = wait_for(lambda: read(pid_file) and read(id_file), 60)
        if not results.check("run: CMD started", started, f"stderr {read(work / 'err')!r}"):
            return
        child = int(read(pid_file))
        lease_id = read(id_file)
        results.check("run: the lease is live while CMD runs", broker.lease(lease_id))
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            status = proc.wait(30)
        except subprocess.TimeoutExpired:
            status = None
        took = time.monotonic() - sent
        # Under 8 s: the forwarded SIGTERM ended CMD, not the SIGKILL that follows after 10 s.
        results.check("run: pglease sent SIGTERM exits within 8 s",
                      status is not None and took < 8, f"status {status} after {took:.1f} s")
        results.equal("run: ... with CMD's status (sleep killed by SIGTERM: 128+15)", status, 143,
                      f"stderr {read(work / 'err')!r}")
        results.check("run: ... and CMD has ended", wait_for(lambda: not alive(child), 5),
                      f"pid {child} still runs")
        results.check("run: ... and its lease is released",
                      broker.lease(lease_id) is None and broker.leases() == [],
                      f"{broker.leases()}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if child and alive(child):
            os.kill(child, signal.SIGKILL)


def check_run_renews_a_short_ttl(results, cli, broker, work):
    id_file, db_file = work / "id", work / "db"
    script = (f"echo \"$PGDATABASE\" > {q(db_file)}; echo \"$PGLEASE_ID\" > {q(id_file)}; "
              f"sleep 7; {q(PSQL)} -XAtc 'SELECT 1' \"$DATABASE_URL\"")
    with open(work / "out", "w") as out, open(work / "err", "w") as err:
        proc = cli.start("run", "-t", "app", "--ttl", "2s", "--", *sh(script), stdout=out,
                         stderr=err)
    try:
        wait_for(lambda: read(id_file) or proc.poll() is not None, 60)
        lease_id = read(id_file)
        expiries = []
        while proc.poll() is None and lease_id:
            lease = broker.lease(lease_id)
            if lease:
                expiries.append(parse_time(lease["expires_at"]))
            time.sleep(0.5)
        status = proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    results.equal("run --ttl 2s: CMD that needs 7 s still reaches its database (exit status)",
                  status, 0, f"stdout {read(work / 'out')!r} stderr {read(work / 'err')!r}")
    results.equal("run --ttl 2s: CMD's query answered", read(work / "out"), "1")
    span = (expiries[-1] - expiries[0]).total_seconds() if expiries else 0
    results.check("run --ttl 2s: expires_at moves forward while CMD runs (renewed)",
                  len(expiries) >= 4 and expiries == sorted(expiries) and span >= 3,
                  f"{len(expiries)} samples spanning {span:.1f} s")
    results.equal("run --ttl 2s: no lease left", broker.leases(), [])
    database = read(db_file)
    results.check("run: a CMD that succeeded has its database recycled by default",
                  database and wait_for(lambda: database not in broker.databases(), 30),
                  f"{database} still in pg_database")


def check_run_reuse_on_success(results, cli, broker, work):
    # Two leases held elsewhere fill the pool to max_total, so the clone handed back is idle
    # again without being trimmed away as surplus.
    held = [broker.acquire(owner="holder") for _ in range(2)]
    try:
        results.check("reuse: pool full (2 idle, 2 leased)", broker.settled(leased=2),
                      f"pool {broker.pool()}")
        reused_before = broker.released_total("reuse")
        db_file = work / "db"
        script = f"echo \"$PGDATABASE\" > {q(db_file)}; {q(PSQL)} -XAtc 'SELECT 1' >/dev/null"
        proc = cli.run("run", "-t", "app", "--mode-on-success", "reuse", "--", *sh(script))
        results.equal("run --mode-on-success reuse: exit status", proc.returncode, 0, shown(proc))
        database = read(db_file)
        results.check("run --mode-on-success reuse: its lease is released",
                      len(broker.leases()) == 2, f"{broker.leases()}")
        results.equal("run --mode-on-success reuse: released with mode reuse (metric delta)",
                      (broker.released_total("reuse") or 0) - (reused_before or 0), 1)
        time.sleep(2)
        results.check(f"run --mode-on-success reuse: {database} is idle again, not dropped",
                      database and database in broker.databases()
                      and broker.pool().get("idle") == 2,
                      f"pool {broker.pool()}")
    finally:
        for lease in held:
            broker.release(lease["id"])


def check_run_keep_on_failure(results, cli, broker, work):
    db_file = work / "db"
    script = (f"echo \"$PGDATABASE\" > {q(db_file)}; "
              f"{q(PSQL)} -Xq -c 'CREATE TABLE evidence (x int); INSERT INTO evidence VALUES (42)'"
              "; exit 1")
    proc = cli.run("run", "-t", "app", "--keep-on-failure", "1h", "--", *sh(script))
    results.equal("run --keep-on-failure 1h: exit status of CMD", proc.returncode, 1, shown(proc))
    database = read(db_file)
    lines = proc.stderr.splitlines()
    kept = [line for line in lines if line.startswith("pglease: kept database")]
    results.check("run --keep-on-failure: one stderr line 'pglease: kept database NAME for DUR: "
                  "DSN' naming the database", len(lines) == 1 and len(kept) == 1
                  and f" {database} " in kept[0], f"stderr {proc.stderr!r}")
    dsn = kept[0].rsplit(" ", 1)[-1] if kept else ""
    results.check("run --keep-on-failure: the line ends with the database's DSN",
                  dsn.startswith("postgresql://") and dsn.endswith(f"/{database}"), f"{dsn!r}")
    results.equal("run --keep-on-failure: no lease left", broker.leases(), [])
    results.check("run --keep-on-failure: the pool counts it as kept",
                  wait_for(lambda: broker.pool().get("kept") == 1, 10), f"{broker.pool()}")
    time.sleep(2)
    results.check(f"run --keep-on-failure: {database} still exists",
                  database and database in broker.databases())
    if dsn.startswith("postgresql://"):
        look = psql(dsn, "SELECT x FROM evidence")
        results.equal("run --keep-on-failure: what CMD wrote can be inspected over the DSN",
                      look.stdout.strip(), "42", look.stderr.strip())


# ---------------------------------------------------------------- lease, renew, release


def check_lease_formats(results, cli, broker, work):
    proc = cli.run("lease", "-t", "app", "--format", "env")
    lines = proc.stdout.splitlines()
    results.check("lease --format env: exit 0, one line 'export ...'",
                  proc.returncode == 0 and len(lines) == 1 and lines[0].startswith("export "),
                  shown(proc))
    used = subprocess.run(["sh", "-c", 'eval "$1" && printf "%s\\n" "$PGLEASE_ID" && '
                           f'{q(PSQL)} -XAtc "SELECT current_database()"', "sh", proc.stdout],
                          capture_output=True, text=True, env=clean_env(), timeout=60)
    out = used.stdout.split()
    env_id = out[0] if out else ""
    results.check("lease --format env: eval'd by sh, psql reaches the leased database",
                  used.returncode == 0 and len(out) == 2 and broker.lease(env_id)
                  and broker.lease(env_id)["database"] == out[1],
                  f"exit {used.returncode}, {used.stdout!r} {used.stderr!r}")

    proc = cli.run("lease", "-t", "app", "--format", "json", "--owner", "cli-json",
                   "--label", "suite=e2e", "--label", "step=json")
    try:
        lease = json.loads(proc.stdout)
    except ValueError:
        lease = {}
    results.check("lease --format json: exit 0, one line of JSON with id, dsn, database",
                  proc.returncode == 0 and len(proc.stdout.splitlines()) == 1
                  and {"id", "dsn", "database", "expires_at"} <= set(lease), shown(proc))
    json_id = lease.get("id", "")
    if json_id:
        listed = [entry for entry in broker.leases() if entry["owner"] == "cli-json"]
        results.check("lease --owner --label: the daemon lists the lease with them",
                      len(listed) == 1 and listed[0]["labels"] == {"suite": "e2e", "step": "json"}
                      and listed[0]["database"] == lease["database"], f"{broker.leases()}")
        look = psql(lease["dsn"], "SELECT current_database()")
        results.equal("lease --format json: its dsn connects", look.stdout.strip(),
                      lease["database"], look.stderr.strip())
        proc = cli.run("lease", "-t", "app", "--format", "json", "--fingerprint",
                       lease["fingerprint"])
        try:
            pinned = json.loads(proc.stdout)
        except ValueError:
            pinned = {}
        results.check("lease --fingerprint (the version's own): exit 0, a lease of that version",
                      proc.returncode == 0 and pinned.get("fingerprint") == lease["fingerprint"],
                      shown(proc))
        if pinned.get("id"):
            broker.release(pinned["id"])

    proc = cli.run("lease", "-t", "app", "--format", "url", "--ttl", "3", "--owner", "cli-url")
    url = proc.stdout.strip()
    results.check("lease --format url: exit 0, one postgresql:// URL",
                  proc.returncode == 0 and len(proc.stdout.splitlines()) == 1
                  and url.startswith("postgresql://"), shown(proc))
    look = psql(url, "SELECT current_database()")
    results.check("lease --format url: the URL connects to its database",
                  look.returncode == 0
                  and urllib.parse.urlparse(url).path == f"/{look.stdout.strip()}",
                  f"{look.stdout!r} {look.stderr!r}")
    # A URL carries no id to release with; --ttl 3 (plain seconds) ends it on its own.
    results.check("lease --ttl 3: the URL-only lease expires after its 3 s",
                  wait_for(lambda: not [e for e in broker.leases() if e["owner"] == "cli-url"], 30))

    if json_id:
        before = datetime.now(timezone.utc)
        proc = cli.run("renew", json_id, "--ttl", "5m")
        results.equal("renew ID --ttl 5m: exit status", proc.returncode, 0, shown(proc))
        expires = parse_time(broker.lease(json_id)["expires_at"])
        results.check("renew --ttl 5m: the lease now expires in about 300 s",
                      timedelta(seconds=280) <= expires - before <= timedelta(seconds=320),
                      f"expires_at {expires}, renewed at {before}")
        try:
            printed = parse_time(proc.stdout)
        except ValueError:
            printed = None
        results.check("renew: prints the new expires_at",
                      printed and abs((printed - expires).total_seconds()) < 1,
                      f"stdout {proc.stdout!r}, server {expires}")

        proc = cli.run("release", json_id, "--mode", "recycle")
        results.check("release ID --mode recycle: exit 0, prints nothing",
                      proc.returncode == 0 and proc.stdout == "", shown(proc))
        results.check("release: the daemon no longer knows the lease",
                      broker.lease(json_id) is None)
        results.check(f"release --mode recycle: {lease['database']} is dropped",
                      wait_for(lambda: lease["database"] not in broker.databases(), 30))
        check_failure(results, "release of a released lease", cli.run("release", json_id), 7)
    if env_id:
        proc = cli.run("release", env_id)
        results.check("release ID (default mode): exit 0", proc.returncode == 0, shown(proc))
    results.equal("lease/release: no lease left", broker.leases(), [])


def check_status_and_templates(results, cli, broker, work):
    held = broker.acquire(owner="status")
    try:
        results.check("status: pool settled with 1 leased", broker.settled(leased=1),
                      f"{broker.pool()}")
        template = broker.template()
        proc = cli.run("status")
        rows = [line.split() for line in proc.stdout.splitlines() if line.strip()]
        header = rows[0] if rows else []
        app = [dict(zip(header, row)) for row in rows[1:] if row and row[0] == "app"]
        results.check("status: exit 0, a header and one row for app",
                      proc.returncode == 0 and header[:1] == ["TEMPLATE"] and len(app) == 1,
                      shown(proc))
        pool = template["pool"]
        want = {"STATE": template["state"], "IDLE": str(pool["idle"]),
                "LEASED": str(pool["leased"]), "CREATING": str(pool["creating"]),
                "RESETTING": str(pool["resetting"]), "RECYCLE": pool["recycle"],
                "KEPT": str(pool["kept"]), "WAITERS": str(pool["waiters"]),
                "MIN_IDLE": str(pool["min_idle"]), "MAX_TOTAL": str(pool["max_total"])}
        results.equal("status: app's row shows the daemon's counts",
                      {k: app[0].get(k) for k in want} if app else None, want)

        by_env = cli.run("status", url=False, env=clean_env(PGLEASE_URL=cli.url))
        results.check("status with PGLEASE_URL instead of --url: same table",
                      by_env.returncode == 0 and by_env.stdout == proc.stdout, shown(by_env))

        after = subprocess.run([cli.binary, "status", "--url", cli.url], capture_output=True,
                               text=True, env=clean_env(), timeout=60)
        results.check("status --url URL (global option after the subcommand): same table",
                      after.returncode == 0 and after.stdout == proc.stdout, shown(after))

        proc = cli.run("templates")
        lines = [line.split() for line in proc.stdout.splitlines()]
        app_lines = [line for line in lines if line and line[0] == "app"]
        # The fingerprint may be shortened, as long as it still picks out this version.
        results.check("templates: a line for app with its state and fingerprint",
                      proc.returncode == 0 and len(app_lines) == 1 and "ready" in app_lines[0]
                      and any(len(word) >= 8 and template["fingerprint"].startswith(word)
                              for word in app_lines[0][1:]), shown(proc))
    finally:
        broker.release(held["id"])


def check_reset(results, cli, broker, work):
    held = broker.acquire(template="fresh", owner="cli-reset")
    session = psycopg2.connect(held["dsn"])
    session.autocommit = True
    try:
        with session.cursor() as cur:
            cur.execute("INSERT INTO items (name) SELECT 'row ' || g FROM generate_series(1, 5) g")
        proc = cli.run("reset", held["id"])
        results.check("reset ID: exit 0, prints reset", proc.returncode == 0
                      and proc.stdout == "reset\n", shown(proc))
        with session.cursor() as cur:
            cur.execute("SELECT count(*), current_database() FROM items")
            count, database = cur.fetchone()
        results.equal("reset: the idle session is still connected and sees no rows", count, 0)
        results.equal("reset: same database", database, held["database"])
        lease = broker.lease(held["id"])
        results.check("reset: the lease goes on, same expires_at",
                      lease and lease["expires_at"] == held["expires_at"], f"{lease}")

        with session.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute("SELECT pg_backend_pid()")
            pid = cur.fetchone()[0]
        proc = cli.run("reset", held["id"])
        results.check("reset while a session is in a transaction: exit 4, one pglease: line "
                      "naming the session", proc.returncode == 4 and proc.stdout == ""
                      and len(proc.stderr.splitlines()) == 1
                      and proc.stderr.startswith("pglease: ") and str(pid) in proc.stderr,
                      shown(proc))
        with session.cursor() as cur:
            cur.execute("ROLLBACK")
    finally:
        session.close()
        broker.release(held["id"])
    check_failure(results, "reset of a released lease", cli.run("reset", held["id"]), 7)


# ---------------------------------------------------------------- failures


def check_usage_errors(results, cli, broker, work):
    for args in (["--help"], *([sub, "--help"] for sub in SUBCOMMANDS)):
        proc = cli.run(*args, url=False)
        results.equal(f"pglease {' '.join(args)}: exit status", proc.returncode, 0, shown(proc))
    text = cli.run("--help", url=False).stdout
    missing = [w for w in SUBCOMMANDS if w not in text]
    results.check("pglease --help names every subcommand", not missing, f"missing {missing}")
    text = cli.run("run", "--help", url=False).stdout
    missing = [w for w in ("-t", "--ttl", "--wait", "--owner", "--mode-on-success",
                           "--keep-on-failure") if w not in text]
    results.check("pglease run --help names its options", not missing, f"missing {missing}")

    check_failure(results, "lease --ttl 5x (bad duration)",
                  cli.run("lease", "-t", "app", "--ttl", "5x"), 2)
    check_failure(results, "lease without -t", cli.run("lease"), 2)
    marker = work / "ran"
    proc = cli.run("run", "-t", "app", "--ttl", "5x", "--", "touch", marker)
    check_failure(results, "run --ttl 5x", proc, 2)
    results.check("run --ttl 5x: CMD did not run", not marker.exists())
    results.equal("bad usage: no lease taken", broker.leases(), [])


def check_server_errors(results, cli, broker, work):
    proc = Cli(cli.binary, closed_port()).run("status")
    check_failure(results, "status --url with a closed port (unreachable)", proc, 3)

    message = broker.request("POST", "/v1/templates/nosuch/leases", {}).error_message() or ""
    line = check_failure(results, "lease -t nosuch (unknown template)",
                         cli.run("lease", "-t", "nosuch"), 7)
    results.check("lease -t nosuch: the line carries the server's message",
                  message and message in line, f"{line!r} vs server {message!r}")
    line = check_failure(results, "lease --fingerprint of a version that does not exist",
                         cli.run("lease", "-t", "app", "--fingerprint", "nosuch"), 7)
    results.check("lease --fingerprint nosuch: the line names the missing version",
                  "no version nosuch" in line, repr(line))
    marker = work / "ran"
    check_failure(results, "run -t nosuch",
                  cli.run("run", "-t", "nosuch", "--", "touch", marker), 7)
    results.check("run -t nosuch: CMD did not run", not marker.exists())
    check_failure(results, "renew of an unknown lease", cli.run("renew", "0" * 32), 7)

    # Another 400 from the server: a TTL beyond the API's maximum of 7 days.
    answer = broker.request("POST", "/v1/templates/app/leases", {"ttl_seconds": 700000})
    if answer.status == 201:
        broker.release(answer.json()["id"])
    results.equal("the daemon refuses ttl_seconds 700000", answer.status, 400)
    check_failure(results, "lease --ttl 700000 (server says 400)",
                  cli.run("lease", "-t", "app", "--ttl", "700000"), 5)

    proc = cli.run("run", "-t", "app", "--", str(work / "no-such-program"))
    results.equal("run of a CMD that cannot be executed: exit status", proc.returncode, 127,
                  shown(proc))
    results.equal("run of a CMD that cannot be executed: no lease left", broker.leases(), [])

    held = []
    try:
        held = [broker.acquire(owner="exhaust") for _ in range(MAX_TOTAL)]
        refused = broker.request("POST", "/v1/templates/app/leases", {"wait_seconds": 0})
        results.equal("4 leases held: the daemon refuses another", refused.error_code(),
                      "pool_exhausted")
        started = time.monotonic()
        line = check_failure(results, "lease --wait 0s on an exhausted pool",
                             cli.run("lease", "-t", "app", "--wait", "0s"), 4)
        took = time.monotonic() - started
        # The template's own wait is 10 s: a refusal well before shows --wait was sent.
        results.check("lease --wait 0s: refused without waiting the template's 10 s", took < 8,
                      f"took {took:.1f} s")
        results.check("lease on an exhausted pool: the line carries the server's message",
                      refused.error_message() and refused.error_message() in line,
                      f"{line!r} vs server {refused.error_message()!r}")
        proc = cli.run("run", "-t", "app", "--wait", "0s", "--", "touch", marker)
        check_failure(results, "run --wait 0s on an exhausted pool", proc, 4)
        results.check("run on an exhausted pool: CMD did not run", not marker.exists())
    finally:
        for lease in held:
            broker.release(lease["id"])


def check_token(results, cli_binary, binary, workdir, config):
    broker = Broker(binary, workdir, "token", config, env={"PGLEASE_TOKEN": TOKEN})
    try:
        if not broker.start(results, want_ready=False):
            return
        cli = Cli(cli_binary, broker.port)
        check_failure(results, "templates --token wrong (401)",
                      cli.run("--token", "wrong", "templates"), 6)
        check_failure(results, "templates without a token (401)", cli.run("templates"), 6)
        proc = cli.run("--token", TOKEN, "templates")
        results.check("templates --token secret: exit 0, lists app",
                      proc.returncode == 0 and "app" in proc.stdout.split(), shown(proc))
        proc = cli.run("templates", env=clean_env(PGLEASE_TOKEN=TOKEN))
        results.check("templates with PGLEASE_TOKEN in the environment: exit 0",
                      proc.returncode == 0 and "app" in proc.stdout.split(), shown(proc))
    finally:
        results.equal("pgleased token exits on SIGTERM with status", broker.stop(), 0)


# ---------------------------------------------------------------- main


def main(argv):
    if len(argv) != 3:
        print("usage: cli_e2e.py PATH/TO/pgleased PATH/TO/pglease", file=sys.stderr)
        return 2
    binary, cli_binary = Path(argv[1]).resolve(), Path(argv[2]).resolve()
    results = Results()
    workdir = Path(tempfile.mkdtemp(prefix="pglease-cli-"))
    os.chmod(workdir, 0o755)  # the embedded cluster runs as another user
    try:
        config = write_config(workdir)
        broker = Broker(binary, workdir, "main", config)
        try:
            if broker.start(results):
                run_checks(results, Cli(cli_binary, broker.port), broker, workdir)
        finally:
            results.equal("pgleased main exits on SIGTERM with status", broker.stop(), 0)
        check_token(results, cli_binary, binary, workdir, config)
    finally:
        status = results.finish(workdir)
    return status


def run_checks(results, cli, broker, workdir):
    # The kept database of the last one holds a place in the pool until the daemon stops.
    checks = [check_run_environment_and_status, check_run_killed_by_signal,
              check_run_forwards_sigterm, check_run_renews_a_short_ttl,
              check_run_reuse_on_success, check_lease_formats, check_status_and_templates,
              check_reset, check_usage_errors, check_server_errors, check_run_keep_on_failure]
    for check in checks:
        results.check(f"{check.__name__}: pool warm and idle before", broker.settled(),
                      f"{broker.pool()}")
        work = workdir / check.__name__
        work.mkdir()
        try:
            check(results, cli, broker, work)
        except Exception:  # noqa: BLE001 - one broken check must not hide the others
            results.check(f"{check.__name__} ran to its end", False, traceback.format_exc())
    results.equal("at the end GET /v1/leases", broker.leases(), [])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
