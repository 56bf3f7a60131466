#!/usr/bin/env python3
"""pgleased configured by its environment alone, as a CI service container is (it gets variables,
not files): PGLEASE_BACKEND_URL names the backend, PGLEASE_CONFIG_JSON holds the whole config
document, and an external backend needs no lease_password.

- PGLEASE_BACKEND_URL, no file, no password: a client-initialized template is built and leased,
  its DSN connects; the generated password is kept in the data directory (mode 0600), and after
  a restart on the same data directory the lease is still live and its DSN still connects.
- A restart with the data directory lost generates a new password: new leases connect, and
  the old DSN does not (README says so).
- PGLEASE_CONFIG_JSON with a migrations template whose path is relative to the working directory.

usage: env_config_e2e.py PGLEASED
"""

import json
import os
import stat
import sys
import tempfile
import time
from pathlib import Path

import psycopg2

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from check_results import Results, wait_for  # noqa: E402
from pg_server import PgServer  # noqa: E402
from pgleased_process import Daemon, http_request  # noqa: E402


def start(binary, workdir, name, data_dir, env, cwd=None):
    daemon = Daemon(binary, name, workdir / f"{name}.log", data_dir, env=env, cwd=cwd)
    if not daemon.wait_listening(time.monotonic() + 60):
        raise RuntimeError(f"{name} did not listen:\n    {daemon.log_tail()}")
    return daemon


def connects(dsn):
    """None when `dsn` logs in and answers, else the error."""
    try:
        with psycopg2.connect(dsn, connect_timeout=10) as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM marks")
        return None
    except psycopg2.Error as error:
        return str(error).strip() or type(error).__name__


def build_client_template(results, port, name):
    """PUT, migrate, finalize: the template is ready."""
    answer = http_request(port, "PUT", f"/v1/templates/{name}", {"fingerprint": "v1"})
    if not results.equal("PUT a client template -> 201 with a build", answer.status, 201,
                         answer.body[:300]):
        return False
    build = answer.json()["build"]
    with psycopg2.connect(build["dsn"]) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE marks (who text)")
    answer = http_request(port, "POST", f"/v1/templates/{name}/builds/v1/finalize",
                          {"build_id": build["id"]})
    return results.equal("finalize -> 200", answer.status, 200, answer.body[:300])


def acquire(port, name):
    answer = http_request(port, "POST", f"/v1/templates/{name}/leases", {"wait_seconds": 30})
    return answer.json() if answer.status == 201 else None


def check_backend_url(results, binary, workdir, pg):
    env = {"PGLEASE_BACKEND_URL": pg.url()}
    data_dir = workdir / "data-url"
    daemons = []
    try:
        first = start(binary, workdir, "url-first", data_dir, env)
        daemons.append(first)
        results.check("PGLEASE_BACKEND_URL alone: pgleased becomes ready", wait_for(
            lambda: http_request(first.port, "GET", "/readyz").status == 200, 60),
            first.log_tail())
        if not build_client_template(results, first.port, "ci"):
            return
        lease = acquire(first.port, "ci")
        if not results.check("a lease is granted", lease is not None):
            return
        results.equal("its DSN connects (the generated password)", connects(lease["dsn"]), None)
        password_file = data_dir / "lease-role-main.password"
        mode = stat.S_IMODE(password_file.stat().st_mode) if password_file.exists() else None
        results.equal("the generated password is kept in the data directory, mode 0600",
                      mode, 0o600)
        results.check("the file holds the lease's password", password_file.exists() and
                      password_file.read_text().strip() == lease["password"])
        results.equal("SIGTERM stops it with status", first.stop(), 0)

        second = start(binary, workdir, "url-second", data_dir, env)
        daemons.append(second)
        results.check("restarted on the same data directory: ready", wait_for(
            lambda: http_request(second.port, "GET", "/readyz").status == 200, 60),
            second.log_tail())
        kept = http_request(second.port, "GET", f"/v1/leases/{lease['id']}")
        results.equal("the lease is still live", kept.status, 200, kept.body[:200])
        results.equal("its DSN still connects (the same password)", connects(lease["dsn"]), None)
        results.equal("SIGTERM stops it with status", second.stop(), 0)

        lost = start(binary, workdir, "url-lost", workdir / "data-url-lost", env)
        daemons.append(lost)
        results.check("restarted with the data directory lost: ready", wait_for(
            lambda: http_request(lost.port, "GET", "/readyz").status == 200, 60),
            lost.log_tail())
        fresh = acquire(lost.port, "ci")
        results.check("a new lease is granted (the template lives on the backend)",
                      fresh is not None)
        if fresh:
            results.check("with a new password", fresh["password"] != lease["password"])
            results.equal("its DSN connects", connects(fresh["dsn"]), None)
            http_request(lost.port, "DELETE", f"/v1/leases/{fresh['id']}")
        results.check("the old DSN no longer logs in", connects(lease["dsn"]) is not None)
        http_request(lost.port, "DELETE", f"/v1/leases/{lease['id']}")
    finally:
        for daemon in daemons:
            daemon.stop()
        if results.failed:
            for daemon in daemons:
                print(f"--- {daemon.name} log:\n    {daemon.log_tail(30)}")


def check_config_json(results, binary, workdir, pg):
    cwd = workdir / "project"
    (cwd / "db").mkdir(parents=True)
    (cwd / "db" / "0001.sql").write_text("CREATE TABLE marks (who text);\n")
    document = {"backends": [{"name": "shared", "url": pg.url()}],
                "prefix": "inline_",
                "templates": {"app": {"migrations": "db", "pool": {"min_idle": 1}}}}
    env = {"PGLEASE_CONFIG_JSON": json.dumps(document)}
    daemon = start(binary, workdir, "json", workdir / "data-json", env, cwd=cwd)
    try:
        results.check("PGLEASE_CONFIG_JSON: template app (migrations relative to the working "
                      "directory) becomes ready", wait_for(
                          lambda: (http_request(daemon.port, "GET", "/v1/templates/app").json()
                                   or {}).get("state") == "ready", 60), daemon.log_tail())
        lease = acquire(daemon.port, "app")
        results.check("a lease of app is granted", lease is not None)
        if lease:
            results.check("its database has the inline prefix",
                          lease["database"].startswith("inline_app_"), lease["database"])
            results.equal("its DSN connects", connects(lease["dsn"]), None)
            http_request(daemon.port, "DELETE", f"/v1/leases/{lease['id']}")
        results.check("the password is kept for backend shared",
                      (workdir / "data-json" / "lease-role-shared.password").exists())
    finally:
        results.equal("SIGTERM stops it with status", daemon.stop(), 0)
        if results.failed:
            print(f"--- json log:\n    {daemon.log_tail(30)}")


def main():
    binary = Path(sys.argv[1]).resolve()
    results = Results()
    workdir = Path(tempfile.mkdtemp(prefix="pglease-env-"))
    os.chmod(workdir, 0o755)
    pg = PgServer(workdir / "pg")
    pg.start()
    try:
        check_backend_url(results, binary, workdir, pg)
        check_config_json(results, binary, workdir, pg)
    finally:
        pg.stop("immediate")
    return results.finish(workdir)


if __name__ == "__main__":
    sys.exit(main())
