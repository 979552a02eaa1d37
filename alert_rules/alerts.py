"""Alerting rules: one group for the exporter itself, one group per model.

Per-model groups carry the model's `team` as a static label and its own thresholds, so routing
by team needs no joins at query time. Every expression reads recorded series from
:mod:`alert_rules.recording` or catalog metrics; no metric name is typed here.
"""

from __future__ import annotations

from exporter import catalog as c
from exporter.config.model import MlmonConfig, ModelConfig
from exporter.ingest.decode import UNKNOWN_MODEL_LABEL

from alert_rules.attribution_alerts import attribution_alerts
from alert_rules import recording as r
from alert_rules.champion_alerts import challenger_alerts
from alert_rules.drift_alerts import drift_alerts
from alert_rules.factory import DATA_QUALITY, EXPORTER, TRAFFIC, AlertFactory, pct
from alert_rules.naming import PROMETHEUS_UP, matcher, selector
from alert_rules.quality_alerts import quality_alerts
from alert_rules.rules import AlertRule, RuleGroup

# How far back a down exporter's models are remembered: its `mlmon_model_info` series go stale
# once scrapes fail, and the last value names the models it served.
MODELS_REMEMBERED = "1d"


def exporter_down_expr(job: str) -> str:
    """`up == 0` once per model the target served, with a `model` label, so that Alertmanager can
    mute only that model's drift and traffic alerts (`equal: [model]`); a target that never
    reported a model still alerts, without one."""
    down = f"({PROMETHEUS_UP}{{{job}}} == 0)"
    served = f"last_over_time({c.MODEL_INFO.name}{{{job}}}[{MODELS_REMEMBERED}])"
    per_model = f"group without (model_version, task, reference_hash) (\n  {served}\n  and on (job, instance) {down}\n)"
    return f"{per_model}\nor\n{down} unless on (job, instance) {served}"


def exporter_group(config: MlmonConfig) -> RuleGroup:
    cfg = config.alerting.exporter
    alert = AlertFactory(config, {"team": cfg.team})
    job = matcher("job", cfg.job)
    dq = config.alerting.data_quality
    unknown = matcher("model", UNKNOWN_MODEL_LABEL)
    rules = [
        alert(
            "ExporterDown", exporter_down_expr(job), for_=cfg.down_for, severity="critical", category=EXPORTER,
            summary="Prometheus cannot scrape an mlmon exporter.",
            description="The mlmon exporter {{ $labels.instance }} (job {{ $labels.job }}"
            "{{ with $labels.model }}, model {{ . }}{{ end }}) has failed every scrape "
            f"for {cfg.down_for}; its models' drift and traffic are not being measured.",
        ),
        alert(
            "ExporterAbsent", f"absent({PROMETHEUS_UP}{{{job}}})", for_=cfg.down_for, severity="critical",
            category=EXPORTER,
            summary="No mlmon exporter is being scraped.",
            description='Prometheus has no scrape target with job="{{ $labels.job }}" for '
            f"{cfg.down_for}: service discovery lost the exporter or the scrape config changed.",
        ),
        alert(
            "ExporterScrapeSlow", f"{c.SCRAPE_DURATION.name} > {cfg.scrape_duration_warning_seconds:g}",
            for_="15m", severity="warning", category=EXPORTER,
            summary="The mlmon exporter renders /metrics slowly.",
            description="Rendering /metrics on {{ $labels.instance }} took {{ $value | humanizeDuration }} "
            f"(warning above {cfg.scrape_duration_warning_seconds:g}s); scrapes may time out.",
        ),
        alert(
            "LimitHit", f"sum by (limit) (increase({c.LIMIT_HITS.name}[10m])) > 0", for_="5m", severity="warning",
            category=EXPORTER,
            summary="The mlmon exporter is dropping data at a configured limit.",
            description="The {{ $labels.limit }} limit was hit {{ $value | humanize }} times in the last 10 minutes; "
            "data over the limit was rejected or evicted.",
        ),
        alert(
            # Every record of an unknown model is rejected, so a ratio would always read 100%: any rate alerts.
            "RecordsRejected", f"{r.rejected_rate()}{{{unknown}}} > 0",
            for_=dq.for_, severity="warning", category=DATA_QUALITY,
            summary="Records for an undeclared model are being rejected.",
            description="{{ $value | humanize }} records/s are rejected with reason {{ $labels.reason }}: "
            "they name no model, or a model not declared in mlmon.yaml.",
        ),
    ]
    return RuleGroup("mlmon.exporter.alerts", rules)


def history_guard(band: str, m: str, min_history: str) -> str:
    """`and on (model) (band offset 1d)`: the band existed `min_history` ago, so it has at least that
    much history. A band of minutes (a new model, a fresh Prometheus) has no spread to judge by."""
    return f"and on (model)\n({band}{m} offset {min_history})"


def model_group(config: MlmonConfig, model: ModelConfig) -> RuleGroup:
    team = model.team or config.alerting.exporter.team
    alert = AlertFactory(config, {"team": team}, model)
    m = selector(model=model.name)
    dq, traffic = config.alerting.data_quality, config.alerting.traffic
    types = {f.type for f in model.features}
    rules = [
        alert(
            "NoPredictions",
            f"{r.predictions_rate(r.MODEL)}{m} == 0\nor\nabsent({r.predictions_rate(r.MODEL)}{m})",
            for_=traffic.no_predictions_for, severity="warning", category=TRAFFIC, versioned=False,
            summary="A model receives no predictions.",
            description="No predictions of model {{ $labels.model }} reached mlmon for "
            f"{traffic.no_predictions_for}: "
            "the model server stopped logging to mlmon, or the model gets no traffic.",
        ),
        alert(
            "PredictionVolumeAnomaly",
            f"abs({r.anomaly_record('zscore')}{m}) > {traffic.anomaly_z:g}\n"
            f"and on (model)\n{r.anomaly_record('avg')}{m} > {traffic.anomaly_min_rate:g}\n"
            f"{history_guard(r.anomaly_record('avg'), m, traffic.anomaly_min_history)}",
            for_=traffic.anomaly_for, severity="warning", category=TRAFFIC, versioned=False,
            summary="Prediction volume is far from its weekly norm.",
            description="The prediction rate of model {{ $labels.model }} is {{ $value | printf \"%.1f\" }} standard "
            f"deviations from its mean over the past week (band: ±{traffic.anomaly_z:g}).",
        ),
    ]
    if model.prediction.type == "numeric":  # a class has no mean
        rules.append(alert(
            "PredictionMeanAnomaly",
            f"abs({r.mean_anomaly_record('zscore')}{m}) > {traffic.anomaly_z:g}\n"
            f"and on (model)\n{r.anomaly_record('avg')}{m} > {traffic.anomaly_min_rate:g}\n"
            f"{history_guard(r.mean_anomaly_record('avg'), m, traffic.anomaly_min_history)}",
            for_=traffic.anomaly_for, severity="warning", category=TRAFFIC, versioned=False,
            summary="The mean prediction is far from its weekly norm.",
            description="The mean prediction of model {{ $labels.model }} is {{ $value | printf \"%.1f\" }} standard "
            f"deviations from its mean over the past week (band: ±{traffic.anomaly_z:g}).",
        ))
    rules += [
        alert(
            "RecordsRejected", f"{r.rejected_ratio(dq.rate_window)}{m} > {dq.rejected_ratio:g}",
            for_=dq.for_, severity="warning", category=DATA_QUALITY, versioned=False,
            summary="Prediction records are being rejected.",
            description="{{ $value | humanizePercentage }} of the records sent for model {{ $labels.model }} are "
            f"rejected with reason {{{{ $labels.reason }}}} (threshold {pct(dq.rejected_ratio)}).",
        ),
    ]
    rules += data_quality_alerts(alert, m, config, types)
    rules += [
        alert(
            "UnknownFeatures", f"sum by (model, model_version) (rate({c.UNKNOWN_FEATURES.name}{m}[{dq.rate_window}])) > 0",
            for_=dq.for_, severity="info", category=DATA_QUALITY,
            summary="Requests carry features that mlmon.yaml does not declare.",
            description="Model {{ $labels.model }} version {{ $labels.model_version }} receives feature keys that "
            "the config does not declare; the model's input schema may have changed.",
        ),
        alert(
            "ModelVersionsEvicted", f"sum by (model) (increase({c.VERSIONS_EVICTED.name}{m}[1h])) > 0",
            for_="0s", severity="warning", category=EXPORTER, versioned=False,
            summary="The exporter evicted model versions to stay within its limit.",
            description="{{ $value | humanize }} versions of model {{ $labels.model }} were evicted in the last hour "
            f"(limit {config.exporter.max_versions_per_model} per model); their drift state was lost.",
        ),
    ]
    rules += drift_alerts(alert, model, config.alerting.drift.for_)
    rules += attribution_alerts(alert, model, config.alerting.drift.for_)
    rules += quality_alerts(alert, config, model)
    rules += challenger_alerts(alert, model)
    return RuleGroup(f"mlmon.model.{model.name}.alerts", rules)


# stem, recorded kind, threshold field, feature types it applies to (None: all), what it counts
DATA_QUALITY_ALERTS = (
    ("FeatureMissing", "missing", "missing_ratio", None, "missing or null"),
    ("FeatureNonFinite", "nonfinite", "nonfinite_ratio", {"numeric"}, "NaN or infinite"),
    ("FeatureOutOfRange", "out_of_range", "out_of_range_ratio", {"numeric"}, "outside the reference range"),
    ("FeatureUnseenCategory", "unseen_category", "unseen_category_ratio", {"categorical", "boolean"},
     "categories the reference never saw"),
    ("FeatureTypeErrors", "type_errors", "type_error_ratio", None, "of the wrong type"),
)


def data_quality_alerts(alert: AlertFactory, m: str, config: MlmonConfig, types: set[str]) -> list[AlertRule]:
    dq = config.alerting.data_quality
    out = []
    for stem, kind, field, applies, what in DATA_QUALITY_ALERTS:
        if applies is not None and not applies & types:
            continue  # e.g. no numeric feature, so nothing can be NaN
        threshold = getattr(dq, field)
        out.append(alert(
            stem, f"{r.quality_ratio(kind, dq.rate_window)}{m} > {threshold:g}",
            for_=dq.for_, severity="warning", category=DATA_QUALITY,
            summary=f"Feature values are {what} too often.",
            description="Feature {{ $labels.feature }} of model {{ $labels.model }} version "
            "{{ $labels.model_version }} is " + what + " in {{ $value | humanizePercentage }} of predictions "
            f"(threshold {pct(threshold)}).",
        ))
    return out


def alert_groups(config: MlmonConfig) -> list[RuleGroup]:
    return [exporter_group(config)] + [model_group(config, model) for model in config.models]
