"""Every answer of both listeners is JSON (or the exposition): one helper, so error bodies stay alike."""

from __future__ import annotations

from typing import Any

import orjson
from flask import Response


def json_response(payload: dict[str, Any], status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status=status, mimetype="application/json")
