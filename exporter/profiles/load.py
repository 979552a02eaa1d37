"""Loading the reference profiles a config names: every file read safely and checked strictly.

`mlmon serve` and `mlmon config check` call :func:`load_profiles`; any problem is one
ProfileError naming the file, what is wrong and the fix, which the command line prints as one
line and exits 2. A profile is validated in full whether or not it carries a ``content_hash``
(the hash proves the file was not edited, not that it was sound when written).

Files are read by :func:`exporter.profiles.files.read_regular_file`: a FIFO, a device or a
directory is refused without a read that could block startup.

    >>> load_profiles(load_config("examples/mlmon.yaml"))["fraud"].model
    'fraud'
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from exporter.config.model import MlmonConfig, ModelConfig
from exporter.profiles.checks import check_profile
from exporter.profiles.files import POINT_AT_A_PROFILE, read_regular_file
from exporter.profiles.profile import Profile, ProfileError

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
