"""The local stack (exporter/tooling/localstack.py) as the tests use it.

Outside CI a missing binary skips the test with a loud reason; in CI (CI set) it fails, because
`make test` installs the binaries. A timeout fails the test with what was awaited.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import pytest

from exporter.tooling import localstack
from exporter.tooling.localstack import WebhookReceiver, free_port, http_json  # noqa: F401 (re-exported for tests)


def require_binary(name: str) -> str:
    """The binary's path; skip (outside CI) or fail (in CI) when it is missing."""
    try:
        return localstack.find_binary(name)
    except localstack.MissingBinary as error:
        if os.environ.get("CI"):
            pytest.fail(str(error))
        pytest.skip(str(error))


def wait_until(check: Callable[[], Any], timeout: float, interval: float = 0.25, what: str = "condition") -> Any:
    try:
        return localstack.wait_until(check, timeout, interval, what)
    except TimeoutError as error:
        pytest.fail(str(error))


class PrometheusProcess(localstack.PrometheusProcess):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        require_binary("prometheus")
        super().__init__(*args, **kwargs)

    def wait_for(self, check: Callable[[], Any], timeout: float = 30, what: str = "condition") -> Any:
        return wait_until(check, timeout, what=what)


class AlertmanagerProcess(localstack.AlertmanagerProcess):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        require_binary("prometheus-alertmanager")
        super().__init__(*args, **kwargs)
