#!/usr/bin/env python3
"""Per-lease roles (`"per_lease_roles": true`): each lease gets a LOGIN role of its own, the only
one that may connect to its clone. A worker holding lease A can neither connect to clone B nor to
the template, nor give itself the right to; inside its clone it may do anything (its objects
belong to the backend's lease role). The role goes when the lease ends (release by each mode,
expiry, the end of a keep), a sticky reset keeps it, a restarted pgleased gives the same
credentials for the leases it honours and drops the roles of leases that are over, and a
client-initialized template is built and leased the same way. Also with an admin that has only
CREATEDB and CREATEROLE, and on the embedded cluster with --per-lease-roles.

usage: lease_roles_e2e.py PGLEASED
"""

import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import psycopg2

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from check_results import Results, wait_for  # noqa: E402
from pg_server import PgServer  # noqa: E402
from pgleased_process import Daemon, http_request, metric_samples  # noqa: E402

ROLE_PREFIX = "pglease_lease_"
LEASE_ROLE = "pglease_worker"
LEASE_PASSWORD = "worker-secret"
MIGRATION = """
CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL);
CREATE TABLE orders (id serial PRIMARY KEY,
                     customer_id int NOT NULL REFERENCES customers (id), total int);
INSERT INTO customers (name) VALUES ('seed');
"""


def wait_ready(daemon):
    if not daemon.wait_listening(time.monotonic() + 90):
        raise RuntimeError(f"pgleased did not listen:\n    {daemon.log_tail()}")
    if not wait_for(lambda: http_request(daemon.port, "GET", "/readyz").status == 200, 90):
        raise RuntimeError(f"pgleased did not become ready:\n    {daemon.log_tail()}")
    return daemon


def acquire(port, template="app", ttl=60, wait=60):
    answer = http_request(port, "POST", f"/v1/templates/{template}/leases",
                          {"ttl_seconds": ttl, "wait_seconds": wait, "owner": "roles-e2e"})
    if answer.status != 201:
        raise RuntimeError(f"acquire answered {answer.status}: {answer.body[:300]!r}")
    return answer.json()


def connect_as(lease, database=None):
    return psycopg2.connect(host=lease["host"], port=lease["port"], user=lease["user"],
                            password=lease["password"], dbname=database or lease["database"],
                            connect_timeout=10)


def login_error(lease, database):
    """Why a login with `lease`'s credentials to `database` failed ("" when it succeeded)."""
    try:
        connect_as(lease, database).close()
        return ""
    except psycopg2.OperationalError as e:
        return str(e).strip() or "refused"


def refused(lease, database):
    """True when the server refused the login for want of the right to connect (the password
    was right, or a wrong one would say so)."""
    message = login_error(lease, database)
    return "CONNECT privilege" in message or "not currently accepting connections" in message


def no_login(lease, database):
    """True when the login failed because the role is gone (its password no longer matches)."""
    return "password authentication failed" in login_error(lease, database)


def alive(conn):
    """True while the server still answers on `conn`."""
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
        conn.rollback()
        return True
    except psycopg2.Error:
        return False


def role_exists(server, role):
    return bool(server.query("SELECT 1 FROM pg_roles WHERE rolname = %s", role))


def our_roles(server):
    return {row[0] for row in server.query(
        "SELECT rolname FROM pg_roles WHERE rolname LIKE 'pglease\\_lease\\_%%'")}


def connect_grantees(server, database):
    """The roles other than the owner that may connect to `database` (PUBLIC as '-')."""
    rows = server.query(
        "SELECT coalesce(r.rolname, '-') FROM pg_database d, aclexplode(d.datacl) a "
        "LEFT JOIN pg_roles r ON r.oid = a.grantee "
        "WHERE d.datname = %s AND a.privilege_type = 'CONNECT' AND a.grantee <> d.datdba",
        database)
    return sorted(row[0] for row in rows)


def template_database(server, name="app"):
    rows = server.query("SELECT datname FROM pg_database WHERE datname LIKE %s AND datistemplate",
                        f"pglease_{name}\\_%\\_tpl")
    return rows[0][0] if rows else None


def resets(port):
    """pglease_resets_total by its labels, as {frozenset of (label, value): count}."""
    return {labels: value for (name, labels), value in metric_samples(port).items()
            if name == "pglease_resets_total"}


def resets_in_place(port):
    return sum(value for labels, value in resets(port).items() if ("result", "reset") in labels)


def release(port, lease, mode="recycle", extra=""):
    answer = http_request(port, "DELETE", f"/v1/leases/{lease['id']}?mode={mode}{extra}")
    if answer.status != 204:
        raise RuntimeError(f"release answered {answer.status}: {answer.body[:300]!r}")


def check_isolation(results, server, a, b):
    results.check("each lease has a role of its own, not the shared one",
                  a["user"] != b["user"] and a["user"].startswith(ROLE_PREFIX)
                  and b["user"].startswith(ROLE_PREFIX) and LEASE_ROLE not in (a["user"], b["user"]),
                  f"users {a['user']!r} and {b['user']!r}")
    with connect_as(a) as conn, conn.cursor() as cur:
        cur.execute("SELECT current_user, session_user")
        results.equal("a session of lease A acts as the lease role", cur.fetchone(),
                      (LEASE_ROLE, a["user"]))
        # Anything a test does in its own clone.
        cur.execute("INSERT INTO customers (name) VALUES ('a'); "
                    "INSERT INTO orders (customer_id, total) VALUES (1, 5); "
                    "ALTER TABLE orders ADD COLUMN note text; TRUNCATE orders; "
                    "CREATE TABLE scratch (n int); CREATE SCHEMA extra; "
                    "CREATE TABLE extra.t (n int)")
        cur.execute("SELECT tableowner FROM pg_tables WHERE tablename IN ('scratch', 'orders')")
        results.equal("what lease A creates belongs to the lease role",
                      sorted(row[0] for row in cur.fetchall()), [LEASE_ROLE, LEASE_ROLE])
        conn.commit()
        # No way through the lease role to another clone or the template.
        for statement in (f'GRANT CONNECT ON DATABASE "{b["database"]}" TO "{a["user"]}"',
                          f'ALTER DATABASE "{a["database"]}" OWNER TO "{a["user"]}"',
                          f'ALTER DATABASE "{template_database(server)}" ALLOW_CONNECTIONS true'):
            try:
                cur.execute(statement)
                conn.commit()
            except psycopg2.Error:
                conn.rollback()
    results.check("lease A cannot connect to clone B", refused(a, b["database"]),
                  login_error(a, b["database"]) or "lease A's credentials logged in to clone B")
    results.check("lease B cannot connect to clone A", refused(b, a["database"]),
                  login_error(b, a["database"]) or "lease B's credentials logged in to clone A")
    template = template_database(server)
    results.check("lease A cannot connect to the template", template and refused(a, template),
                  f"template {template!r} accepted lease A")
    shared = dict(a, user=LEASE_ROLE, password=LEASE_PASSWORD)
    results.check("the shared lease role cannot connect to a leased clone",
                  refused(shared, a["database"]),
                  login_error(shared, a["database"]) or "the lease role logged in to A's clone")
    results.equal("only lease B's role may connect to clone B (A's GRANT gave nothing)",
                  connect_grantees(server, b["database"]), [b["user"]])
    results.equal("clone A still belongs to the admin",
                  server.query("SELECT pg_get_userbyid(datdba) FROM pg_database "
                               "WHERE datname = %s", a["database"]), [("postgres",)])


def check_sticky_reset(results, port, a):
    for round_ in (1, 2):
        answer = http_request(port, "POST", f"/v1/leases/{a['id']}/reset", {})
        body = answer.json() or {}
        results.check(f"sticky reset {round_} of lease A answers 200 with the same credentials",
                      answer.status == 200 and body.get("user") == a["user"]
                      and body.get("password") == a["password"],
                      f"{answer.status} {answer.body[:200]!r}")
        with connect_as(a) as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM customers")
            results.equal(f"after reset {round_} lease A connects and finds the template's rows",
                          cur.fetchone()[0], 1)
            cur.execute("INSERT INTO customers (name) VALUES ('again')")
            conn.commit()


def check_endings(results, server, port):
    # Recycle and reuse: the right to connect goes in the release's own transaction, the role
    # once its sessions are gone.
    in_place_before = resets_in_place(port)
    for mode in ("recycle", "reuse"):
        lease = acquire(port)
        session = connect_as(lease)
        release(port, lease, mode)
        results.check(f"once released with {mode} its credentials no longer log in",
                      refused(lease, lease["database"]) or no_login(lease, lease["database"]),
                      login_error(lease, lease["database"]))
        results.check(f"release with {mode} ends the lease's open session",
                      wait_for(lambda: session.closed or not alive(session), 10), "still open")
        results.check(f"release with {mode} drops the lease's role",
                      wait_for(lambda: not role_exists(server, lease["user"]), 10),
                      f"{lease['user']} still exists")
        results.equal(f"after release with {mode} nobody may connect to the clone",
                      connect_grantees(server, lease["database"]), [])
    # A released clone's privileges are as pglease gives them: it is reset in place, not cloned.
    results.check("a clone released with recycle is reset in place", wait_for(
        lambda: resets_in_place(port) > in_place_before, 30), f"resets: {resets(port)}")
    # A role given a privilege inside its clone cannot be dropped while the clone lives: the
    # reset sees the changed privileges and clones it again, and the role goes with the drop.
    granted = acquire(port)
    with connect_as(granted) as conn, conn.cursor() as cur:
        cur.execute(f'GRANT SELECT ON customers TO "{granted["user"]}"')
    release(port, granted, "recycle")
    results.check("a role holding a privilege in its clone goes once the clone is dropped",
                  wait_for(lambda: not role_exists(server, granted["user"]), 30),
                  f"{granted['user']} still exists")
    results.check("and that clone is cloned again rather than reset",
                  wait_for(lambda: not server.query("SELECT 1 FROM pg_database WHERE datname = %s",
                                                    granted["database"]), 30),
                  f"{granted['database']} still exists")
    # Expiry: the clone is dropped, its role with it.
    expiring = acquire(port, ttl=1)
    results.check("an expired lease's role is dropped with its clone",
                  wait_for(lambda: not role_exists(server, expiring["user"]), 30),
                  f"{expiring['user']} still exists 30 s after expiry")
    # Keep: the holder may still look, until the keep is over.
    kept = acquire(port)
    release(port, kept, "keep", "&keep_seconds=2")
    results.check("a kept clone still takes its lease's credentials",
                  not login_error(kept, kept["database"]), login_error(kept, kept["database"]))
    results.check("the role of a kept clone goes when the keep is over",
                  wait_for(lambda: not role_exists(server, kept["user"]), 30),
                  f"{kept['user']} still exists")


def check_restart(results, server, daemon_factory, daemon):
    held = acquire(daemon.port, ttl=300)
    orphan = ROLE_PREFIX + "0123456789abcdef01234567"
    server.query(f'CREATE ROLE "{orphan}" LOGIN')
    victim = server.query("SELECT datname FROM pg_database WHERE datname LIKE 'pglease\\_app\\_%%' "
                          "AND NOT datistemplate AND datname <> %s LIMIT 1", held["database"])
    if victim:
        server.query(f'GRANT CONNECT ON DATABASE "{victim[0][0]}" TO "{orphan}"')
    os.kill(daemon.process.pid, signal.SIGKILL)
    daemon.process.wait()
    daemon.log.close()
    daemon = daemon_factory("restarted")
    answer = http_request(daemon.port, "GET", f"/v1/leases/{held['id']}")
    body = answer.json() or {}
    results.check("after kill -9 and a restart the lease has the same credentials",
                  answer.status == 200 and body.get("user") == held["user"]
                  and body.get("password") == held["password"],
                  f"{answer.status} {answer.body[:200]!r}")
    results.check("and they still log in to its clone", not login_error(held, held["database"]),
                  login_error(held, held["database"]))
    results.check("a role of a lease that is over is dropped at start",
                  wait_for(lambda: not role_exists(server, orphan), 30), f"{orphan} still exists")
    release(daemon.port, held)
    return daemon


def check_client_template(results, server, port):
    answer = http_request(port, "PUT", "/v1/templates/capp",
                          {"fingerprint": "roles-v1", "wait_seconds": 60})
    if answer.status != 201:
        results.check("a client-initialized template can be built", False,
                      f"PUT answered {answer.status}: {answer.body[:300]!r}")
        return
    build = answer.json()["build"]
    with psycopg2.connect(build["dsn"], connect_timeout=10) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE notes (id serial PRIMARY KEY, body text)")
    answer = http_request(port, "POST", "/v1/templates/capp/builds/roles-v1/finalize",
                          {"build_id": build["id"]})
    results.equal("the client build (as the lease role) finalizes", answer.status, 200)
    lease = acquire(port, "capp")
    with connect_as(lease) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO notes (body) VALUES ('x') RETURNING id")
        results.equal("a lease of it has the client's table and may write to it",
                      cur.fetchone()[0], 1)
    template = template_database(server, "capp")
    results.check("its lease cannot connect to the client's template",
                  template and refused(lease, template), f"template {template!r}")
    release(port, lease)


def check_non_superuser_admin(results, server, binary, workdir):
    """An admin with CREATEDB and CREATEROLE only, as a managed PostgreSQL gives it."""
    server.query("CREATE ROLE np_admin LOGIN CREATEDB CREATEROLE PASSWORD 'np-secret'")
    (workdir / "np").mkdir()
    config = workdir / "np" / "pglease.json"
    url = f"postgresql://np_admin:np-secret@127.0.0.1:{server.port}/postgres"
    config.write_text(json.dumps({
        "prefix": "np_",
        "backends": [{"name": "main", "url": url, "lease_role": "np_worker",
                      "lease_password": "np-worker-secret", "per_lease_roles": True}],
        "templates": {"app": {"migrations": str(workdir / "migrations"),
                              "pool": {"min_idle": 2, "max_total": 4}}}}))
    daemon = wait_ready(Daemon(binary, "np", workdir / "np" / "pgleased.log",
                               workdir / "np" / "data", config=config))
    try:
        a, b = acquire(daemon.port), acquire(daemon.port)
        with connect_as(a) as conn, conn.cursor() as cur:
            cur.execute("INSERT INTO orders (customer_id, total) VALUES (1, 2); "
                        "SELECT current_user, session_user")
            results.equal("non-superuser admin: lease A writes to its clone as the lease role",
                          cur.fetchone(), ("np_worker", a["user"]))
        results.check("non-superuser admin: lease A has its own role and cannot connect to B",
                      a["user"].startswith("np_lease_") and refused(a, b["database"]),
                      login_error(a, b["database"]) or f"user {a['user']!r}")
        release(daemon.port, a, "reuse")
        release(daemon.port, b)
        results.check("non-superuser admin: the roles go with the releases", wait_for(
            lambda: not role_exists(server, a["user"]) and not role_exists(server, b["user"]), 10))
    finally:
        daemon.stop()


def check_switch_on(results, server, binary, workdir):
    """A backend that served without per-lease roles, restarted with them: its template becomes
    the admin's, its idle clones (anyone may connect to them) are cloned again."""
    (workdir / "sw").mkdir()
    config = workdir / "sw" / "pglease.json"

    def start(per_lease, name):
        config.write_text(json.dumps({
            "prefix": "sw_",
            "backends": [{"name": "main", "url": server.url(), "lease_role": "sw_worker",
                          "lease_password": "sw-secret", "per_lease_roles": per_lease}],
            "templates": {"app": {"migrations": str(workdir / "migrations"),
                                  "pool": {"min_idle": 2, "max_total": 4}}}}))
        return wait_ready(Daemon(binary, name, workdir / "sw" / f"pgleased-{name}.log",
                                 workdir / "sw" / "data", config=config))

    def owners():
        return dict(server.query("SELECT datname, pg_get_userbyid(datdba) FROM pg_database "
                                 "WHERE datname LIKE 'sw\\_%%'"))

    daemon = start(False, "shared")
    try:
        wait_for(lambda: len(owners()) >= 3, 60)
        before = owners()
    finally:
        daemon.stop()
    daemon = start(True, "switched")
    try:
        results.equal("switched on: the clones it had are owned by the lease role",
                      sorted(set(before.values())), ["sw_worker"])
        results.check("switched on: the idle clones made before are cloned again, every database "
                      "is the admin's", wait_for(lambda: (lambda now: len(now) >= 3 and not (
                          set(now) & {n for n in before if not n.endswith("_tpl")})
                          and set(now.values()) == {"postgres"})(owners()), 60),
                      f"before {before}, now {owners()}")
        a, b = acquire(daemon.port), acquire(daemon.port)
        results.check("switched on: a lease cannot connect to another's clone",
                      a["user"].startswith("sw_lease_") and refused(a, b["database"]),
                      login_error(a, b["database"]) or f"user {a['user']!r}")
        release(daemon.port, a)
        release(daemon.port, b)
    finally:
        daemon.stop()


def check_embedded(results, binary, workdir):
    (workdir / "emb").mkdir()
    (workdir / "emb" / "migrations").mkdir()
    (workdir / "emb" / "migrations" / "0001.sql").write_text(MIGRATION)
    config = workdir / "emb" / "pglease.json"
    config.write_text(json.dumps({"templates": {"app": {
        "migrations": "migrations", "pool": {"min_idle": 2, "max_total": 4}}}}))
    daemon = Daemon(binary, "embedded", workdir / "emb" / "pgleased.log", workdir / "emb" / "data",
                    config=config, extra_args=("--per-lease-roles", "true"))
    try:
        wait_ready(daemon)
        a, b = acquire(daemon.port), acquire(daemon.port)
        with connect_as(a) as conn, conn.cursor() as cur:
            cur.execute("SELECT current_user")
            results.equal("embedded: lease A connects to its clone as the lease role",
                          cur.fetchone()[0], LEASE_ROLE)
        results.check("embedded: lease A has a role of its own and cannot connect to clone B",
                      a["user"].startswith(ROLE_PREFIX) and refused(a, b["database"]),
                      f"user {a['user']!r}")
        release(daemon.port, a)
        release(daemon.port, b)
    finally:
        daemon.stop()


def main():
    binary = sys.argv[1]
    results = Results()
    workdir = Path(tempfile.mkdtemp(prefix="pglease-roles-"))
    os.chmod(workdir, 0o755)
    (workdir / "migrations").mkdir()
    (workdir / "migrations" / "0001.sql").write_text(MIGRATION)
    server = PgServer(workdir / "pg")
    server.start()
    config = workdir / "pglease.json"
    config.write_text(json.dumps({
        "backends": [{"name": "main", "url": server.url(), "lease_role": LEASE_ROLE,
                      "lease_password": LEASE_PASSWORD, "per_lease_roles": True}],
        "templates": {"app": {"migrations": "migrations",
                              "pool": {"min_idle": 3, "max_total": 10, "recycle": "reset"},
                              "lease": {"keep_seconds": 2}}}}))

    def start(name):
        return wait_ready(Daemon(binary, name, workdir / f"pgleased-{name}.log",
                                 workdir / "data", config=config))

    daemon = start("first")
    try:
        a, b = acquire(daemon.port), acquire(daemon.port)
        check_isolation(results, server, a, b)
        check_sticky_reset(results, daemon.port, a)
        release(daemon.port, a)
        release(daemon.port, b)
        check_endings(results, server, daemon.port)
        daemon = check_restart(results, server, start, daemon)
        check_client_template(results, server, daemon.port)
        results.check("once every lease is over no lease role is left",
                      wait_for(lambda: not our_roles(server), 30), f"left: {our_roles(server)}")
        check_non_superuser_admin(results, server, binary, workdir)
        check_switch_on(results, server, binary, workdir)
        check_embedded(results, binary, workdir)
    except Exception as e:  # noqa: BLE001 - reported as a failure with the logs
        results.check("the scenario ran to its end", False,
                      f"{type(e).__name__}: {e}\n    {daemon.log_tail()}")
    finally:
        daemon.stop()
        server.destroy()
    return results.finish(workdir)


if __name__ == "__main__":
    sys.exit(main())
