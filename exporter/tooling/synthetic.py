"""Synthetic traffic for the two example models, with optional drift and data-quality faults.

Used by `mlmon demo`, by the example reference data, by the tests and by the benchmarks, so
everyone sees the same world:

* ``fraud`` (binary classification): transaction amount, account age, country, channel,
  international flag -> a calibrated fraud probability, and a label drawn from it.
* ``delivery_time`` (regression): distance, item count, hour, weather -> minutes, and the
  realised minutes as the label.

``drift`` in [0, 1] moves the inputs away from the reference (bigger amounts, more traffic from
new countries, longer distances, worse weather); ``faults`` sprinkles nulls, NaNs, wrong types
and unknown features into the records.
"""

from __future__ import annotations

from typing import Any

import numpy as np

COUNTRIES = ("US", "GB", "DE", "FR", "IN", "BR", "NG", "JP")
COUNTRY_P = np.array([0.40, 0.15, 0.12, 0.10, 0.10, 0.06, 0.02, 0.05])
COUNTRY_P_DRIFTED = np.array([0.20, 0.10, 0.08, 0.07, 0.15, 0.15, 0.20, 0.05])
CHANNELS = ("web", "app", "pos")
WEATHER = ("clear", "rain", "snow", "storm")
WEATHER_P = np.array([0.70, 0.20, 0.07, 0.03])
WEATHER_P_DRIFTED = np.array([0.35, 0.35, 0.20, 0.10])
MODELS = ("fraud", "delivery_time")

# The fraud model is logistic in these inputs; its exact attributions (in log-odds) are
# phi_i = w_i (x_i - E[x_i]) with E over the reference distribution (docs/explainability.md):
# E[log amount] = 3.5, E[age] = 2 x 200, P(international) = 0.4 x 0.05 + 0.6 x 0.4, P(NG) = 0.02, P(pos) = 0.1.
FRAUD_INPUTS = {
    "amount": (lambda f: np.log(f["amount"]), 3.5),
    "account_age_days": (lambda f: f["account_age_days"], 400.0),
    "country": (lambda f: (f["country"] == "NG").astype(float), 0.02),
    "channel": (lambda f: (f["channel"] == "pos").astype(float), 0.1),
    "is_international": (lambda f: f["is_international"].astype(float), 0.26),
}
FRAUD_WEIGHTS = {"amount": 0.6, "account_age_days": -0.002, "country": 0.8, "channel": 0.0, "is_international": 1.2}
# The swapped model (`swap=True`): same inputs, another relationship; it barely weighs amount and
# leans on the channel, so its explanations move while the inputs do not.
SWAPPED_WEIGHTS = {"amount": 0.05, "account_age_days": -0.002, "country": 0.8, "channel": 2.5, "is_international": 1.2}


def fraud_attributions(raw: dict[str, np.ndarray], weights: dict[str, float]) -> dict[str, np.ndarray]:
    """Exact per-record attributions of the logistic fraud model (log-odds, phi_i = w_i (x_i - E[x_i]))."""
    return {name: weights[name] * (transform(raw) - mean) for name, (transform, mean) in FRAUD_INPUTS.items()}


def fraud_columns(n: int, rng: np.random.Generator, drift: float = 0.0, swap: bool = False) -> dict[str, Any]:
    amount = rng.lognormal(mean=3.5 + 0.8 * drift, sigma=1.0, size=n)
    age = rng.gamma(shape=2.0, scale=200.0 * (1 - 0.5 * drift), size=n)
    p = (1 - drift) * COUNTRY_P + drift * COUNTRY_P_DRIFTED
    country = rng.choice(COUNTRIES, size=n, p=p / p.sum())
    channel = rng.choice(CHANNELS, size=n, p=[0.5, 0.4, 0.1])
    international = rng.random(n) < np.where(country == "US", 0.05, 0.4)
    raw = {"amount": amount, "account_age_days": age, "country": country, "channel": channel,
           "is_international": international}
    phi = fraud_attributions(raw, SWAPPED_WEIGHTS if swap else FRAUD_WEIGHTS)
    # The same logit as -4 + 0.6 (log amount - 3.5) - 0.002 age + 1.2 intl + 0.8 NG, written as base + sum phi.
    base = -4.0 - 0.002 * 400.0 + 1.2 * 0.26 + 0.8 * 0.02
    logit = base + sum(phi.values())
    score = 1 / (1 + np.exp(-logit))
    label = (rng.random(n) < score).astype(int)
    return {
        "features": {
            "amount": np.round(amount, 2).tolist(),
            "account_age_days": np.round(age, 1).tolist(),
            "country": country.tolist(),
            "channel": channel.tolist(),
            "is_international": international.tolist(),
        },
        "predictions": np.round(score, 6).tolist(),
        "labels": label.tolist(),
        "attributions": {name: np.round(values, 6).tolist() for name, values in phi.items()},
    }


def delivery_columns(n: int, rng: np.random.Generator, drift: float = 0.0) -> dict[str, Any]:
    distance = rng.gamma(shape=2.0, scale=3.0 * (1 + drift), size=n)
    items = rng.poisson(3.0, size=n) + 1
    hour = rng.integers(8, 23, size=n)
    p = (1 - drift) * WEATHER_P + drift * WEATHER_P_DRIFTED
    weather = rng.choice(WEATHER, size=n, p=p / p.sum())
    slowdown = np.select([weather == "rain", weather == "snow", weather == "storm"], [1.2, 1.5, 1.8], 1.0)
    expected = (12 + 3.0 * distance + 1.5 * items) * np.where((hour >= 18) & (hour <= 20), 1.2, 1.0)
    prediction = expected * np.where(weather == "clear", 1.0, 1.15)  # the model under-reacts to weather
    actual = expected * slowdown + rng.normal(0, 4, size=n)
    return {
        "features": {
            "distance_km": np.round(distance, 3).tolist(),
            "items": items.tolist(),
            "hour": hour.tolist(),
            "weather": weather.tolist(),
        },
        "predictions": np.round(prediction, 2).tolist(),
        "labels": np.round(actual, 2).tolist(),
    }


def columns(model: str, n: int, rng: np.random.Generator, drift: float = 0.0, swap: bool = False) -> dict[str, Any]:
    """Features, predictions, labels (and the fraud model's exact attributions); `swap`: the fraud model
    swapped for one that weighs the channel instead of the amount (inputs unchanged)."""
    if model == "fraud":
        return fraud_columns(n, rng, drift, swap)
    if model == "delivery_time":
        return delivery_columns(n, rng, drift)
    raise KeyError(model)


def records(
    model: str,
    version: str,
    n: int,
    rng: np.random.Generator,
    drift: float = 0.0,
    faults: float = 0.0,
    id_prefix: str = "",
    with_labels: bool = False,
    attributions: bool = False,
    swap: bool = False,
) -> list[dict[str, Any]]:
    """Row-form records; ``faults`` is the probability that a record carries one data-quality fault;
    ``attributions`` adds the fraud model's exact attributions to each record, ``swap`` swaps its model."""
    data = columns(model, n, rng, drift, swap)
    phi = data.get("attributions") if attributions else None
    names = list(data["features"])
    out = []
    for i in range(n):
        features = {name: data["features"][name][i] for name in names}
        record: dict[str, Any] = {
            "id": f"{id_prefix}{model}-{i}",
            "model": model,
            "model_version": version,
            "features": features,
            "prediction": data["predictions"][i],
        }
        if model == "fraud":  # the sensitive attributes the example config monitors for bias
            record["segments"] = {"country": features["country"], "channel": features["channel"]}
        if model == "delivery_time":  # quality per weather value (segments with quality: true)
            record["segments"] = {"weather": features["weather"]}
        if with_labels:
            record["label"] = data["labels"][i]
        if phi is not None:
            record["attributions"] = {name: phi[name][i] for name in phi}
        out.append(record)
    if faults > 0:
        inject_faults(out, names, rng, faults)
    return out


def inject_faults(records: list[dict[str, Any]], names: list[str], rng: np.random.Generator, rate: float) -> None:
    """Null, NaN, wrong-typed, missing and unknown feature values, each equally likely."""
    hits = np.flatnonzero(rng.random(len(records)) < rate)
    kinds = rng.integers(0, 5, size=len(hits))
    targets = rng.integers(0, len(names), size=len(hits))
    for index, kind, target in zip(hits.tolist(), kinds.tolist(), targets.tolist()):
        features = records[index]["features"]
        name = names[target]
        if kind == 0:
            features[name] = None
        elif kind == 1:
            features[name] = float("nan") if isinstance(features[name], float) else None
        elif kind == 2:
            features[name] = "oops" if not isinstance(features[name], str) else 12.5
        elif kind == 3:
            del features[name]
        else:
            features["debug_flag"] = 1
