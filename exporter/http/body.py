"""Reading a request body within exporter.max_request_bytes, for every ingest route alike."""

from __future__ import annotations

from flask import request
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge


def read_body(limit: int) -> bytes:
    """The request body; more than `limit` bytes is a 413 also when the body is sent chunked.

    werkzeug checks MAX_CONTENT_LENGTH up front only against a declared Content-Length: a chunked
    body is silently cut at the limit, and a cut batch would be half ingested. Reading one byte
    past the limit tells "exactly at the limit" from "cut".
    """
    try:
        if request.content_length is not None or not request.environ.get("wsgi.input_terminated"):
            return request.get_data(cache=False)
        body = request.input_stream.read(limit + 1)
    except (OSError, ValueError) as error:
        # werkzeug's chunk decoder raises OSError on a bad chunk size, an extension or a cut stream:
        # the client's fault, so a 400 that says so, not a 500.
        raise BadRequest(f"malformed chunked body: {error}") from None
    if len(body) > limit:
        raise RequestEntityTooLarge()
    return body
