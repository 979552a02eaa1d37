"""The `alerting:` section of mlmon.yaml: receivers, routes, alert thresholds and rule packaging.

`mlmon rules build` turns this into Prometheus rules and an Alertmanager config. Secrets never
appear here: every credential is a `*_file` path that Alertmanager reads at run time, so the
generated files can be committed. Receiver kinds map onto Alertmanager 0.25 receiver configs:

    email      -> email_configs      (auth_password_file)
    slack      -> slack_configs      (api_url_file)
    pagerduty  -> pagerduty_configs  (routing_key_file, Events API v2)
    opsgenie   -> opsgenie_configs   (api_key_file)
    msteams    -> webhook_configs to a prometheus-msteams bridge (Alertmanager < 0.26 has no
                  native Teams receiver; the Teams connector URL lives in the bridge's config)
    webhook    -> webhook_configs    (bearer token by credentials_file)
    sns        -> sns_configs        (topic_arn, or phone_number for SMS; AWS credentials come
                  from the pod's role or the AWS credentials file, never from here)
    sms        -> webhook_configs to an SMS gateway (e.g. a Twilio/MessageBird bridge)
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from exporter.config.actions import Action, ActServer
from exporter.config.alert_types import SECRET_FILE, AmDuration, Strict, Timing, _url  # noqa: F401 (re-exported)
from exporter.config.names import Name, repeated

SEVERITIES = ("critical", "warning", "info")
Severity = Literal["critical", "warning", "info"]

RUNBOOK_PLACEHOLDER = "{alert}"


def runbook_url(base: str, alert: str) -> str:
    """`https://wiki/ml/{alert}` -> `https://wiki/ml/MLMonFeatureDrift` (wikis have no `.md` pages);
    a base without the placeholder keeps the repository layout, `<base>/<AlertName>.md`."""
    if RUNBOOK_PLACEHOLDER in base:
        return base.replace(RUNBOOK_PLACEHOLDER, alert)
    return f"{base.rstrip('/')}/{alert}.md"


class EmailReceiver(Strict):
    to: str = Field(description="Recipient address(es), comma-separated.")
    from_: str = Field(alias="from", description="Sender address.")
    smarthost: str = Field(description="SMTP server HOST:PORT.")
    auth_username: str | None = None
    auth_password_file: SECRET_FILE | None = None
    require_tls: bool = True


class SlackReceiver(Strict):
    api_url_file: SECRET_FILE = Field(description="File holding the Slack incoming-webhook URL.")
    channel: str = Field(description="Channel, e.g. #ml-alerts.")


class PagerDutyReceiver(Strict):
    routing_key_file: SECRET_FILE = Field(description="File holding the Events API v2 integration key.")


class OpsgenieReceiver(Strict):
    api_key_file: SECRET_FILE = Field(description="File holding the Opsgenie API key.")
    responders_team: str | None = Field(None, description="Opsgenie team that receives the alert.")


class MsTeamsReceiver(Strict):
    bridge_url: str = Field(description="URL of a prometheus-msteams bridge route that posts to Teams.")

    _check_url = field_validator("bridge_url")(lambda cls, v: _url(v))


class WebhookReceiver(Strict):
    url: str = Field(description="Endpoint receiving Alertmanager's JSON payload.")
    bearer_token_file: SECRET_FILE | None = Field(None, description="File holding a bearer token, if the endpoint needs one.")

    _check_url = field_validator("url")(lambda cls, v: _url(v))


class SnsReceiver(Strict):
    region: str
    topic_arn: str | None = None
    phone_number: str | None = Field(None, description="E.164 number; SNS sends the alert as an SMS.")
    role_arn: str | None = Field(None, description="Role to assume; credentials come from the environment.")

    @model_validator(mode="after")
    def _one_target(self) -> SnsReceiver:
        if (self.topic_arn is None) == (self.phone_number is None):
            raise ValueError("set exactly one of topic_arn or phone_number")
        return self


class SmsReceiver(Strict):
    gateway_url: str = Field(description="SMS gateway bridge that accepts Alertmanager webhooks.")
    bearer_token_file: SECRET_FILE | None = None

    _check_url = field_validator("gateway_url")(lambda cls, v: _url(v))


RECEIVER_KINDS = ("email", "slack", "pagerduty", "opsgenie", "msteams", "webhook", "sns", "sms")


class Receiver(Strict):
    """A named destination; exactly one kind is set."""

    name: Name
    send_resolved: bool = True
    email: EmailReceiver | None = None
    slack: SlackReceiver | None = None
    pagerduty: PagerDutyReceiver | None = None
    opsgenie: OpsgenieReceiver | None = None
    msteams: MsTeamsReceiver | None = None
    webhook: WebhookReceiver | None = None
    sns: SnsReceiver | None = None
    sms: SmsReceiver | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Receiver:
        kinds = [k for k in RECEIVER_KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(f"set exactly one of {', '.join(RECEIVER_KINDS)} (got {', '.join(kinds) or 'none'})")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in RECEIVER_KINDS if getattr(self, k) is not None)


class Route(Timing):
    """Alerts whose labels match every given field go to `receiver`; unset fields match anything."""

    receiver: Name
    team: Name | None = None
    severity: Severity | None = None
    model: Name | None = None
    continue_: bool = Field(False, alias="continue", description="Keep matching later routes after this one.")


class RootRoute(Timing):
    receiver: Name = Field(description="Where alerts that match no route go.")
    group_by: list[str] = Field(default_factory=lambda: ["alertname", "model", "model_version"])
    group_wait: AmDuration = "30s"
    group_interval: AmDuration = "5m"
    repeat_interval: AmDuration = "4h"


class DataQualityThresholds(Strict):
    """Per-feature rates (of predictions) above which a data-quality alert fires (warning)."""

    missing_ratio: float = Field(0.05, gt=0, le=1, description="Missing or null values per prediction.")
    nonfinite_ratio: float = Field(0.01, gt=0, le=1, description="NaN/inf values per prediction (numeric features).")
    out_of_range_ratio: float = Field(0.05, gt=0, le=1, description="Values outside the reference [min, max].")
    unseen_category_ratio: float = Field(0.05, gt=0, le=1, description="Categories not in the reference.")
    type_error_ratio: float = Field(0.01, gt=0, le=1, description="Values of the wrong type.")
    rejected_ratio: float = Field(0.01, gt=0, le=1, description="Records rejected whole, per record received.")
    rate_window: AmDuration = Field("10m", description="Range of the rate() behind every ratio.")
    for_: AmDuration = Field("15m", alias="for", description="How long a ratio must stay high before it fires.")


class TrafficThresholds(Strict):
    no_predictions_for: AmDuration = Field("15m", description="Zero predictions for this long pages the owner.")
    anomaly_z: float = Field(
        3.0, gt=0, description="Z-score band of prediction volume and of the mean numeric prediction against the past week."
    )
    anomaly_for: AmDuration = Field("30m", description="How long volume or mean must stay outside its band before it fires.")
    anomaly_min_rate: float = Field(
        0.1, ge=0, description="Predictions/s below which volume and mean anomalies are ignored (quiet models are noisy)."
    )
    anomaly_min_history: AmDuration = Field(
        "1d", description="History a model's band needs before volume and mean anomalies can fire: a band of a few "
        "minutes (a new model, a fresh Prometheus) has no spread worth comparing against.",
    )


class DriftAlerting(Strict):
    """How long drift must last before its alerts fire (the thresholds are each model's `drift:`)."""

    for_: AmDuration = Field("15m", alias="for", description="Drift must hold this long before an alert fires.")


class QualityAlerting(Strict):
    """Alerts on label-based quality (thresholds are the models' `quality.thresholds`) and on labels."""

    min_samples: int = Field(200, ge=1, description="No quality alert on fewer labelled predictions in the window.")
    for_: AmDuration = Field("30m", alias="for", description="How long a quality bound must be broken before it fires.")
    min_labelled_ratio: float | None = Field(
        None, gt=0, le=1, description="Alert when a version's labelled fraction stays below this (off when unset)."
    )
    max_label_delay: AmDuration | None = Field(
        None, description="Alert when the 90th percentile of label delay exceeds this (off when unset)."
    )


class BiasAlerting(Strict):
    """Bounds of the bias measures of models with `segments:`."""

    disparate_impact_min: float = Field(0.8, gt=0, le=1, description="Four-fifths rule: flag ratios below this.")
    max_difference: float = Field(
        0.1, gt=0, le=1, description="Flag parity / opportunity / odds differences above this."
    )
    min_segment_samples: int = Field(100, ge=1, description="No verdict while the smallest segment is smaller.")
    for_: AmDuration = Field("1h", alias="for", description="How long a bias bound must be broken before it fires.")


class ExporterAlerting(Strict):
    job: str = Field("mlmon", description="The Prometheus `job` label of the exporter's scrape targets.")
    team: Name = Field("platform", description="`team` label on alerts about the exporter itself.")
    down_for: AmDuration = Field("5m", description="How long the exporter may be down or absent before it pages.")
    scrape_duration_warning_seconds: float = Field(5.0, gt=0, description="Render time that threatens scrape timeouts.")


class AlertingConfig(Strict):
    """Alert thresholds beyond the per-model drift ones, and where alerts are sent."""

    runbook_url: str = Field(
        "https://github.com/mlmon/mlmon/blob/main/docs/runbooks",
        description="Base URL of the runbooks; each alert links <base>/<AlertName>.md. A URL with an `{alert}` "
        "placeholder is used as written instead (`https://wiki.example.com/ml/{alert}`: no `.md` added).",
    )
    rule_labels: dict[str, str] = Field(
        default_factory=dict,
        description="Extra labels on the PrometheusRule object (kube-prometheus-stack selects on `release`).",
    )
    exporter: ExporterAlerting = Field(default_factory=ExporterAlerting)
    data_quality: DataQualityThresholds = Field(default_factory=DataQualityThresholds)
    traffic: TrafficThresholds = Field(default_factory=TrafficThresholds)
    drift: DriftAlerting = Field(default_factory=DriftAlerting)
    quality: QualityAlerting = Field(default_factory=QualityAlerting)
    bias: BiasAlerting = Field(default_factory=BiasAlerting)
    receivers: list[Receiver] = Field(default_factory=list)
    route: RootRoute | None = Field(None, description="The root of the routing tree; required with receivers.")
    routes: list[Route] = Field(default_factory=list, description="Child routes, tried in order.")
    act: ActServer = Field(default_factory=ActServer, description="The `mlmon act` process (docs/remediation.md).")
    actions: list[Action] = Field(
        default_factory=list,
        description="Alerts that run an action (a command, a GitHub dispatch, an Argo event, a Kubeflow run, a POST) "
        "through `mlmon act`; each gets its own Alertmanager route with `continue: true`.",
    )

    @field_validator("runbook_url")
    @classmethod
    def _check_base(cls, value: str) -> str:
        _url(runbook_url(value, "Alert"))  # the placeholder filled in must be a URL
        return value.rstrip("/")

    @model_validator(mode="after")
    def _receivers_unique(self) -> AlertingConfig:
        duplicates = repeated(r.name for r in self.receivers)
        if duplicates:
            raise ValueError(f"receiver names must be unique; repeated: {', '.join(duplicates)}")
        duplicates = repeated(a.name for a in self.actions)
        if duplicates:
            raise ValueError(f"action names must be unique; repeated: {', '.join(duplicates)}")
        if self.receivers and self.route is None:
            raise ValueError("`route:` (the root receiver and timings) is required when receivers are declared")
        return self

    def receiver(self, name: str) -> Receiver | None:
        return next((r for r in self.receivers if r.name == name), None)


def reference_problems(alerting: AlertingConfig, models: dict[str, str | None]) -> list[str]:
    """Names used in routes that point nowhere, each with its exact place in the file.

    `models` maps model name -> team. Pydantic validators only know their own section, so these
    cross-references are checked after the whole file has validated.
    """
    declared = [r.name for r in alerting.receivers]
    teams = sorted({t for t in models.values() if t} | {alerting.exporter.team})
    problems = []

    def receiver_problem(where: str, name: str) -> None:
        if name not in declared:
            problems.append(
                f"{where}.receiver: {name!r} is not a declared receiver; declared: {', '.join(declared) or 'none'}"
            )

    if alerting.route is not None:
        receiver_problem("alerting.route", alerting.route.receiver)
    for i, route in enumerate(alerting.routes):
        where = f"alerting.routes[{i}]"
        receiver_problem(where, route.receiver)
        if route.model is not None and route.model not in models:
            problems.append(f"{where}.model: {route.model!r} is not a model; models: {', '.join(models)}")
        if route.team is not None and route.team not in teams:
            problems.append(f"{where}.team: no alert carries team {route.team!r}; teams: {', '.join(teams)}")
    return problems
