#!/usr/bin/env python3
"""/readyz with two backends: `ready` while both serve the template, `degraded` (200, naming the
lost backend) while one is down and the other still serves it, and 503 not_ready once none can;
leases go on being served while degraded, and it is `ready` again when the backend is back.

usage: readiness_e2e.py PGLEASED
"""

import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from check_results import Results, wait_for  # noqa: E402
from pg_server import PgServer  # noqa: E402
from pgleased_process import Daemon, http_request  # noqa: E402


def readiness(port):
    answer = http_request(port, "GET", "/readyz", timeout=10)
    return answer.status, answer.json() or {}


def readiness_once(port, wanted, timeout):
    """The first (status, body) of /readyz for which wanted(status, body) holds within timeout
    seconds, else the last one."""
    deadline = time.monotonic() + timeout
    while True:
        status, body = readiness(port)
        if wanted(status, body) or time.monotonic() > deadline:
            return status, body
        time.sleep(0.2)


def main():
    binary = sys.argv[1]
    results = Results()
    workdir = Path(tempfile.mkdtemp(prefix="pglease-readiness-"))
    os.chmod(workdir, 0o755)
    (workdir / "migrations").mkdir()
    (workdir / "migrations" / "0001.sql").write_text("CREATE TABLE marks (n int);")
    servers = {name: PgServer(workdir / name) for name in ("one", "two")}
    for server in servers.values():
        server.start()
    config = workdir / "pglease.json"
    config.write_text(json.dumps({
        "backends": [{"name": name, "url": server.url(), "lease_role": "pglease_worker",
                      "lease_password": "worker-secret"} for name, server in servers.items()],
        "templates": {"app": {"migrations": "migrations",
                              "pool": {"min_idle": 1, "max_total": 4}}}}))
    daemon = Daemon(binary, "readiness", workdir / "pgleased.log", workdir / "data", config=config)
    try:
        if not daemon.wait_listening(time.monotonic() + 60):
            raise RuntimeError(f"pgleased did not listen:\n    {daemon.log_tail()}")
        results.check("both backends serve the template: 200 ready", wait_for(
            lambda: readiness(daemon.port) == (200, {"status": "ready"}), 90),
            f"{readiness(daemon.port)}")
        servers["two"].stop("immediate")
        status, body = readiness_once(daemon.port, lambda _, b: b.get("status") == "degraded", 30)
        results.check("backend two down: 200 degraded, naming it",
                      status == 200 and body.get("status") == "degraded" and
                      "backend two is unreachable" in body.get("detail", ""), f"{status} {body}")
        lease = http_request(daemon.port, "POST", "/v1/templates/app/leases", {"wait_seconds": 30})
        results.check("while degraded a lease is served (by backend one)",
                      lease.status == 201 and lease.json()["backend"] == "one",
                      f"{lease.status} {lease.body[:200]!r}")
        if lease.status == 201:
            http_request(daemon.port, "DELETE", f"/v1/leases/{lease.json()['id']}")
        servers["one"].stop("immediate")
        status, body = readiness_once(daemon.port, lambda st, _: st == 503, 30)
        results.check("both down: 503 not_ready", status == 503 and
                      body.get("error", {}).get("code") == "not_ready", f"{status} {body}")
        for server in servers.values():
            server.start()
        results.check("both back: 200 ready again", wait_for(
            lambda: readiness(daemon.port) == (200, {"status": "ready"}), 90),
            f"{readiness(daemon.port)}")
    finally:
        daemon.stop()
        for server in servers.values():
            server.stop("immediate")
    return results.finish(workdir)


if __name__ == "__main__":
    sys.exit(main())
