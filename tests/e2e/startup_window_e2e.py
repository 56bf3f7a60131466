#!/usr/bin/env python3
"""Until pgleased has read its backend's catalog, calls about leases answer 503 not_ready, never
404: a worker that believed a 404 would think it lost a database it still holds.

The window is made wide and certain: pgleased is killed with SIGKILL while a lease is live, and
another session holds the backend's advisory lock, so the next pgleased waits as a standby with
its HTTP API up and the catalog unread. The CLI, started in that window, retries until the lock
frees and then renews the lease.

usage: startup_window_e2e.py PGLEASED PGLEASE
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from check_results import Results, wait_for  # noqa: E402
from pg_server import PgServer  # noqa: E402
from pgleased_process import Daemon, http_request  # noqa: E402

LOCK_SQL = "SELECT pg_advisory_lock(hashtextextended('pglease:pglease_', 0))"


def start_daemon(binary, workdir, name, config):
    daemon = Daemon(binary, name, workdir / f"{name}.log", workdir / f"data-{name}", config=config)
    if not daemon.wait_listening(time.monotonic() + 60):
        raise RuntimeError(f"{name} did not listen:\n    {daemon.log_tail()}")
    return daemon


def main():
    pgleased, pglease = sys.argv[1], sys.argv[2]
    results = Results()
    workdir = Path(tempfile.mkdtemp(prefix="pglease-startup-"))
    os.chmod(workdir, 0o755)
    pg = PgServer(workdir / "pg")
    pg.start()
    (workdir / "migrations").mkdir()
    (workdir / "migrations" / "0001.sql").write_text("CREATE TABLE marks (who text);")
    config = workdir / "pglease.json"
    config.write_text(json.dumps({
        "backends": [{"name": "main", "url": pg.url(), "lease_role": "pglease_worker",
                      "lease_password": "worker-secret"}],
        "templates": {"app": {"migrations": "migrations",
                              "pool": {"min_idle": 1, "max_total": 4},
                              "lease": {"ttl_seconds": 120}}},
    }))
    daemons = []
    holder = None
    try:
        first = start_daemon(pgleased, workdir, "first", config)
        daemons.append(first)
        ready = wait_for(lambda: http_request(first.port, "GET", "/readyz").status == 200, 60)
        results.check("the first pgleased is ready", ready, first.log_tail())
        answer = http_request(first.port, "POST", "/v1/templates/app/leases", {})
        results.equal("a lease is granted", answer.status, 201)
        lease = answer.json()
        first.process.kill()
        first.process.wait()

        holder = pg.connect()
        holder.cursor().execute(LOCK_SQL)
        second = start_daemon(pgleased, workdir, "second", config)
        daemons.append(second)
        lease_path = f"/v1/leases/{lease['id']}"
        calls = [
            ("POST renew", "POST", f"{lease_path}/renew", {"ttl_seconds": 60}),
            ("DELETE ?mode=reuse", "DELETE", f"{lease_path}?mode=reuse", None),
            ("GET the lease", "GET", lease_path, None),
            ("GET /v1/leases", "GET", "/v1/leases", None),
            ("GET /v1/templates", "GET", "/v1/templates", None),
            ("POST acquire", "POST", "/v1/templates/app/leases", {"wait_seconds": 0}),
        ]
        for label, method, path, body in calls:
            answer = http_request(second.port, method, path, body)
            results.record(f"before the catalog is read: {label} -> 503 not_ready", [
                None if answer.status == 503 else f"status {answer.status}: {answer.body[:200]}",
                None if answer.error_code() == "not_ready" else f"code {answer.error_code()}",
                None if answer.header("retry-after") else "no Retry-After",
            ])
        message = http_request(second.port, "GET", lease_path).error_message() or ""
        results.check("the message says why", "standby" in message, message)
        results.equal("/healthz answers meanwhile",
                      http_request(second.port, "GET", "/healthz").status, 200)
        results.equal("/readyz says not ready", http_request(second.port, "GET", "/readyz").status,
                      503)

        # The CLI asks again while pgleased is not ready, and gets its answer once it is.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PGLEASE_")}
        env["PGLEASE_URL"] = f"http://127.0.0.1:{second.port}"
        renew = subprocess.Popen([pglease, "renew", lease["id"], "--ttl", "5m"], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(2)
        results.check("pglease renew is still retrying while the lock is held",
                      renew.poll() is None, f"exited {renew.returncode}")
        holder.close()
        holder = None
        out, err = renew.communicate(timeout=60)
        results.record("pglease renew succeeds once the catalog is read", [
            None if renew.returncode == 0 else f"exit {renew.returncode}: {err.strip()}",
            None if out.strip() else "printed no expiry",
        ])
        answer = http_request(second.port, "DELETE", f"{lease_path}?mode=reuse")
        results.equal("the lease granted before the kill is released", answer.status, 204)
        results.equal("and is gone afterwards", http_request(second.port, "GET", lease_path).status,
                      404)
        settled = wait_for(lambda: (http_request(second.port, "GET", "/v1/templates/app")
                                    .json() or {}).get("pool", {}).get("leased") == 0, 30)
        results.check("nothing is left leased", settled)
    finally:
        if holder is not None:
            holder.close()
        for daemon in daemons:
            daemon.stop()
        if results.failed:
            for daemon in daemons:
                print(f"--- {daemon.name} log:\n    {daemon.log_tail(40)}")
        pg.stop("immediate")
    return results.finish(workdir)


if __name__ == "__main__":
    sys.exit(main())
