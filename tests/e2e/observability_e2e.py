#!/usr/bin/python3
"""Checks what pgleased tells operators: its /metrics, its JSON log lines, and the dashboard and
alert rules of deploy/ against a real Prometheus.

Usage: observability_e2e.py values|prometheus PATH/TO/pgleased

values      runs a scripted workload (acquires, releases by mode, expiries, renewals, a refused
            acquire, a waiter, a failed build that is then fixed) and checks that every counter,
            gauge and histogram count equals what was done; `promtool check metrics` accepts the
            scrape taken mid-workload; every log line is a JSON object with its context fields.
prometheus  starts Prometheus (loopback, 1 s scrapes) on a daemon under a lease workload, loads
            deploy/prometheus/alerts.yml into it, and evaluates every PromQL expression of
            deploy/grafana/pglease.json and of the alert rules through the HTTP API: each must
            parse, and each dashboard query must return data.

Prints one line per check and finally `N passed, M failed`; exits 1 when anything failed.
"""

import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

from check_results import Results, wait_for
from pgleased_process import Daemon, http_request, raw_exchange

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "pglease.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
ZERO_ID = "0" * 32


# ---------------------------------------------------------------- reading /metrics

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """{(name, frozenset of (label, value)): value} for every sample line."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        if not match:
            raise ValueError(f"not a sample line: {line!r}")
        labels = frozenset(LABEL.findall(match.group(3) or ""))
        samples[(match.group(1), labels)] = float(match.group(4))
    return samples


class Scrape:
    def __init__(self, port):
        response = http_request(port, "GET", "/metrics", timeout=30)
        self.status = response.status
        self.content_type = response.header("content-type")
        self.text = response.body.decode()
        self.samples = parse_metrics(self.text) if response.status == 200 else {}

    def value(self, name, **labels):
        """The sample's value, or None when there is no such series."""
        return self.samples.get((name, frozenset(labels.items())))


def scrape(port):
    return Scrape(port)


def promtool_check_metrics(results, text, label):
    run = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(),
                         capture_output=True, timeout=60)
    results.check(f"promtool check metrics accepts {label}", run.returncode == 0,
                  (run.stdout + run.stderr).decode(errors="replace").strip())


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- the daemon and its workload


def write_config(workdir, templates):
    config = {"templates": templates}
    path = workdir / "pglease.json"
    path.write_text(json.dumps(config, indent=2))
    return path


def migrations(workdir, name, files):
    directory = workdir / name
    directory.mkdir()
    for file, sql in files.items():
        (directory / file).write_text(sql)
    return directory


APP_SQL = {
    "001_accounts.sql": "CREATE TABLE accounts (id bigserial PRIMARY KEY, email text UNIQUE);\n",
}


def start_daemon(results, binary, workdir, config, extra_args=()):
    daemon = Daemon(binary, "main", workdir / "pgleased.log", workdir / "data", config=config,
                    extra_args=extra_args)
    if not results.check("pgleased logs 'http listening on 127.0.0.1:<port>'",
                         daemon.wait_listening(time.monotonic() + 90),
                         f"log:\n    {daemon.log_tail()}"):
        return daemon, False
    ready = wait_for(lambda: template_state(daemon.port, "app") == "ready", 90, 0.2)
    results.check("template app becomes ready", ready, f"log:\n    {daemon.log_tail()}")
    return daemon, bool(ready)


def template_state(port, name):
    response = http_request(port, "GET", f"/v1/templates/{name}", timeout=10)
    return (response.json() or {}).get("state") if response.status == 200 else None


def acquire(port, template="app", **fields):
    return http_request(port, "POST", f"/v1/templates/{template}/leases", fields, timeout=60)


def release(port, lease_id, mode, **query):
    params = urllib.parse.urlencode({"mode": mode, **query})
    return http_request(port, "DELETE", f"/v1/leases/{lease_id}?{params}", timeout=60)


# ---------------------------------------------------------------- values


def check_values(results, binary, workdir):
    app = migrations(workdir, "app", APP_SQL)
    broken = migrations(workdir, "broken", {"001_broken.sql": "CREATE TABLE broken (;\n"})
    lease = {"ttl_seconds": 60, "max_ttl_seconds": 120, "keep_seconds": 1, "max_keep_seconds": 5,
             "wait_seconds": 10, "max_wait_seconds": 30}
    config = write_config(workdir, {
        "app": {"migrations": str(app), "pool": {"min_idle": 2, "max_total": 4}, "lease": lease},
        "broken": {"migrations": str(broken), "pool": {"min_idle": 1, "max_total": 1}},
    })
    daemon, ok = start_daemon(results, binary, workdir, config, ["--log-format", "json"])
    try:
        if ok:
            run_value_workload(results, daemon, broken)
    finally:
        status = daemon.stop()
        results.check("pgleased exits 0 on SIGTERM", status == 0, f"exit status {status}")
    check_json_log(results, daemon.log_path)


def run_value_workload(results, daemon, broken_dir):
    port = daemon.port
    first = scrape(port)
    results.equal("GET /metrics status", first.status, 200)
    results.check("GET /metrics Content-Type is the text format 0.0.4",
                  first.content_type == "text/plain; version=0.0.4; charset=utf-8",
                  repr(first.content_type))
    for mode in ("recycle", "reuse", "keep"):
        results.equal(f"before any lease: leases_released_total{{mode={mode}}}",
                      first.value("pglease_leases_released_total", mode=mode, template="app"), 0)
    results.equal("before any lease: lease_wait_timeouts_total",
                  first.value("pglease_lease_wait_timeouts_total", template="app"), 0)

    # The build of "broken" fails; once it has, its migration is fixed and it builds.
    failed_once = wait_for(lambda: (scrape(port).value("pglease_template_builds_total",
                                                       result="failure", template="broken")
                                    or 0) >= 1, 60, 0.2)
    results.check("a failed build is counted in template_builds_total{result=failure}",
                  failed_once)
    during = scrape(port)
    results.equal("while failed: template_state{template=broken,state=failed}",
                  during.value("pglease_template_state", state="failed", template="broken"), 1)
    results.check("while failed: no template_info for broken",
                  not any(k[0] == "pglease_template_info" and ("template", "broken") in k[1]
                          for k in during.samples), "a template_info series exists")
    (broken_dir / "001_broken.sql").write_text("CREATE TABLE fixed (id int);\n")
    results.check("broken becomes ready once its migration is fixed",
                  wait_for(lambda: template_state(port, "broken") == "ready", 60, 0.2))

    # Four leases fill app's pool (max_total 4).
    held = []
    for _ in range(4):
        response = acquire(port, owner="values")
        results.equal("acquire status", response.status, 201)
        held.append((response.json() or {}).get("id"))
    full = scrape(port)
    results.equal("4 held: pool_databases{state=leased}",
                  full.value("pglease_pool_databases", state="leased", template="app"), 4)
    results.equal("4 held: pool_databases{state=idle}",
                  full.value("pglease_pool_databases", state="idle", template="app"), 0)
    results.equal("pool_max_clones", full.value("pglease_pool_max_clones", template="app"), 4)
    results.equal("pool_min_idle", full.value("pglease_pool_min_idle", template="app"), 2)
    promtool_check_metrics(results, full.text, "/metrics taken mid-workload")

    # The pool is exhausted: no wait means a refusal.
    refused = acquire(port, wait_seconds=0)
    results.equal("acquire with wait 0 on a full pool", refused.status, 503)

    # A waiter is visible, then served when a lease is recycled.
    waited = {}
    waiter = threading.Thread(
        target=lambda: waited.setdefault("response", acquire(port, wait_seconds=20)))
    waiter.start()
    results.check("a waiting acquire shows as pool_waiters 1",
                  wait_for(lambda: scrape(port).value("pglease_pool_waiters", template="app") == 1,
                           10))
    results.equal("release recycle", release(port, held[0], "recycle").status, 204)
    waiter.join(60)
    served = waited.get("response")
    results.equal("the waiter is served after a recycle", served and served.status, 201)
    held.append((served.json() or {}).get("id") if served else None)
    results.equal("after the waiter: pool_waiters",
                  scrape(port).value("pglease_pool_waiters", template="app"), 0)

    results.equal("release reuse", release(port, held[1], "reuse").status, 204)
    results.equal("release keep", release(port, held[2], "keep").status, 204)
    results.equal("release recycle", release(port, held[3], "recycle").status, 204)
    results.equal("release recycle (the waiter's)", release(port, held[4], "recycle").status, 204)
    results.equal("release of an unknown lease", release(port, ZERO_ID, "recycle").status, 404)

    # Two leases expire.
    for _ in range(2):
        results.equal("acquire with ttl 1", acquire(port, ttl_seconds=1).status, 201)
    results.check("two leases expire",
                  wait_for(lambda: scrape(port).value("pglease_leases_expired_total",
                                                      template="app") == 2, 15))

    # Renewed twice, then reused.
    response = acquire(port)
    results.equal("acquire", response.status, 201)
    lease_id = (response.json() or {}).get("id")
    for _ in range(2):
        renewed = http_request(port, "POST", f"/v1/leases/{lease_id}/renew", {"ttl_seconds": 60})
        results.equal("renew", renewed.status, 200)
    results.equal("release reuse", release(port, lease_id, "reuse").status, 204)

    # One malformed request.
    reply, _ = raw_exchange(port, b"GARBAGE\r\n\r\n")
    results.equal("a malformed request", reply and reply.status, 400)

    # Quiet: the kept clone's time is over, recycled clones are replaced.
    def settled():
        s = scrape(port)
        return (s.value("pglease_pool_databases", state="kept", template="app") == 0 and
                s.value("pglease_pool_databases", state="dropping", template="app") == 0 and
                s.value("pglease_pool_databases", state="resetting", template="app") == 0 and
                s.value("pglease_pool_databases", state="creating", template="app") == 0 and
                s.value("pglease_backend_operations_in_progress", backend="embedded") == 0)
    results.check("the pool settles (kept clone dropped, no clone, reset or drop under way)",
                  wait_for(settled, 30, 0.2))
    end = scrape(port)

    acquired = 4 + 1 + 2 + 1
    expect = [
        ("pglease_leases_acquired_total", {"template": "app"}, acquired),
        ("pglease_leases_released_total", {"template": "app", "mode": "recycle"}, 3),
        ("pglease_leases_released_total", {"template": "app", "mode": "reuse"}, 2),
        ("pglease_leases_released_total", {"template": "app", "mode": "keep"}, 1),
        ("pglease_leases_expired_total", {"template": "app"}, 2),
        ("pglease_lease_renewals_total", {"template": "app"}, 2),
        ("pglease_lease_wait_timeouts_total", {"template": "app"}, 1),
        ("pglease_lease_wait_seconds_count", {"template": "app"}, acquired),
        ("pglease_lease_hold_seconds_count", {"template": "app"}, 3 + 2 + 1 + 2),
        ("pglease_leases_acquired_total", {"template": "broken"}, 0),
        ("pglease_template_builds_total", {"template": "app", "result": "success"}, 1),
        ("pglease_template_builds_total", {"template": "app", "result": "failure"}, 0),
        ("pglease_template_builds_total", {"template": "broken", "result": "success"}, 1),
        ("pglease_clone_failures_total", {"template": "app"}, 0),
        ("pglease_drop_failures_total", {"template": "app"}, 0),
        ("pglease_pool_databases", {"template": "app", "state": "leased"}, 0),
        ("pglease_pool_waiters", {"template": "app"}, 0),
        ("pglease_template_state", {"template": "app", "state": "ready"}, 1),
        ("pglease_template_state", {"template": "broken", "state": "ready"}, 1),
        ("pglease_template_state", {"template": "broken", "state": "failed"}, 0),
        ("pglease_backend_up", {"backend": "embedded"}, 1),
        ("pglease_http_requests_total",
         {"route": "/v1/templates/{name}/leases", "code": "201"}, acquired),
        ("pglease_http_requests_total", {"route": "/v1/templates/{name}/leases", "code": "503"}, 1),
        ("pglease_http_requests_total", {"route": "/v1/leases/{id}", "code": "204"}, 6),
        ("pglease_http_requests_total", {"route": "/v1/leases/{id}", "code": "404"}, 1),
        ("pglease_http_requests_total", {"route": "/v1/leases/{id}/renew", "code": "200"}, 2),
        ("pglease_http_requests_total", {"route": "malformed", "code": "400"}, 1),
    ]
    for name, labels, expected in expect:
        shown = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        results.equal(f"{name}{{{shown}}}", end.value(name, **labels), expected)

    # Every failed build of "broken" was logged once (fewer than the rate limit's 5).
    failures = end.value("pglease_template_builds_total", result="failure", template="broken")
    logged = sum(1 for entry in json_lines(daemon.log_path)
                 if entry.get("template") == "broken" and "failed" in entry.get("message", "")
                 and "build of version" in entry.get("message", ""))
    results.check("template_builds_total{template=broken,result=failure} equals the failed "
                  "builds in the log", failures is not None and failures >= 1 and
                  failures == logged, f"counter {failures}, log lines {logged}")

    # Clones: the pool was filled (and refilled) by clones whose every one was timed.
    clones = end.value("pglease_clone_duration_seconds_count", template="app")
    drops = end.value("pglease_drop_duration_seconds_count", template="app")
    live = sum(end.value("pglease_pool_databases", state=state, template="app")
               for state in ("creating", "idle", "leased", "kept", "dropping", "resetting"))
    results.check("clones created - clones dropped == clones alive",
                  clones is not None and drops is not None and clones - drops == live,
                  f"created {clones}, dropped {drops}, alive {live}")
    # app recycles by reset: the 3 recycled clones were reset in place; the 2 expired and the
    # kept one were cloned again (their holders may still connect with their DSN).
    resets = end.value("pglease_resets_total", template="app", result="reset", reason="")
    unattended = end.value("pglease_resets_total", template="app", result="reclone",
                           reason="unattended")
    recloned = sum(v for (name, labels), v in end.samples.items()
                   if name == "pglease_resets_total" and ("result", "reclone") in labels)
    results.equal("resets_total{result=reset}: 3 recycled", resets, 3)
    results.equal("resets_total{result=reclone,reason=unattended}: 2 expired + 1 kept",
                  unattended, 3)
    results.equal("resets_total{result=reclone}, every reason", recloned, 3)
    results.equal("reset_duration_seconds_count",
                  end.value("pglease_reset_duration_seconds_count", template="app"), 3)
    results.check("dropped: the 3 cloned again, and at most 4 trimmed idle ones",
                  drops is not None and 3 <= drops <= 7, f"dropped {drops}")

    on_server = count_managed_databases(daemon)
    results.equal("backend_databases equals the pglease_ databases in pg_database",
                  end.value("pglease_backend_databases", backend="embedded"), on_server)

    rss = end.value("process_resident_memory_bytes")
    start = end.value("process_start_time_seconds")
    results.check("process_resident_memory_bytes is plausible", rss and 1e6 < rss < 8e9, f"{rss}")
    results.check("process_start_time_seconds is within the last 10 minutes",
                  start and time.time() - 600 < start <= time.time(), f"{start}")
    results.check("process_open_fds > 0", (end.value("process_open_fds") or 0) > 0)
    results.check("process_cpu_seconds_total > 0", (end.value("process_cpu_seconds_total") or 0) > 0)


def count_managed_databases(daemon):
    data = daemon.data_dir
    port = (data / "port").read_text().strip()
    query = "SELECT count(*) FROM pg_database WHERE datname LIKE 'pglease\\_%'"
    psql = sorted(Path("/usr/lib/postgresql").glob("*/bin/psql"))[-1]
    run = subprocess.run([str(psql), "-h", str(data / "run"), "-p", port, "-U", "postgres",
                          "-d", "postgres", "-At", "-c", query],
                         capture_output=True, timeout=30, check=True)
    return float(run.stdout.decode().strip())


def json_lines(path):
    entries = []
    for line in Path(path).read_text(errors="replace").splitlines():
        try:
            entries.append(json.loads(line))
        except ValueError:
            entries.append({"unparsed": line})
    return entries


def check_json_log(results, path):
    entries = json_lines(path)
    bad = [e for e in entries if "unparsed" in e or not {"time", "level", "message"} <= set(e)]
    results.check(f"--log-format json: every one of {len(entries)} log lines is a JSON object "
                  "with time, level and message", entries and not bad, f"e.g. {bad[:2]}")
    results.check("--log-format json: context pairs are fields (template=app)",
                  any(e.get("template") == "app" and "template=app" in e.get("message", "")
                      for e in entries))


# ---------------------------------------------------------------- prometheus


def dashboard_queries():
    """(panel title, refId, expr) of every target of every panel, rows included."""
    doc = json.loads(DASHBOARD.read_text())
    queries = []

    def walk(panels):
        for panel in panels:
            for target in panel.get("targets", []):
                if target.get("expr"):
                    queries.append((panel.get("title", "?"), target.get("refId", "?"),
                                    target["expr"]))
            walk(panel.get("panels", []))

    walk(doc.get("panels", []))
    return doc, queries


def alert_queries():
    doc = yaml.safe_load(ALERTS.read_text())
    return [(rule.get("alert") or rule.get("record"), rule["expr"])
            for group in doc["groups"] for rule in group["rules"]]


def grafana_to_promql(expr):
    return (expr.replace("$__rate_interval", "30s").replace("${template}", ".*")
            .replace("$template", ".*"))


class Prometheus:
    def __init__(self, workdir, target_port):
        self.port = free_port()
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(ALERTS)],
            "scrape_configs": [{"job_name": "pglease",
                                "static_configs": [{"targets": [f"127.0.0.1:{target_port}"]}]}],
        }
        path = workdir / "prometheus.yml"
        path.write_text(yaml.safe_dump(config))
        self.log_path = workdir / "prometheus.log"
        self.log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [PROMETHEUS, f"--config.file={path}", f"--storage.tsdb.path={workdir / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=1h"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)

    def api(self, path, **params):
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            return json.loads(error.read() or b"{}")
        except (OSError, ValueError) as error:
            return {"status": "error", "error": str(error)}

    def query(self, expr):
        return self.api("query", query=expr)

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


class Workload:
    """Workers that lease, use and release in a loop with every mode, let some leases expire,
    and ask a full pool with no wait now and then."""

    def __init__(self, port, workers=3):
        self.port = port
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.work, args=(i,)) for i in range(workers)]
        self.errors = []

    def start(self):
        for thread in self.threads:
            thread.start()

    def work(self, index):
        rng = random.Random(index)
        while not self.stop.is_set():
            try:
                roll = rng.random()
                if roll < 0.05:
                    acquire(self.port, ttl_seconds=1)  # never released: it expires
                    continue
                if roll < 0.10:
                    acquire(self.port, wait_seconds=0)  # may be refused
                    continue
                if roll < 0.13:
                    http_request(self.port, "GET", f"/v1/leases/{ZERO_ID}")  # a 404
                    continue
                response = acquire(self.port, wait_seconds=5, ttl_seconds=30)
                if response.status != 201:
                    continue
                lease_id = response.json()["id"]
                time.sleep(rng.uniform(0.01, 0.2))
                if rng.random() < 0.2:
                    http_request(self.port, "POST", f"/v1/leases/{lease_id}/renew", {})
                mode = rng.choice(["recycle", "recycle", "reuse", "keep"])
                release(self.port, lease_id, mode, **({"keep_seconds": 1} if mode == "keep"
                                                      else {}))
            except Exception as error:  # noqa: BLE001 - reported, not fatal to the workload
                self.errors.append(repr(error))
                time.sleep(0.2)

    def finish(self):
        self.stop.set()
        for thread in self.threads:
            thread.join(60)


def check_prometheus(results, binary, workdir):
    run = subprocess.run([PROMTOOL, "check", "rules", str(ALERTS)], capture_output=True,
                         timeout=60)
    results.check(f"promtool check rules {ALERTS.relative_to(ROOT)}", run.returncode == 0,
                  (run.stdout + run.stderr).decode(errors="replace").strip())
    doc, dashboard = dashboard_queries()
    alerts = alert_queries()
    results.check("the dashboard has panel queries", len(dashboard) >= 15, f"{len(dashboard)}")
    results.check("the dashboard has a $template variable",
                  any(v.get("name") == "template"
                      for v in doc.get("templating", {}).get("list", [])))
    results.check("the alert file has rules", len(alerts) >= 5, f"{len(alerts)}")

    app = migrations(workdir, "app", APP_SQL)
    lease = {"ttl_seconds": 30, "max_ttl_seconds": 60, "keep_seconds": 1, "max_keep_seconds": 5,
             "wait_seconds": 5, "max_wait_seconds": 30}
    config = write_config(workdir, {
        "app": {"migrations": str(app), "pool": {"min_idle": 2, "max_total": 4}, "lease": lease},
    })
    daemon, ok = start_daemon(results, binary, workdir, config)
    prometheus = None
    workload = None
    try:
        if not ok:
            return
        prometheus = Prometheus(workdir, daemon.port)
        workload = Workload(daemon.port)
        workload.start()
        time.sleep(3)
        mid = scrape(daemon.port)
        promtool_check_metrics(results, mid.text, "/metrics under the lease workload")

        def scraped_enough():
            answer = prometheus.query('count_over_time(up{job="pglease"}[5m])')
            found = answer.get("data", {}).get("result", [])
            return found and float(found[0]["value"][1]) >= 20

        results.check("Prometheus scraped pgleased at least 20 times",
                      wait_for(scraped_enough, 90, 0.5),
                      f"log: {prometheus.log_path.read_text(errors='replace')[-2000:]}")
        up = prometheus.query('up{job="pglease"}').get("data", {}).get("result", [])
        results.check("the scrape target is up", up and up[0]["value"][1] == "1", f"{up}")

        rules = wait_for(lambda: rule_health(prometheus), 20, 0.5)
        results.check("Prometheus loaded every alert rule and evaluates it without error",
                      rules and rules[0] == len(alerts) and not rules[1],
                      f"loaded/problems: {rules}")

        for title, ref, expr in dashboard:
            promql = grafana_to_promql(expr)
            answer = prometheus.query(promql)
            result = answer.get("data", {}).get("result", [])
            results.check(f"dashboard panel {title!r} {ref}: parses and returns data",
                          answer.get("status") == "success" and len(result) > 0,
                          f"{promql} -> {answer.get('error') or 'no data'}")
        for name, expr in alerts:
            answer = prometheus.query(expr)
            results.check(f"alert {name}: parses", answer.get("status") == "success",
                          f"{expr} -> {answer.get('error')}")
        rate = prometheus.query('sum(rate(pglease_leases_acquired_total[30s]))')
        value = rate.get("data", {}).get("result", [])
        results.check("Prometheus sees leases being acquired",
                      value and float(value[0]["value"][1]) > 0, f"{value}")
    finally:
        if workload:
            workload.finish()
            results.check("the workload ran without transport errors", not workload.errors,
                          f"{workload.errors[:3]}")
        if prometheus:
            prometheus.stop()
        status = daemon.stop()
        results.check("pgleased exits 0 on SIGTERM", status == 0, f"exit status {status}")


def rule_health(prometheus):
    """(rules loaded, [rules with errors]) once every rule was evaluated, else None."""
    answer = prometheus.api("rules")
    rules = [rule for group in answer.get("data", {}).get("groups", [])
             for rule in group.get("rules", [])]
    if not rules or any(rule.get("health") == "unknown" for rule in rules):
        return None
    return len(rules), [(r.get("name"), r.get("lastError")) for r in rules
                        if r.get("health") != "ok"]


def main(argv):
    if len(argv) != 3 or argv[1] not in ("values", "prometheus"):
        print("usage: observability_e2e.py values|prometheus PATH/TO/pgleased", file=sys.stderr)
        return 2
    binary = Path(argv[2]).resolve()
    results = Results()
    workdir = Path(tempfile.mkdtemp(prefix=f"pglease-{argv[1]}-"))
    os.chmod(workdir, 0o755)
    try:
        if argv[1] == "values":
            check_values(results, binary, workdir)
        else:
            check_prometheus(results, binary, workdir)
    finally:
        status = results.finish(workdir)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
