"""pglease: fresh PostgreSQL databases for tests, leased from pgleased.

The client (`Client`) speaks pgleased's HTTP API; the pytest plugin (`pglease.pytest_plugin`,
loaded automatically once installed) gives each test its own database.
"""

from .client import Client, DEFAULT_URL, RELEASE_MODES
from .durations import parse_duration
from .errors import (ApiError, BadRequestError, ConflictError, NotFoundError, PgleaseError,
                     UnauthorizedError, UnavailableError, UnreachableError)
from .fingerprint import fingerprint, migration_files
from .lease import Build, Connection, Ensured, Lease, Reset
from .templates import MigrationError, TemplateVersion, build_template, run_migrations
from .worker import PgleaseWarning, WorkerDatabases

__version__ = "0.1.0"

__all__ = [
    "ApiError", "BadRequestError", "Build", "Client", "ConflictError", "Connection",
    "DEFAULT_URL", "Ensured", "Lease", "MigrationError", "NotFoundError", "PgleaseError",
    "PgleaseWarning", "RELEASE_MODES", "Reset", "TemplateVersion", "UnauthorizedError",
    "UnavailableError", "UnreachableError", "WorkerDatabases", "build_template", "fingerprint",
    "migration_files", "parse_duration", "run_migrations",
]
