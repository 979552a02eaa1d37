"""Turn pydantic's validation errors into messages a person can act on.

Each message names the exact place in the file (``models[0].features[1].type``), what is
wrong, and what would be right.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from exporter.config.names import NAME_PATTERN


class ConfigError(Exception):
    """mlmon.yaml is invalid. ``problems`` holds one line per bad place; the CLI exits 2."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))

    def render(self) -> str:
        lines = [f"{self.source}: {len(self.problems)} problem(s)"]
        lines += [f"  {problem}" for problem in self.problems]
        return "\n".join(lines)


def format_location(loc: tuple[Any, ...]) -> str:
    """('models', 0, 'features', 1, 'type') -> 'models[0].features[1].type'."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif str(part).startswith(("function-", "tagged-union")):
            continue  # pydantic's internal validator names are noise to a user
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"


def _model_at(root: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """Walk the config models along a location to find the section an error is in."""
    current: Any = root
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(str(part))
        if field is None:
            return None
        current = first_model(field.annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def first_model(annotation: Any) -> Any:
    """The BaseModel inside list[X] / X | None / X, if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = first_model(arg)
        if found is not None:
            return found
    return None


def _describe(error: dict[str, Any], root: type[BaseModel]) -> str:
    kind, ctx, value = error["type"], error.get("ctx", {}), error.get("input")
    if kind == "literal_error":
        allowed = str(ctx.get("expected", "")).replace("'", "").replace(" or ", ", ")
        return f"{value!r} is not one of {allowed}"
    if kind == "extra_forbidden":
        section = _model_at(root, _without_branches(tuple(error["loc"][:-1])))
        allowed = ", ".join(section.model_fields) if section else "see `mlmon config schema`"
        return f"unknown key (a typo?); allowed here: {allowed}"
    if kind == "missing":
        return "is required"
    if kind == "string_pattern_mismatch":
        if ctx.get("pattern") == NAME_PATTERN:
            return f"{value!r} must start with a letter or _ and use only letters, digits, _ . - (at most 64)"
        if str(ctx.get("pattern", "")).startswith("^/"):
            return f"{value!r} must be an absolute path (a file holding the secret)"
        return f"{value!r} does not match the pattern {ctx.get('pattern')}"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    return f"{error['msg'].rstrip('.')} (got {value!r})" if value is not None and not isinstance(value, dict) else error["msg"]


# Names pydantic puts in a location for the branch of a union it tried; not keys of the file.
UNION_BRANCHES = ("str", "CaptureReference", "int")


def _without_branches(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(p for p in loc if p not in UNION_BRANCHES)


def format_validation_error(error: ValidationError, root: type[BaseModel]) -> list[str]:
    """One line per problem, deduplicated; union branches that only repeat each other are folded."""
    lines: list[str] = []
    for item in error.errors(include_url=False):
        loc = tuple(item["loc"])
        if len(loc) > 1 and loc[-2] == "reference" and loc[-1] in ("str", "CaptureReference"):
            # `reference: str | {capture: N}` reports a failure for each branch. A mapping was meant
            # to be {capture: N}: its own errors (one level deeper) say what is wrong, and the
            # "not a string" of the other branch is noise. Anything else gets one plain line.
            if isinstance(item.get("input"), dict):
                continue
            line = f"{format_location(loc[:-1])}: must be a profile path (string) or {{capture: N}} with N > 0"
        else:
            line = f"{format_location(_without_branches(loc))}: {_describe(item, root)}"
        if line not in lines:
            lines.append(line)
    return lines
