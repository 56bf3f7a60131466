"""pytest plugin: a fresh PostgreSQL database for every test, leased from pgleased.

Fixtures: `pglease_db` (function scope: a database in the template's exact state),
`pglease_dsn` (its connection URI), `pglease_lease` (session scope: this xdist worker's own
lease), `pglease_client` and `pglease_template`. Settings: `pytest --help`, section pglease.
"""

from __future__ import annotations

import dataclasses
import os
import socket
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

import pytest

from .client import Client, DEFAULT_URL
from .durations import parse_duration
from .errors import ApiError, PgleaseError, UnreachableError
from .fingerprint import fingerprint
from .lease import Lease
from .templates import TemplateVersion, build_template, run_migrations
from .worker import WorkerDatabases

_SETTINGS = pytest.StashKey["Settings"]()
_FAILED = pytest.StashKey[bool]()
_TEST_LEASE = pytest.StashKey[Lease]()
_KEPT_PROPERTY = "pglease_kept"
_FRESH_PROPERTY = "pglease_fresh"


@dataclasses.dataclass(frozen=True)
class Settings:
    url: str
    token: str | None
    template: str | None
    migrations: str | None
    migrations_files: tuple[str, ...]
    base_dir: Path
    keep_failed: float | None
    ttl: float
    wait: float
    build_timeout: float


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pglease", "pglease: a fresh PostgreSQL database per test, from pgleased")
    options = [
        ("url", "URL", f"pgleased's address; else $PGLEASE_URL, else {DEFAULT_URL}. "
                       "The token, if the daemon has one, comes from $PGLEASE_TOKEN."),
        ("template", "NAME", "the template to lease databases of"),
        ("migrations", "CMD", "build the template from this shell command (e.g. 'alembic upgrade "
                              "head'), run once by whichever worker wins, with DATABASE_URL and "
                              "PG* pointing at the new template database"),
        ("keep-failed", "DURATION", "keep a failing test's database this long (90s, 10m, 1h) and "
                                    "print where it is"),
        ("ttl", "DURATION", "lease time to live, renewed in the background (default 10m)"),
        ("wait", "DURATION", "how long to wait for a database when the pool is empty (default 2m)"),
    ]
    for name, metavar, text in options:
        key = "pglease_" + name.replace("-", "_")
        group.addoption(f"--pglease-{name}", dest=key, metavar=metavar, default=None,
                        help=f"{text} [ini: {key}]")
        parser.addini(key, text, default=None)
    group.addoption("--pglease-migrations-files", dest="pglease_migrations_files",
                    metavar="PATH", action="append", default=None,
                    help="a file or directory the migrations read; the template's fingerprint "
                         "hashes them, so a change builds a new version (repeatable) "
                         "[ini: pglease_migrations_files, one per line or space-separated]")
    parser.addini("pglease_migrations_files",
                  "files and directories the migrations command reads (the fingerprint's input)",
                  type="args", default=[])


def _setting(config: pytest.Config, key: str, env: str | None = None) -> str | None:
    """Command line, else the environment variable, else the ini file."""
    value = config.getoption(key)
    if value is None and env:
        value = os.environ.get(env) or None
    if value is None:
        value = config.getini(key) or None
    return value.strip() if isinstance(value, str) else value


def _duration(config: pytest.Config, key: str, default: float | None) -> float | None:
    text = _setting(config, key)
    if text is None:
        return default
    try:
        seconds = parse_duration(text)
    except ValueError as error:
        raise pytest.UsageError(f"--{key.replace('_', '-')}: {error}") from None
    if seconds <= 0:
        raise pytest.UsageError(f"--{key.replace('_', '-')}: must be more than 0 s, not {text!r}")
    return seconds


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    base_dir = config.inipath.parent if config.inipath else config.rootpath
    files = config.getoption("pglease_migrations_files") or config.getini("pglease_migrations_files")
    settings = Settings(
        url=_setting(config, "pglease_url", "PGLEASE_URL") or DEFAULT_URL,
        token=os.environ.get("PGLEASE_TOKEN") or None,
        template=_setting(config, "pglease_template"),
        migrations=_setting(config, "pglease_migrations"),
        migrations_files=tuple(files),
        base_dir=base_dir,
        keep_failed=_duration(config, "pglease_keep_failed", None),
        ttl=_duration(config, "pglease_ttl", 600.0),
        wait=_duration(config, "pglease_wait", 120.0),
        build_timeout=600.0,
    )
    if settings.migrations_files and not settings.migrations:
        raise pytest.UsageError("pglease_migrations_files is set but pglease_migrations is not: "
                                "name the command that builds the template")
    config.stash[_SETTINGS] = settings
    config.pluginmanager.register(RunSummary(), "pglease-run-summary")


def pytest_report_header(config: pytest.Config) -> list[str]:
    settings = config.stash.get(_SETTINGS, None)
    if settings is None or settings.template is None:
        return []
    line = f"pglease: {settings.url}, template {settings.template}"
    if settings.migrations:
        line += f", built by `{settings.migrations}`"
    if settings.keep_failed:
        line += f", failing tests keep their database for {settings.keep_failed:.0f} s"
    return [line]


def _fail(error: BaseException) -> None:
    """Ends a fixture with one clear line instead of a traceback into the plugin."""
    if isinstance(error, UnreachableError):
        pytest.fail(f"pglease: {error}. Start pgleased, or point --pglease-url (or "
                    f"PGLEASE_URL) at it.", pytrace=False)
    if isinstance(error, ApiError) and error.code == "unauthorized":
        pytest.fail(f"pglease: {error.message}: set PGLEASE_TOKEN to the daemon's token.",
                    pytrace=False)
    pytest.fail(str(error) if str(error).startswith("pglease:") else f"pglease: {error}",
                pytrace=False)


def _worker_id() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def pglease_client(request: pytest.FixtureRequest) -> Iterator[Client]:
    """A client of the pgleased the run is configured for."""
    settings: Settings = request.config.stash[_SETTINGS]
    try:
        client = Client(settings.url, settings.token)
    except ValueError as error:
        pytest.fail(f"pglease: {error} (--pglease-url, PGLEASE_URL or pglease_url)", pytrace=False)
    yield client
    client.close()


@pytest.fixture(scope="session")
def pglease_template(request: pytest.FixtureRequest, pglease_client: Client) -> TemplateVersion:
    """The template this run leases from, ready. With --pglease-migrations it is built here
    from the suite's own migrations, once: whichever worker asks first builds it, the others
    wait for it."""
    settings: Settings = request.config.stash[_SETTINGS]
    if not settings.template:
        pytest.fail("pglease: no template: pass --pglease-template NAME or set "
                    "pglease_template in the ini file", pytrace=False)
    try:
        if not settings.migrations:
            detail = pglease_client.template(settings.template)
            return TemplateVersion(settings.template, detail.get("fingerprint", ""), False, detail)
        version = fingerprint(settings.migrations_files, settings.base_dir, settings.migrations)
        return build_template(
            pglease_client, settings.template, version,
            lambda build: run_migrations(settings.migrations, build, cwd=settings.base_dir,
                                         timeout=settings.build_timeout),
            timeout=settings.build_timeout, build_ttl=settings.build_timeout)
    except (PgleaseError, OSError) as error:
        _fail(error)
        raise


@pytest.fixture(scope="session")
def _pglease_worker(request: pytest.FixtureRequest, pglease_client: Client,
                    pglease_template: TemplateVersion) -> Iterator[WorkerDatabases]:
    settings: Settings = request.config.stash[_SETTINGS]
    worker = _worker_id()
    databases = WorkerDatabases(
        pglease_client, pglease_template.name, ttl=settings.ttl, wait=settings.wait,
        owner=f"pytest {worker} {socket.gethostname()}:{os.getpid()}",
        labels={"runner": "pytest", "worker": worker},
        # The version this run built from its migrations: another job's newer migrations of the
        # same template name, on the same pgleased, do not reach it.
        fingerprint=pglease_template.fingerprint if settings.migrations else None)
    yield databases
    try:
        databases.close()
    except PgleaseError as error:
        _fail(error)


class WorkerLease:
    """This worker's lease. Its attributes are the current lease's (`dsn`, `database`, `id`,
    ...): after the worker's database was kept for a failing test, or given up, it names the
    replacement."""

    def __init__(self, databases: WorkerDatabases):
        self._databases = databases

    @property
    def lease(self) -> Lease:
        return self._databases.worker_lease()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.lease, name)

    def env(self) -> dict[str, str]:
        return self.lease.env()

    def __repr__(self) -> str:
        return f"WorkerLease({self.lease!r})"


@pytest.fixture(scope="session")
def pglease_lease(_pglease_worker: WorkerDatabases) -> WorkerLease:
    """This xdist worker's own lease for the whole session (one database per worker, renewed in
    the background, released at the end). It is the database `pglease_db` resets for each
    test."""
    try:
        _pglease_worker.worker_lease()
    except PgleaseError as error:
        _fail(error)
    _pglease_worker.handed_out()
    return WorkerLease(_pglease_worker)


@pytest.fixture
def pglease_db(request: pytest.FixtureRequest, _pglease_worker: WorkerDatabases) -> Iterator[Lease]:
    """A database in the template's exact state, for this test alone: the worker's database,
    reset through its lease (the first test gets it as leased). With --pglease-keep-failed a
    failing test's database is kept and the report says where."""
    settings: Settings = request.config.stash[_SETTINGS]
    try:
        lease = _pglease_worker.fresh()
    except PgleaseError as error:
        _fail(error)
        raise
    request.node.stash[_TEST_LEASE] = lease
    how, reason = (lease.reset.result, lease.reset.reason) if lease.reset else ("leased", "")
    request.node.user_properties.append((_FRESH_PROPERTY, (how, reason)))
    yield lease
    failed = request.node.stash.get(_FAILED, False)
    keep = settings.keep_failed if failed else None
    try:
        kept = _pglease_worker.done(lease, keep_seconds=keep)
    except PgleaseError as error:
        _fail(error)
        return
    if kept is not None:
        request.node.user_properties.append(
            (_KEPT_PROPERTY, f"{request.node.nodeid}: kept database {kept.database} for "
                             f"{_shown(kept.seconds)}: {kept.dsn}"))


@pytest.fixture
def pglease_dsn(pglease_db: Lease) -> str:
    """The connection URI (postgresql://…) of this test's fresh database."""
    return pglease_db.dsn


def _shown(seconds: float) -> str:
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "") + \
        (f"{secs}s" if secs or not whole else "")
    return text


# ---------------------------------------------------------------------------- reporting


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.when in ("setup", "call") and report.failed:
        item.stash[_FAILED] = True
        settings = item.config.stash.get(_SETTINGS, None)
        lease = item.stash.get(_TEST_LEASE, None)
        if settings is not None and settings.keep_failed and lease is not None:
            report.sections.append(
                ("pglease", f"keeping database {lease.database} for "
                            f"{_shown(settings.keep_failed)}: {lease.dsn}"))


class RunSummary:
    """Collects, from every xdist worker's reports, how each test's database was made fresh and
    which were kept for failing tests, and says so at the end of the run."""

    def __init__(self) -> None:
        self.kept: list[str] = []
        self.fresh: Counter[str] = Counter()
        self.reclone_reasons: Counter[str] = Counter()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "teardown":
            return
        for name, value in report.user_properties:
            if name == _KEPT_PROPERTY:
                self.kept.append(value)
            elif name == _FRESH_PROPERTY:
                how, reason = value
                self.fresh[how] += 1
                if how == "reclone":
                    self.reclone_reasons[reason or "no reason given"] += 1

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.fresh:
            total = sum(self.fresh.values())
            line = (f"pglease: {total} test{'s' if total != 1 else ''} got a fresh database: "
                    f"{self.fresh['reset']} reset in place, {self.fresh['reclone']} cloned again, "
                    f"{self.fresh['leased']} on a new lease")
            terminalreporter.write_line(line)
            for reason, count in self.reclone_reasons.most_common():
                terminalreporter.write_line(f"pglease: cloned again {count}x: {reason}")
        if self.kept:
            terminalreporter.section("pglease: databases kept for inspection")
            for line in self.kept:
                terminalreporter.write_line(line)
