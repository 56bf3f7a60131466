"""What the e2e drivers share: the pinned wheels, a fresh virtualenv with the built package,
and a pgleased of their own."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGE = HERE.parent
LOCK = HERE / "requirements.lock"
# The interpreter the virtualenvs are made with: the one running the driver, unless PYTHON names
# another. The wheels fetched are that interpreter's (psycopg's and SQLAlchemy's are compiled).
PYTHON = os.environ.get("PYTHON") or sys.executable


def say(text: str) -> None:
    print(f"e2e: {text}", flush=True)


def run(args: list[str], **kwargs) -> None:
    """Runs a step; on failure prints what it said and exits non-zero naming the step."""
    done = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          stdin=subprocess.DEVNULL, **kwargs)
    if done.returncode != 0:
        print(done.stdout, end="")
        sys.exit(f"e2e: FAILED: `{' '.join(map(str, args))}` exited with status {done.returncode}")


def cache_dir() -> Path:
    return Path(os.environ.get("PGLEASE_E2E_CACHE")
                or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pglease-e2e")


def wheelhouse() -> Path:
    """The wheels of requirements.lock for PYTHON, downloaded (hash-checked) once per lock file
    and interpreter by the pip of a throwaway virtualenv; the only step that needs the network."""
    tag = subprocess.run([PYTHON, "-c", "import sys; print('cp%d%d' % sys.version_info[:2])"],
                         capture_output=True, text=True, check=True).stdout.strip()
    digest = hashlib.sha256(LOCK.read_bytes()).hexdigest()[:16]
    cache = cache_dir()
    house = cache / f"python-wheels-{tag}-{digest}"
    if (house / ".complete").exists():
        return house
    say(f"downloading the pinned wheels for {PYTHON} ({tag}) into {house}")
    shutil.rmtree(house, ignore_errors=True)
    house.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="pglease-e2e-fetch.") as scratch:
        fetcher = Path(scratch) / "venv"
        run([PYTHON, "-m", "venv", str(fetcher)])
        run([str(fetcher / "bin" / "python"), "-m", "pip", "download", "--quiet", "--no-cache-dir",
             "--disable-pip-version-check", "--require-hashes", "--only-binary", ":all:",
             "--dest", str(house), "-r", str(LOCK)])
    (house / ".complete").write_text(digest + "\n")
    for older in cache.glob(f"python-wheels-{tag}-*"):  # those of earlier lock files
        if older != house:
            shutil.rmtree(older, ignore_errors=True)
    return house


def make_venv(work: Path) -> Path:
    """A fresh virtualenv with exactly the locked packages, offline from the wheelhouse."""
    house = wheelhouse()
    venv = work / "venv"
    say(f"creating a fresh virtualenv with {PYTHON} and the pinned packages")
    run([PYTHON, "-m", "venv", str(venv)])
    run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-index",
         "--disable-pip-version-check", "--find-links", str(house), "--require-hashes",
         "-r", str(LOCK)])
    return venv


def build_and_install(venv: Path, work: Path) -> Path:
    """Builds the sdist and, from it, the wheel (`python -m build`), checks what the sdist
    carries, and installs the wheel; returns the wheel."""
    dist = work / "dist"
    say("building the sdist and the wheel (python -m build)")
    run([str(venv / "bin" / "python"), "-m", "build", "--no-isolation", "--outdir", str(dist),
         str(PACKAGE)])
    wheels, sdists = sorted(dist.glob("pglease-*.whl")), sorted(dist.glob("pglease-*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        sys.exit(f"e2e: FAILED: expected one wheel and one sdist in {dist}, found "
                 f"{[p.name for p in dist.iterdir()]}")
    with tarfile.open(sdists[0]) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    needed = {"pyproject.toml", "README.md", "src/pglease/__init__.py", "src/pglease/py.typed",
              "src/pglease/pytest_plugin.py"}
    if not needed <= names:
        sys.exit(f"e2e: FAILED: the sdist lacks {sorted(needed - names)}")
    run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-index",
         "--disable-pip-version-check", "--no-deps", str(wheels[0])])
    say(f"installed {wheels[0].name} (sdist {sdists[0].name})")
    return wheels[0]


class Daemon:
    """pgleased on an embedded cluster of its own, on a free loopback port."""

    def __init__(self, binary: str, work: Path, config: dict):
        self.work = work
        shm = Path("/dev/shm")
        parent = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
        # As root the cluster runs as `postgres`, which must reach the data directory.
        self.data_dir = Path(tempfile.mkdtemp(prefix="pglease-e2e-py.", dir=parent))
        os.chmod(self.data_dir, 0o755)
        config_path = work / "pglease.json"
        config_path.write_text(json.dumps(config, indent=2))
        self.log_path = work / "pgleased.log"
        self.log = open(self.log_path, "wb")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PGLEASE_")}
        self.process = subprocess.Popen(
            [binary, "--data-dir", str(self.data_dir), "--listen", "127.0.0.1:0",
             "--config", str(config_path), "--log-level", "info"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        self.url = ""

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        pattern = re.compile(r"http listening on (127\.0\.0\.1:\d+)")
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.fail(f"pgleased exited with status {self.process.returncode}")
            if not self.url:
                match = pattern.search(self.log_path.read_text(errors="replace"))
                if match:
                    self.url = f"http://{match.group(1)}"
            if self.url:
                try:
                    with urllib.request.urlopen(f"{self.url}/readyz", timeout=5) as answer:
                        if answer.status == 200:
                            say(f"pgleased ready at {self.url} (data {self.data_dir})")
                            return
                except OSError:
                    pass
            time.sleep(0.2)
        self.fail(f"pgleased not ready within {timeout:.0f} s")

    def get(self, path: str):
        with urllib.request.urlopen(f"{self.url}{path}", timeout=30) as answer:
            return json.load(answer)

    def metrics(self) -> list[tuple[str, dict[str, str], float]]:
        """The samples of /metrics: (name, labels, value)."""
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=30) as answer:
            text = answer.read().decode()
        samples = []
        for line in text.splitlines():
            match = re.fullmatch(r"(\w+)(?:\{(.*)\})? (\S+)", line)
            if match and not line.startswith("#"):
                labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
                samples.append((match.group(1), labels, float(match.group(3))))
        return samples

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def fail(self, why: str) -> None:
        print(f"--- pgleased log ({self.log_path}), last lines:\n{self.log_tail()}")
        self.stop()
        sys.exit(f"e2e: FAILED: {why}")

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


def metric(samples: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels`."""
    return sum(value for sample, have, value in samples
               if sample == name and all(have.get(k) == v for k, v in labels.items()))


def test_env(url: str, venv: Path) -> dict[str, str]:
    """This environment as the virtualenv's activation leaves it, without libpq's and pglease's
    variables, pointing at `url`."""
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith("PG") or k == "DATABASE_URL" or k.startswith("PYTEST_"))}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    env["PGLEASE_URL"] = url
    return env
