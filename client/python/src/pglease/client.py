"""A client of pgleased's HTTP API (proto/openapi.yaml), on the standard library alone."""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
import urllib.parse
from typing import Any, Mapping

from .errors import ApiError, PgleaseError, UnreachableError, api_error
from .lease import Ensured, Lease, Build

DEFAULT_URL = "http://127.0.0.1:7432"
RELEASE_MODES = ("recycle", "reuse", "keep")


def _seconds(value: float, name: str, minimum: int = 1) -> int:
    """Whole seconds for the API, at least `minimum`."""
    if value < 0:
        raise ValueError(f"{name} must not be negative, not {value}")
    return max(minimum, round(value))


class Client:
    """Talks to one pgleased over one kept-alive HTTP connection; safe to share between threads
    (calls are serialized).

    `url` defaults to `$PGLEASE_URL`, else http://127.0.0.1:7432; `token` to `$PGLEASE_TOKEN`.
    `timeout` bounds every call (plus the `wait` a call asks the server for); while pgleased is
    starting it answers `503 not_ready`, and calls are made again until `timeout` has passed.
    """

    def __init__(self, url: str | None = None, token: str | None = None, timeout: float = 30.0):
        self.url = (url or os.environ.get("PGLEASE_URL") or DEFAULT_URL).rstrip("/")
        self.token = token if token is not None else os.environ.get("PGLEASE_TOKEN") or None
        self.timeout = timeout
        parsed = urllib.parse.urlsplit(self.url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"pglease URL must look like http://host:port, not {self.url!r}")
        self._scheme = parsed.scheme
        self._host = parsed.hostname
        self._port = parsed.port or (443 if parsed.scheme == "https" else 80)
        self._prefix = parsed.path.rstrip("/")
        self._connection: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ leases

    def acquire(self, template: str, *, ttl: float | None = None, wait: float | None = None,
                owner: str | None = None, labels: Mapping[str, str] | None = None,
                fingerprint: str | None = None) -> Lease:
        """Leases a clone of `template` for `ttl` seconds, waiting up to `wait` seconds for one
        (both default to the template's settings). With `fingerprint` (as given to
        ensure_template, or as a lease reports it) the clone is of exactly that version; raises
        NotFoundError `unknown_version` when the template has none. Default: the newest."""
        body: dict[str, Any] = {}
        if ttl is not None:
            body["ttl_seconds"] = _seconds(ttl, "ttl")
        if wait is not None:
            body["wait_seconds"] = _seconds(wait, "wait", minimum=0)
        if owner:
            body["owner"] = owner
        if labels:
            body["labels"] = dict(labels)
        if fingerprint:
            body["fingerprint"] = fingerprint
        answer = self._call("POST", f"/v1/templates/{_path(template)}/leases", body,
                            extra_wait=wait if wait is not None else 30.0)
        return Lease.from_json(answer)

    def renew(self, lease_id: str, ttl: float | None = None) -> Lease:
        """Moves the lease's expiry to now + `ttl` seconds (default the template's TTL)."""
        body = {} if ttl is None else {"ttl_seconds": _seconds(ttl, "ttl")}
        return Lease.from_json(self._call("POST", f"/v1/leases/{_path(lease_id)}/renew", body))

    def reset(self, lease_id: str) -> Lease:
        """Brings the leased clone back to the template's state; the lease (id, database, DSN,
        expiry) stays, and the answer's `reset` says whether it was reset in place (idle
        sessions stay connected) or cloned again (sessions ended) and why. Raises
        ConflictError `sessions_busy` (with `retry_after`) while a session on the clone is
        inside a transaction or running a query; the message names their pids."""
        return Lease.from_json(self._call("POST", f"/v1/leases/{_path(lease_id)}/reset", {}))

    def release(self, lease_id: str, mode: str = "recycle", keep: float | None = None) -> None:
        """Ends the lease: `recycle` (made fresh for the next lease), `reuse` (it wrote nothing:
        back to the pool as it is) or `keep` (kept for inspection for `keep` seconds, default
        the template's `keep_seconds`)."""
        if mode not in RELEASE_MODES:
            raise ValueError(f"release mode must be one of {', '.join(RELEASE_MODES)}, not {mode!r}")
        query = {"mode": mode}
        if keep is not None:
            if mode != "keep":
                raise ValueError("keep applies to mode='keep' only")
            query["keep_seconds"] = str(_seconds(keep, "keep"))
        self._call("DELETE", f"/v1/leases/{_path(lease_id)}?{urllib.parse.urlencode(query)}")

    def lease(self, lease_id: str) -> Lease:
        """The live lease with this id (NotFoundError `unknown_lease` once it ended)."""
        return Lease.from_json(self._call("GET", f"/v1/leases/{_path(lease_id)}"))

    def leases(self) -> list[dict[str, Any]]:
        """Every live lease, as listed (without ids, DSNs and passwords)."""
        return self._call("GET", "/v1/leases")["leases"]

    # ------------------------------------------------------------------ templates

    def template(self, name: str) -> dict[str, Any]:
        """A template's state, fingerprint, error and pool counts."""
        return self._call("GET", f"/v1/templates/{_path(name)}")

    def templates(self) -> list[dict[str, Any]]:
        return self._call("GET", "/v1/templates")["templates"]

    def ensure_template(self, name: str, fingerprint: str, *, wait: float | None = None,
                        build_ttl: float | None = None) -> Ensured:
        """Asks for client-initialized template `name` at `fingerprint`: `ready`, or `build`
        when this caller must migrate `build.dsn` and then finalize or abort. Raises
        UnavailableError `template_building` when another caller builds it for longer than
        `wait` seconds."""
        body: dict[str, Any] = {"fingerprint": fingerprint}
        if wait is not None:
            body["wait_seconds"] = _seconds(wait, "wait", minimum=0)
        if build_ttl is not None:
            body["build_ttl_seconds"] = _seconds(build_ttl, "build_ttl")
        answer = self._call("PUT", f"/v1/templates/{_path(name)}", body,
                            extra_wait=wait if wait is not None else 30.0)
        build = Build.from_json(answer["build"]) if answer.get("build") else None
        return Ensured(state=answer["state"], template=answer["template"], build=build)

    def finalize_build(self, name: str, fingerprint: str, build_id: str) -> dict[str, Any]:
        """Declares the build's migrations done; the template is ready at `fingerprint`."""
        return self._call("POST", f"/v1/templates/{_path(name)}/builds/{_path(fingerprint)}/finalize",
                          {"build_id": build_id})

    def abort_build(self, name: str, fingerprint: str, build_id: str) -> None:
        """Gives the build up; the next caller asking for `fingerprint` builds it."""
        self._call("POST", f"/v1/templates/{_path(name)}/builds/{_path(fingerprint)}/abort",
                   {"build_id": build_id})

    # ------------------------------------------------------------------ health

    def ready(self) -> bool:
        """True when `/readyz` answers 200."""
        try:
            self._call("GET", "/readyz", retry_not_ready=False)
            return True
        except ApiError:
            return False

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.url!r})"

    # ------------------------------------------------------------------ transport

    def _call(self, method: str, target: str, body: Any = None, extra_wait: float = 0.0,
              retry_not_ready: bool = True) -> Any:
        give_up_at = time.monotonic() + self.timeout
        while True:
            try:
                return self._exchange(method, target, body, self.timeout + extra_wait)
            except ApiError as error:
                pause = min(max(error.retry_after or 1.0, 1.0), 5.0)
                if (not retry_not_ready or error.status != 503 or error.code != "not_ready"
                        or time.monotonic() + pause >= give_up_at):
                    raise
                time.sleep(pause)

    def _exchange(self, method: str, target: str, body: Any, limit: float) -> Any:
        payload = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json", "User-Agent": "pglease-python"}
        if payload is not None:
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        with self._lock:
            for attempt in range(2):
                reused = self._connection is not None
                connection = self._open(limit)
                try:
                    connection.request(method, self._prefix + target, body=payload, headers=headers)
                    response = connection.getresponse()
                    data = response.read()
                except (OSError, http.client.HTTPException) as error:
                    connection.close()
                    self._connection = None
                    # A kept-alive connection the server closed meanwhile: once more, fresh.
                    if reused and attempt == 0 and not isinstance(error, TimeoutError):
                        continue
                    raise UnreachableError(self.url, _describe(error)) from None
                if response.will_close:
                    connection.close()
                    self._connection = None
                return _decode(response, data, method, target)
        raise AssertionError("unreachable")

    def _open(self, limit: float) -> http.client.HTTPConnection:
        if self._connection is None:
            kind = (http.client.HTTPSConnection if self._scheme == "https"
                    else http.client.HTTPConnection)
            self._connection = kind(self._host, self._port, timeout=limit)
        else:
            self._connection.timeout = limit
            if self._connection.sock is not None:
                self._connection.sock.settimeout(limit)
        return self._connection


def _path(segment: str) -> str:
    return urllib.parse.quote(str(segment), safe="")


def _describe(error: BaseException) -> str:
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, TimeoutError):
        return "timed out"
    return str(error) or type(error).__name__


def _decode(response: http.client.HTTPResponse, data: bytes, method: str, target: str) -> Any:
    parsed: Any = None
    if data:
        try:
            parsed = json.loads(data)
        except ValueError:
            parsed = None
    if response.status >= 400:
        code, message = f"http_{response.status}", f"pgleased answered {response.status} to {method} {target}"
        if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
            code = parsed["error"].get("code") or code
            message = parsed["error"].get("message") or message
        retry_after = response.getheader("Retry-After")
        try:
            seconds = float(retry_after) if retry_after else None
        except ValueError:
            seconds = None
        raise api_error(response.status, code, message, seconds)
    if data and parsed is None:
        raise PgleaseError(f"pgleased sent a body that is not JSON to {method} {target}")
    return parsed
