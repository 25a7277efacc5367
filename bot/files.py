"""Writing files so that a crash leaves either the old or the new content, never a mix."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def fsync_dir(folder: Path) -> None:
    """Make a rename or a new entry in `folder` durable (POSIX: fsync the directory itself)."""
    handle = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write `data` to `path`: a temporary file beside it, fsynced, renamed over it, folder fsynced.

    Text is written as UTF-8 with newlines as given.
    """
    content = data.encode("utf-8") if isinstance(data, str) else data
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_files(folder: Path, names: list[str]) -> None:
    """fsync files written in `folder` (before publishing the folder with a rename)."""
    for name in names:
        with (folder / name).open("rb") as handle:
            os.fsync(handle.fileno())
    fsync_dir(folder)
