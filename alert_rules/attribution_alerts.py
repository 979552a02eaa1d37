"""MLMonAttributionDrift: the model's explanations moved away from the reference's.

Fires for a model version when, over the longest configured window and with at least
attributions.min_samples attributed records,

* the fleet's importance shares (recorded by alert_rules/attribution_rules.py over counters summed
  across replicas) are at total-variation distance >= attributions.share_tv_threshold from the
  reference shares, or
* a replica's own verdict (mlmon_attribution_drift_detected: nDCG of its importance ranking below
  attributions.ndcg_threshold, or its share TV past the threshold, with N >= min_samples) says so:
  nDCG needs a sort, which PromQL does not have, so it is judged per replica.

What to do is in docs/runbooks/MLMonAttributionDrift.md.
"""

from __future__ import annotations

from exporter import catalog as c
from exporter.config.model import ModelConfig, format_duration

from alert_rules.attribution_rules import name, samples_name
from alert_rules.factory import DRIFT, AlertFactory
from alert_rules.naming import selector
from alert_rules.rules import AlertRule


def attribution_alerts(alert: AlertFactory, model: ModelConfig, for_: str) -> list[AlertRule]:
    config = model.attributions
    if not config.enabled:
        return []
    seconds = max(model.drift.windows)
    window = format_duration(seconds)
    sel = selector(model=model.name)
    fleet = (f"{name('model_version', 'share_tv', seconds)}{sel} >= {config.share_tv_threshold:g}\n"
             f"and on (model, model_version)\n{samples_name(seconds)}{sel} >= {config.min_samples}")
    replica = (f"max by (model, model_version) "
               f"({c.ATTRIBUTION_DRIFT_DETECTED.name}{selector(model=model.name, window=window)}) == 1")
    return [alert(
        "AttributionDrift", f"{fleet}\nor on (model, model_version)\n{replica}",
        for_=for_, severity="warning", category=DRIFT, labels={"window": window},
        summary="What drives the model's predictions changed.",
        description="The feature attributions of model {{ $labels.model }} version {{ $labels.model_version }} "
        f"moved away from the reference over the last {window}: importance shares at total-variation distance "
        f">= {config.share_tv_threshold:g} fleet-wide, or a replica's importance ranking with nDCG < "
        f"{config.ndcg_threshold:g} (N >= {config.min_samples} attributed records). If the inputs did not drift, "
        "suspect concept drift, a broken feature pipeline or a leaking feature.",
    )]
