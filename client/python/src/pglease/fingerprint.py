"""The fingerprint of a suite's own migrations: a SHA-256 of the files it names."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Iterable

_SKIPPED_DIRS = {"__pycache__", ".git", "node_modules", ".venv", ".pytest_cache"}


def migration_files(paths: Iterable[str | os.PathLike[str]], base: str | os.PathLike[str]) -> list[Path]:
    """The files `paths` name, relative to `base`: files as they are, directories walked
    (hidden entries and caches left out); sorted by their path relative to `base`.
    FileNotFoundError names a missing path."""
    root = Path(base)
    found: set[Path] = set()
    for entry in paths:
        path = root / entry
        if path.is_file():
            found.add(path)
        elif path.is_dir():
            for directory, subdirs, files in os.walk(path):
                subdirs[:] = [d for d in subdirs if d not in _SKIPPED_DIRS and not d.startswith(".")]
                found.update(Path(directory) / f for f in files
                             if not f.startswith(".") and not f.endswith(".pyc"))
        else:
            raise FileNotFoundError(f"pglease: migration file or directory {entry!r} not found "
                                    f"(relative to {root})")
    return sorted(found, key=lambda path: _name(path, root))


def _name(path: Path, root: Path) -> str:
    return Path(os.path.relpath(path, root)).as_posix()


def fingerprint(paths: Iterable[str | os.PathLike[str]], base: str | os.PathLike[str],
                command: str = "") -> str:
    """64 hex digits: the SHA-256 of `command` and of each file's path (relative to `base`) and
    contents, so that any change to either builds a new template version. The JavaScript
    package computes the same value for the same files."""
    root = Path(base)
    digest = hashlib.sha256()
    digest.update(b"pglease-fingerprint-v1\0command\0" + command.encode() + b"\0")
    for path in migration_files(paths, root):
        name = _name(path, root)
        content = path.read_bytes()
        digest.update(b"file\0" + name.encode() + b"\0" + str(len(content)).encode() + b"\0")
        digest.update(content)
    return digest.hexdigest()
