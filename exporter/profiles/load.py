"""Loading the reference profiles a config names: every file read safely and checked strictly.

`mlmon serve` and `mlmon config check` call :func:`load_profiles`; any problem is one
ProfileError naming the file, what is wrong and the fix, which the command line prints as one
line and exits 2. A profile is validated in full whether or not it carries a ``content_hash``
(the hash proves the file was not edited, not that it was sound when written).

A reference that is not a regular file (a FIFO, a device, a directory) is refused after a
``stat`` and before any read; the file is opened with ``O_NONBLOCK`` as well, so a FIFO swapped
in between the two calls cannot hang startup either.

    >>> load_profiles(load_config("examples/mlmon.yaml"))["fraud"].model
    'fraud'
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from exporter.config.model import MlmonConfig, ModelConfig
from exporter.profiles.checks import check_profile
from exporter.profiles.profile import Profile, ProfileError

# A profile is counts and edges: 500 features x 50 bins is well under 1 MiB. Anything far larger
# is not a profile, and reading it whole would only cost memory.
MAX_PROFILE_BYTES = 64 * 1024 * 1024

POINT_AT_A_PROFILE = "point `reference` at a profile JSON file written by `mlmon profile build`"
FILE_KINDS = {
    stat.S_IFDIR: "a directory", stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
}


def load_profiles(config: MlmonConfig) -> dict[str, Profile]:
    """The profile of every model with a file reference, by model name; raises ProfileError on the first bad one."""
    profiles = {}
    for model in config.models:
        path = config.reference_path(model)
        if path is not None:
            profiles[model.name] = load_profile(path, model)
    return profiles


def load_profile(path: Path, model: ModelConfig) -> Profile:
    """Read, parse and check one model's profile; every failure is a one-line ProfileError with the fix."""
    try:
        data = _parse(path, read_regular_file(path))
    except ProfileError as error:
        raise ProfileError(one_line(str(error))) from None
    rebuild = f"rebuild it with `mlmon profile build --model {model.name} DATA -o PROFILE`"
    try:
        profile = Profile.from_json(data)
        check_profile(profile, model)
    except ProfileError as error:
        raise ProfileError(one_line(f"{path}: {error}; {rebuild}")) from None
    except (ArithmeticError, AttributeError, LookupError, TypeError, ValueError, RecursionError) as error:
        # A shape the checks did not foresee is still a bad file, never a traceback.
        raise ProfileError(one_line(f"{path}: malformed profile ({type(error).__name__}); {rebuild}")) from None
    return profile


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


def _parse(path: Path, data: bytes) -> Any:
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        problem = "not UTF-8 text (a binary file?)"
    except (ValueError, RecursionError) as error:
        problem = f"not JSON ({str(error)[:120]})"
    raise ProfileError(one_line(f"{path}: {problem}; {POINT_AT_A_PROFILE}"))


def one_line(message: str) -> str:
    """Error text for a log line or a terminal: no newlines or control characters, bounded length."""
    text = "".join(ch if ch.isprintable() else " " for ch in message)
    return " ".join(text.split())[:600]
