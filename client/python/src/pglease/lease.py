"""What pgleased hands out: a lease on a clone, and a build of a client-initialized template."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any, Mapping


def parse_timestamp(text: str) -> datetime:
    """An RFC 3339 UTC timestamp as pgleased writes it (`2026-11-22T03:14:26.123Z`)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclasses.dataclass(frozen=True)
class Connection:
    """Where a database is and how to log in to it."""

    database: str
    dsn: str
    host: str
    port: int
    user: str
    password: str

    def env(self) -> dict[str, str]:
        """`DATABASE_URL` and libpq's `PG*` variables for this database."""
        return {"DATABASE_URL": self.dsn, "PGHOST": self.host, "PGPORT": str(self.port),
                "PGUSER": self.user, "PGPASSWORD": self.password, "PGDATABASE": self.database}


@dataclasses.dataclass(frozen=True)
class Reset:
    """How a reset made the database fresh: `result` `reset` (undone in place, sessions kept)
    or `reclone` (sessions ended, dropped and cloned again under the same name), with the
    server's `reason` for a reclone (empty after a reset in place)."""

    result: str
    reason: str


@dataclasses.dataclass(frozen=True)
class Lease(Connection):
    """One worker's right to one clone until `expires_at`; whoever holds `id` may renew,
    reset or release it. `reset` says how the last reset went, on the lease a reset returned
    (None on a lease as acquired)."""

    id: str
    template: str
    fingerprint: str
    owner: str
    labels: Mapping[str, str]
    acquired_at: datetime
    expires_at: datetime
    backend: str
    reset: Reset | None = None

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> "Lease":
        reset = body.get("reset")
        return cls(id=body["id"], template=body["template"], fingerprint=body["fingerprint"],
                   database=body["database"], dsn=body["dsn"], host=body["host"],
                   port=int(body["port"]), user=body["user"], password=body["password"],
                   owner=body.get("owner", ""), labels=dict(body.get("labels") or {}),
                   acquired_at=parse_timestamp(body["acquired_at"]),
                   expires_at=parse_timestamp(body["expires_at"]), backend=body["backend"],
                   reset=Reset(reset["result"], reset.get("reason", "")) if reset else None)

    def __repr__(self) -> str:  # no password in tracebacks and logs
        return (f"Lease(id={self.id[:8]}…, template={self.template!r}, "
                f"database={self.database!r}, expires_at={self.expires_at.isoformat()})")


@dataclasses.dataclass(frozen=True)
class Build(Connection):
    """An empty template database this caller must migrate, then finalize or abort before
    `expires_at`."""

    id: str
    template: str
    fingerprint: str
    expires_at: datetime

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> "Build":
        return cls(id=body["id"], template=body["template"], fingerprint=body["fingerprint"],
                   database=body["database"], dsn=body["dsn"], host=body["host"],
                   port=int(body["port"]), user=body["user"], password=body["password"],
                   expires_at=parse_timestamp(body["expires_at"]))

    def __repr__(self) -> str:
        return f"Build(template={self.template!r}, fingerprint={self.fingerprint!r})"


@dataclasses.dataclass(frozen=True)
class Ensured:
    """The answer to ensure_template: `state` is `ready`, or `build` with `build` set, and
    `template` is the template's detail (name, fingerprint, state, error, source, pool)."""

    state: str
    template: Mapping[str, Any]
    build: Build | None = None
