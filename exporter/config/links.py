"""The `links:` section of mlmon.yaml: where a person's browser reaches mlmon's pages and Grafana.

The exporter listens on loopback and pod addresses that a browser rarely reaches (behind Kubernetes,
Prometheus's `instance` is a pod IP), so the URL of its pages is configuration: with it, every alert
carries a `page_url` annotation to its model's drift page (model, version, window and feature carried
over) and the Grafana dashboards link there; with `grafana_url`, alerts also carry a
`dashboard_url`. Unset, nothing links: no annotation and no dashboard link is written, and
`mlmon config check` prints a hint (docs/pages.md#links-to-the-pages).

A URL may hold `{model}` and `{version}` placeholders (one Service or host per model or per
version); each consumer fills them in its own templating language (Prometheus's Go templates,
Grafana's `${variables}`) through :func:`fill`.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

PLACEHOLDERS = ("{model}", "{version}")
_URL = re.compile(r"https?://[^\s/@?#]+(/[^\s?#]*)?")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check(value: str | None) -> str | None:
    if value is None:
        return None
    stripped = value.rstrip("/")
    example = stripped.replace("{model}", "m").replace("{version}", "v")
    if "{" in example or "}" in example:
        raise ValueError(f"{value!r}: the only placeholders are {' and '.join(PLACEHOLDERS)}")
    if not _URL.fullmatch(example):
        raise ValueError(f"{value!r} must be an http(s) URL without user:password@, query or fragment "
                         "(mlmon adds the path and query of each link)")
    return stripped


class LinksConfig(Strict):
    """URLs a person's browser reaches: alerts and dashboards link to them when set."""

    exporter_url: str | None = Field(
        None,
        description="The exporter's metrics listener as a browser reaches it (its pages `/` and `/models/<model>`), "
        "e.g. the Ingress in front of the exporter's Service: https://mlmon.example.com; `{model}` and `{version}` "
        "are filled in per link (https://{model}-mlmon.example.com). Behind a Service the page is one pod's view "
        "(docs/pages.md#links-to-the-pages). Unset: alerts carry no page_url and dashboards no link to the pages.",
    )
    grafana_url: str | None = Field(
        None,
        description="Grafana as a browser reaches it, e.g. https://grafana.example.com; alerts then carry a "
        "dashboard_url to the MLMon dashboards (Model for model alerts, Exporter for the exporter's). Unset: none.",
    )

    _check_urls = field_validator("exporter_url", "grafana_url")(lambda cls, v: _check(v))


def fill(template: str, model: str, version: str) -> str:
    """The URL with its placeholders replaced by `model` and `version` (already in the caller's syntax)."""
    return template.replace("{model}", model).replace("{version}", version)


def has_placeholder(template: str, name: str) -> bool:
    return "{" + name + "}" in template
