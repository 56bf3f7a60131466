"""One test worker's lease, and a database fresh from the template for every test through it."""

from __future__ import annotations

import dataclasses
import time
import warnings
from typing import Mapping

from .client import Client
from .errors import ConflictError, NotFoundError, PgleaseError
from .lease import Lease
from .renewer import Renewer

# How long a reset is retried while a session an earlier test left behind is still inside a
# transaction or running a query, before the worker gives its database up for a new lease.
BUSY_PATIENCE_SECONDS = 2.0


class PgleaseWarning(UserWarning):
    """Something the suite should fix, though its tests still got fresh databases."""


@dataclasses.dataclass(frozen=True)
class Kept:
    """A database kept for inspection after a failure."""

    database: str
    dsn: str
    seconds: float


class WorkerDatabases:
    """Holds this worker's lease (renewed in the background, released by close()) and hands each
    test the worker's database fresh from the template: as leased for the first test, reset
    through the lease for every later one (`POST /v1/leases/{id}/reset`)."""

    def __init__(self, client: Client, template: str, *, ttl: float, wait: float, owner: str,
                 labels: Mapping[str, str] | None = None, fingerprint: str | None = None):
        self.client = client
        self.template = template
        self.fingerprint = fingerprint  # exactly this version of the template, when given
        self.ttl = ttl
        self.wait = wait
        self.owner = owner
        self.labels = dict(labels or {})
        self._renewer = Renewer(client, ttl)
        self._worker: Lease | None = None
        self._pristine = False  # the worker's clone as leased: no reset needed

    def worker_lease(self) -> Lease:
        """This worker's lease, acquired on first use (and again after one was given up)."""
        if self._worker is None:
            self._worker = self.client.acquire(self.template, ttl=self.ttl, wait=self.wait,
                                               owner=self.owner, labels=self.labels,
                                               fingerprint=self.fingerprint)
            self._renewer.add(self._worker.id)
            self._pristine = True
        return self._worker

    def handed_out(self) -> None:
        """The worker's lease went to code that may write to it."""
        self._pristine = False

    def fresh(self) -> Lease:
        """The worker's database in the template's exact state, for one test. The lease's
        `reset` says how it was made fresh; None when it is a new lease."""
        lease = self.worker_lease()
        if self._pristine:
            self._pristine = False
            return lease
        busy: _StillBusy | None = None
        try:
            self._worker = self._reset(lease)
            return self._worker
        except NotFoundError as error:
            if error.code != "unknown_lease":
                raise
            # It ended behind the worker's back (released by a test, or expired while the
            # machine was suspended): lease another.
            self._give_up(lease, release=False)
        except _StillBusy as error:
            busy = error
            self._give_up(lease, release=True)
        replacement = self.worker_lease()
        self._pristine = False
        if busy is not None:
            warnings.warn(PgleaseWarning(
                f"pglease: database {lease.database} still had a session inside a transaction "
                f"or running a query {BUSY_PATIENCE_SECONDS:.0f} s after its test ended "
                f"({busy.message}); it was released and this test got a new lease, "
                f"{replacement.database}. Close or roll back the connections a test opens in "
                f"its teardown."), stacklevel=2)
        return replacement

    def done(self, lease: Lease, *, keep_seconds: float | None = None) -> Kept | None:
        """The test that had `lease` ended. With `keep_seconds` its database is kept for
        inspection that long, and the next test gets a new lease."""
        if keep_seconds is None:
            return None
        if self._worker is not None and lease.id == self._worker.id:
            self._worker = None
        self._renewer.discard(lease.id)
        self.client.release(lease.id, "keep", keep_seconds)
        return Kept(lease.database, lease.dsn, keep_seconds)

    def close(self) -> None:
        """Releases the worker's lease (recycled) and stops renewing."""
        lease, self._worker = self._worker, None
        try:
            if lease is not None:
                self._renewer.discard(lease.id)
                self.client.release(lease.id, "recycle")
        except NotFoundError:
            pass  # it expired already
        finally:
            self._renewer.stop()

    def _give_up(self, lease: Lease, *, release: bool) -> None:
        self._renewer.discard(lease.id)
        self._worker = None
        if release:
            try:
                # Recycling ends the sessions still on it, the one left in a transaction too.
                self.client.release(lease.id, "recycle")
            except NotFoundError:
                pass

    def _reset(self, lease: Lease) -> Lease:
        give_up_at = time.monotonic() + BUSY_PATIENCE_SECONDS
        pause = 0.05
        while True:
            try:
                return self.client.reset(lease.id)
            except ConflictError as error:
                if error.code != "sessions_busy":
                    raise
                if time.monotonic() + pause > give_up_at:
                    raise _StillBusy(error.message) from None
                time.sleep(pause)
                pause = min(pause * 2, error.retry_after or 1.0, 0.5)


class _StillBusy(PgleaseError):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message
