"""A PostgreSQL 15 server a test starts for itself, as an external backend of pgleased.

initdb into a directory of the test's, a free loopback port, run as the unprivileged `postgres`
account when the test runs as root. The superuser `postgres` logs in over TCP with a password
(scram-sha-256), as an admin URL of a real deployment would; the unix socket is trusted.
"""

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import psycopg2

ADMIN_PASSWORD = "admin-secret"


def server_bin_dir():
    found = sorted(glob.glob("/usr/lib/postgresql/15/bin")) or sorted(
        glob.glob("/usr/lib/postgresql/*/bin"))
    if not found:
        raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql")
    return Path(found[-1])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    """One cluster: data in root/data, socket in root/run, log in root/postgres.log."""

    def __init__(self, root, settings=None):
        self.root = Path(root)
        self.bin = server_bin_dir()
        self.data = self.root / "data"
        self.run_dir = self.root / "run"
        self.log = self.root / "postgres.log"
        self.port = free_port()
        self.account = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
        self.settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.run_dir),
            "max_connections": "100",
            "shared_buffers": "32MB",
            "fsync": "off",
            "full_page_writes": "off",
        }
        self.settings.update(settings or {})
        self.root.mkdir(parents=True, exist_ok=True)
        self.run_dir.mkdir(exist_ok=True)
        pwfile = self.root / "pwfile"
        pwfile.write_text(ADMIN_PASSWORD + "\n")
        for path in (self.root, self.run_dir, pwfile):
            self._own(path)
        self._as_server([str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
                         "--pwfile", str(pwfile), "--auth-local=trust",
                         "--auth-host=scram-sha-256", "-E", "UTF8", "--no-instructions"],
                        check=True)
        with open(self.data / "postgresql.conf", "a") as conf:
            for name, value in self.settings.items():
                conf.write(f"{name} = '{value}'\n")

    def _own(self, path):
        if self.account is not None:
            os.chown(path, self.account.pw_uid, self.account.pw_gid)

    def _as_server(self, args, check=False, timeout=120):
        prefix = ["runuser", "-u", "postgres", "--"] if self.account is not None else []
        return subprocess.run(prefix + args, check=check, timeout=timeout,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def pg_ctl(self, *args, check=True):
        result = self._as_server([str(self.bin / "pg_ctl"), "-D", str(self.data), "-l",
                                  str(self.log), "-w", "-t", "60", *args])
        if check and result.returncode != 0:
            raise RuntimeError(f"pg_ctl {' '.join(args)} failed: {result.stdout}\n"
                               f"{self.log_tail()}")
        return result

    def start(self):
        self.pg_ctl("start")
        self.wait_accepting()

    def stop(self, mode="fast"):
        return self.pg_ctl("stop", "-m", mode, check=False).returncode == 0

    def restart(self, mode="fast"):
        """pg_ctl stop -m mode, then start: every session ends; with immediate, a crash."""
        self.stop(mode)
        self.start()

    def postmaster_pid(self):
        try:
            return int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def kill_backend(self, pid):
        """SIGKILL to one server process: PostgreSQL ends every session and restarts itself."""
        try:
            os.kill(pid, signal.SIGKILL)
            return True
        except ProcessLookupError:
            return False

    def wait_accepting(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.connect().close()
                return True
            except psycopg2.Error:
                time.sleep(0.05)
        return False

    def log_tail(self, lines=20):
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def url(self, database="postgres"):
        """The admin's URL over TCP, as pgleased's backends[].url."""
        return f"postgresql://postgres:{ADMIN_PASSWORD}@127.0.0.1:{self.port}/{database}"

    def connect(self, database="postgres"):
        """An autocommit superuser session over the unix socket."""
        conn = psycopg2.connect(host=str(self.run_dir), port=self.port, user="postgres",
                                dbname=database, connect_timeout=5)
        conn.autocommit = True
        return conn

    def query(self, sql, *params, database="postgres"):
        """Every row of one statement, on a session of its own."""
        conn = self.connect(database)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params or None)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()

    def destroy(self):
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
