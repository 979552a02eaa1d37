"""Reading a reference file without ever blocking: regular files only, opened non-blocking, size-capped;
and the one crash-safe way state files (snapshots, promoted references, the act dedupe record) are written.

A reference that is not a regular file (a FIFO, a device, a directory) is refused after a
``stat`` and before any read; the file is opened with ``O_NONBLOCK`` as well, so a FIFO swapped
in between the two calls cannot hang startup either (``read`` on a FIFO opened that way returns
at once, and the ``fstat`` after ``open`` refuses it anyway).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from exporter.profiles.profile import ProfileError

# A profile is counts and edges: 500 features x 50 bins is well under 1 MiB. Anything far larger
# is not a profile, and reading it whole would only cost memory.
MAX_PROFILE_BYTES = 64 * 1024 * 1024

POINT_AT_A_PROFILE = "point `reference` at a profile JSON file written by `mlmon profile build`"
FILE_KINDS = {
    stat.S_IFDIR: "a directory", stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
}


def read_regular_file(path: Path, limit: int = MAX_PROFILE_BYTES) -> bytes:
    """The bytes of a regular file; anything else is refused without a read that could block."""
    fix = POINT_AT_A_PROFILE
    try:
        kind = stat.S_IFMT(os.stat(path).st_mode)  # follows symlinks; a loop is ELOOP here
        if kind != stat.S_IFREG:
            raise ProfileError(f"{path}: is {FILE_KINDS.get(kind, 'not a regular file')}, not a regular file; {fix}")
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError as error:
        raise ProfileError(f"{path}: cannot read ({error.strerror}); {fix}") from None
    try:
        info = os.fstat(fd)  # the file opened may not be the file stat()ed a moment ago
        if not stat.S_ISREG(info.st_mode):
            raise ProfileError(f"{path}: is not a regular file; {fix}")
        if info.st_size > limit:
            raise ProfileError(f"{path}: {info.st_size} bytes is too large for a profile (limit {limit}); {fix}")
        with os.fdopen(fd, "rb", closefd=False) as file:
            data = file.read(limit + 1)
    except OSError as error:
        raise ProfileError(f"{path}: cannot read ({error.strerror}); {fix}") from None
    finally:
        os.close(fd)
    if len(data) > limit:  # grew after fstat
        raise ProfileError(f"{path}: too large for a profile (limit {limit} bytes); {fix}")
    return data


def write_atomically(path: Path, data: bytes) -> None:
    """Crash-safe write: a temporary file beside the target, fsync, rename over it, fsync the folder, so a
    crash leaves the old file or the new one, never half of either."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
