"""`alerting.act` and `alerting.actions`: what `mlmon act` does when an alert arrives (docs/remediation.md).

`mlmon rules build` routes the alerts each action's `matchers` select to a webhook receiver of
its own pointing at `mlmon act` (`alerting.act.url`), with `continue: true` so the human routes
still get them. `mlmon act` then runs exactly one kind of action per alert group and start time:

    command          an argv run without a shell; the alert's labels and annotations are
                     environment variables (MLMON_LABEL_<NAME>, MLMON_ANNOTATION_<NAME>)
    github_dispatch  POST /repos/{owner}/{repo}/dispatches (event_type, client_payload)
    argo_event       POST /api/v1/events/{namespace}/{discriminator} of an Argo Workflows server
    kubeflow_run     POST /apis/v2beta1/runs of Kubeflow Pipelines (a pipeline version, parameters)
    http_post        a templated JSON body to any URL

Secrets are `*_file` paths read at each run; bodies are templates of `action_templates.py`.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from exporter.config.action_templates import check_template
from exporter.config.alert_types import SECRET_FILE, AmDuration, Strict, Timing, _url
from exporter.config.matchers import Matcher, parse_matcher
from exporter.config.names import Name

DEFAULT_ACT_LISTEN = "127.0.0.1:8712"
ACTION_KINDS = ("command", "github_dispatch", "argo_event", "kubeflow_run", "http_post")


class ActRedis(Strict):
    """A Redis (or Valkey) every `mlmon act` replica shares: one dedupe record, one rate-limit budget."""

    url: str = Field(description="redis://[:password@]host:port/db (rediss:// for TLS, unix:// for a socket).")
    key_prefix: str = Field("mlmon:", max_length=64, description="Prefix of every key (act's are <prefix>act:...).")
    timeout: float = Field(
        1.0, gt=0, le=10, description="Seconds a Redis call may take; past it the webhook gets 503 and Alertmanager retries.",
    )

    @field_validator("url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        if not re.match(r"^(redis|rediss|unix)://", value):
            raise ValueError(f"alerting.act.redis.url {value!r} must start with redis://, rediss:// or unix://")
        return value


class ActServer(Strict):
    """The `mlmon act` process: where it listens, where Alertmanager finds it, what it keeps."""

    url: str = Field(
        "http://127.0.0.1:8712",
        description="Base URL Alertmanager posts to (`<url>/v1/alerts/<action>`); in Kubernetes the act Service.",
    )
    listen: str = Field(DEFAULT_ACT_LISTEN, description="HOST:PORT `mlmon act` listens on (`--listen` overrides).")
    dry_run: bool = Field(False, description="Record what every action would send and call nothing (`--dry-run`).")
    state_dir: str | None = Field(
        None, description="Folder for the dedupe record (actions.json), so a restart does not run an action twice; "
        "default exporter.state_dir, and in memory only when neither is set.",
    )
    bearer_token_file: SECRET_FILE | None = Field(
        None, description="Webhooks must send this bearer token; the generated Alertmanager receivers send it "
        "(mount the same file in both at this path).",
    )
    max_request_bytes: int = Field(1 << 20, ge=1024, description="Largest webhook body accepted (413 above).")
    dedupe_entries: int = Field(10_000, ge=10, description="Group/start-time keys remembered; the oldest go first (counted).")
    redis: ActRedis | None = Field(
        None, description="Share the dedupe record and the rate limits between act replicas in this Redis "
        "(then state_dir is not used); unset: each process keeps its own, so run one.",
    )
    records: int = Field(200, ge=1, description="Runs kept for `GET /actions`, newest first (with act.redis, "
                                                "in the list all replicas share).")
    queue: int = Field(100, ge=1, description="Runs waiting for a worker; beyond it a webhook gets 503 and Alertmanager retries.")
    workers: int = Field(4, ge=1, le=64, description="Runs in flight at once.")

    _check_url = field_validator("url")(lambda cls, v: _url(v).rstrip("/"))


class Retry(Strict):
    attempts: int = Field(3, ge=1, le=10, description="Tries per run, the first included; then the run counts as failed.")
    backoff: float = Field(1.0, gt=0, le=60, description="Seconds before the second try; doubled before each next one.")
    max_backoff: float = Field(30.0, gt=0, le=600, description="Longest wait between two tries.")
    timeout: float = Field(10.0, gt=0, le=3600, description="Seconds one try (a request, a command) may take.")


class RateLimit(Strict):
    runs: int = Field(1, ge=1, description="At most this many runs of the action ...")
    per: AmDuration = Field("1h", description="... in any period this long; more are skipped and counted.")


class CommandAction(Strict):
    argv: list[str] = Field(min_length=1, description="Program and arguments, run without a shell; no templates.")
    env: dict[str, str] = Field(default_factory=dict, description="Fixed environment variables added to the run's.")


class GithubDispatch(Strict):
    repository: str = Field(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", description="owner/repo.")
    event_type: str = Field("mlmon-${labels.alertname}", description="Template; what `on.repository_dispatch.types` selects.")
    token_file: SECRET_FILE = Field(description="File holding a token allowed to dispatch (contents: write).")
    api_url: str = Field("https://api.github.com", description="GitHub's API (GitHub Enterprise: https://HOST/api/v3).")
    client_payload: dict[str, Any] | None = Field(
        None, description="Template of client_payload (GitHub allows 10 top-level keys); default: the alert group.",
    )

    _check_url = field_validator("api_url")(lambda cls, v: _url(v).rstrip("/"))

    @field_validator("client_payload")
    @classmethod
    def _ten_keys(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and len(value) > 10:
            raise ValueError(f"GitHub accepts at most 10 top-level client_payload keys, not {len(value)}")
        return value


class ArgoEvent(Strict):
    url: str = Field(description="The Argo Server, e.g. https://argo-server.argo:2746.")
    namespace: Name = Field(description="Namespace of the WorkflowEventBinding.")
    discriminator: Name = Field(description="The event's discriminator (the binding selects on it).")
    token_file: SECRET_FILE | None = Field(None, description="File holding a service-account token (sent as Bearer).")
    payload: Any = Field(None, description="Template of the event body; default: the alert group.")

    _check_url = field_validator("url")(lambda cls, v: _url(v).rstrip("/"))


class KubeflowRun(Strict):
    url: str = Field(description="The KFP API server, e.g. http://ml-pipeline.kubeflow:8888.")
    pipeline_id: str = Field(min_length=1)
    pipeline_version_id: str = Field(min_length=1)
    experiment_id: str | None = None
    display_name: str = Field("mlmon ${labels.alertname} ${labels.model} ${starts_at}", description="Template.")
    parameters: dict[str, Any] = Field(default_factory=dict, description="Template of runtime_config.parameters.")
    token_file: SECRET_FILE | None = Field(None, description="File holding a bearer token, if the API needs one.")

    _check_url = field_validator("url")(lambda cls, v: _url(v).rstrip("/"))


class HttpPost(Strict):
    url: str = Field(description="Endpoint; the body is sent as JSON.")
    method: Literal["POST", "PUT"] = "POST"
    body: Any = Field(None, description="Template of the JSON body; default: the alert group.")
    headers: dict[str, str] = Field(default_factory=dict, description="Fixed extra headers (no secrets: use the file).")
    bearer_token_file: SECRET_FILE | None = None

    _check_url = field_validator("url")(lambda cls, v: _url(v))

    @field_validator("headers")
    @classmethod
    def _no_auth_header(cls, value: dict[str, str]) -> dict[str, str]:
        if any(k.lower() == "authorization" for k in value):
            raise ValueError("put credentials in bearer_token_file, not in headers")
        return value


class Action(Timing):
    """One action: the alerts it runs on, what it does, how often and how hard it tries."""

    name: Name = Field(description="Names the action in metrics, records and its Alertmanager receiver mlmon-act-<name>.")
    matchers: list[str] = Field(
        min_length=1, description='Alertmanager matchers every alert of the action matches, e.g. alertname="MLMonFeatureDrift".',
    )
    on_resolved: bool = Field(False, description="Also run when the group resolves (default: firing only).")
    dry_run: bool = Field(False, description="Record what this action would send; call nothing.")
    rate_limit: RateLimit = Field(default_factory=RateLimit, description="At most `runs` runs per `per` (default 1 an hour).")
    retry: Retry = Field(default_factory=Retry, description="Tries of a failing endpoint or command before the run fails.")
    command: CommandAction | None = Field(None, description="Run a program; the alert is in its environment.")
    github_dispatch: GithubDispatch | None = Field(None, description="A GitHub repository_dispatch event.")
    argo_event: ArgoEvent | None = Field(None, description="An Argo Workflows event.")
    kubeflow_run: KubeflowRun | None = Field(None, description="A Kubeflow Pipelines run of a pipeline version.")
    http_post: HttpPost | None = Field(None, description="A JSON body to any URL.")

    @field_validator("matchers")
    @classmethod
    def _parse(cls, value: list[str]) -> list[str]:
        return [parse_matcher(text).render() for text in value]  # canonical text: what the route writes

    @model_validator(mode="after")
    def _one_kind(self) -> Action:
        kinds = [k for k in ACTION_KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(f"set exactly one of {', '.join(ACTION_KINDS)} (got {', '.join(kinds) or 'none'})")
        spec = getattr(self, kinds[0])
        for field in ("event_type", "client_payload", "payload", "display_name", "parameters", "body"):
            if hasattr(spec, field):
                check_template(getattr(spec, field), f"{kinds[0]}.{field}")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ACTION_KINDS if getattr(self, k) is not None)

    @property
    def spec(self) -> Any:
        return getattr(self, self.kind)

    def parsed_matchers(self) -> list[Matcher]:
        return [parse_matcher(text) for text in self.matchers]


def receiver_name(action: Action) -> str:
    """The Alertmanager receiver that feeds one action (one per action: see alertmanager.py)."""
    return f"mlmon-act-{action.name}"


def webhook_path(action_name: str) -> str:
    return f"/v1/alerts/{action_name}"
