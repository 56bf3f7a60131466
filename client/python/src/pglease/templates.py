"""Client-initialized templates: ensure one by fingerprint, and build it when this caller wins."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import time
from typing import Any, Callable, Mapping

from .client import Client
from .errors import PgleaseError, UnavailableError
from .lease import Build


class MigrationError(PgleaseError):
    """The suite's migrations failed on the build database; the build was aborted."""


@dataclasses.dataclass(frozen=True)
class TemplateVersion:
    """A ready version of a client-initialized template. `built` is True in the one caller
    that ran the migrations."""

    name: str
    fingerprint: str
    built: bool
    detail: Mapping[str, Any]


def build_template(client: Client, name: str, fingerprint: str, migrate: Callable[[Build], None],
                   *, timeout: float = 600.0, build_ttl: float = 600.0) -> TemplateVersion:
    """Ensures template `name` at `fingerprint`. Exactly one caller is told to build: it runs
    `migrate(build)` against the empty `build.dsn` and finalizes (or aborts when `migrate`
    raises); every other caller waits, up to `timeout` seconds, until the version is ready."""
    give_up_at = time.monotonic() + timeout
    while True:
        remaining = give_up_at - time.monotonic()
        try:
            ensured = client.ensure_template(name, fingerprint, wait=max(0, min(remaining, 600)),
                                             build_ttl=build_ttl)
        except UnavailableError as error:
            if error.code == "template_building" and time.monotonic() < give_up_at:
                continue
            raise
        if ensured.state == "ready" or ensured.build is None:
            return TemplateVersion(name, fingerprint, False, ensured.template)
        build = ensured.build
        try:
            migrate(build)
        except BaseException:
            try:
                client.abort_build(name, fingerprint, build.id)
            except PgleaseError:
                pass  # the build lease expires on its own; the migration's error matters more
            raise
        detail = client.finalize_build(name, fingerprint, build.id)
        return TemplateVersion(name, fingerprint, True, detail)


def run_migrations(command: str, build: Build, cwd: str | os.PathLike[str] | None = None,
                   timeout: float | None = None) -> str:
    """Runs shell `command` in `cwd` with `DATABASE_URL` and `PG*` pointing at the build
    database; its output, or MigrationError with the exit status and the output's tail."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG") and k != "DATABASE_URL"}
    env.update(build.env())
    try:
        done = subprocess.run(command, shell=True, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              errors="replace", timeout=timeout)
    except subprocess.TimeoutExpired as expired:
        raise MigrationError(f"pglease: migrations `{command}` did not finish within "
                             f"{timeout:.0f} s") from expired
    if done.returncode != 0:
        tail = "\n".join(done.stdout.splitlines()[-30:])
        raise MigrationError(f"pglease: migrations `{command}` exited with status "
                             f"{done.returncode} on template {build.template}:\n{tail}")
    return done.stdout
