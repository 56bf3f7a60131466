"""Errors of the pglease client: one base class, and the server's answers by status."""

from __future__ import annotations


class PgleaseError(Exception):
    """Anything the pglease client raises."""


class UnreachableError(PgleaseError):
    """No pgleased answered at the URL (refused, timed out, or the connection broke)."""

    def __init__(self, url: str, reason: str):
        super().__init__(f"cannot reach pgleased at {url}: {reason}")
        self.url = url
        self.reason = reason


class ApiError(PgleaseError):
    """pgleased answered with an error: its HTTP `status`, its `code` and `message`.

    `code` is the server's stable machine-readable code (`pool_exhausted`, `unknown_lease`,
    ...); `retry_after` is the `Retry-After` header in seconds, when it sent one.
    """

    def __init__(self, status: int, code: str, message: str, retry_after: float | None = None):
        super().__init__(f"{message} ({status} {code})")
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after


class BadRequestError(ApiError):
    """400: the request was refused (`invalid_argument`, `invalid_json`, ...)."""


class UnauthorizedError(ApiError):
    """401: the daemon has a token and the request carried none, or a wrong one."""


class NotFoundError(ApiError):
    """404: `unknown_template`, `unknown_lease`, `unknown_build`, `unknown_version` (no version
    with the fingerprint an acquire named), or `not_found` (no such path)."""


class ConflictError(ApiError):
    """409: `conflict` (a configured template's name), `sessions_busy` (reset while a session
    on the clone is in a transaction or running a query)."""


class UnavailableError(ApiError):
    """503: not now (`pool_exhausted`, `template_building`, `template_failed`, `backend_down`,
    `not_ready`); `retry_after` says when to ask again."""


_BY_STATUS = {400: BadRequestError, 401: UnauthorizedError, 404: NotFoundError,
              409: ConflictError, 503: UnavailableError}


def api_error(status: int, code: str, message: str, retry_after: float | None = None) -> ApiError:
    """The ApiError subclass for `status`."""
    return _BY_STATUS.get(status, ApiError)(status, code, message, retry_after)
