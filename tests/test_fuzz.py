"""Fuzz: thousands of hostile requests against a real `mlmon serve`; no crash, no 5xx, no hang, bounded memory.

Every request is generated from (seed, index) alone, so a failure names the one request to replay:

    MLMON_FUZZ_SEED=1 MLMON_FUZZ_SHOW=1234 .venv/bin/python -m pytest -q tests/test_fuzz.py -s

`make test` sends MLMON_FUZZ_REQUESTS (default 10,000); `make fuzz` sends 100,000. Requests go over
raw sockets (tests/support/fuzz_http.py) to both listeners, so the suite runs unchanged against
any HTTP server. What is asserted, per request family:

* application families (every endpoint, every body shape, chunked bodies): never a 5xx, never a
  hang, and every 4xx is a JSON object with an `error` (or the `rejections`) saying why;
* malformed HTTP (garbage request lines, bad headers, a TLS hello): answered by the HTTP server
  itself, not by mlmon, and werkzeug's answers are HTML; so only "4xx or closed, never 5xx, never
  a hang, and the process lives" is asserted for that family;
* at the end: the process is alive, /metrics answers, and its peak RSS (VmHWM) is under the
  chart's 256Mi memory limit.
"""

from __future__ import annotations

import copy
import json
import os
import random
import time
from collections import Counter
from typing import Any, NamedTuple
from urllib.parse import quote

import pytest
import yaml

from conftest import EXAMPLES, example_config_data
from exporter.tooling.localstack import free_port
from support.fuzz_http import ExporterProcess, chunk_stream, chunked_request, exchange, request_bytes

SEED = int(os.environ.get("MLMON_FUZZ_SEED", "1"))
REQUESTS = int(os.environ.get("MLMON_FUZZ_REQUESTS", "10000"))
TIMEOUT = 10.0               # seconds per request: past this it is a hang
CHART_MEMORY_LIMIT_KB = 256 * 1024
MAX_REQUEST_BYTES = 1 << 20  # small, so bodies over the limit are cheap to send

COUNTRIES = ["US", "GB", "DE", "FR", "IN", "BR", "NG", "JP"]
ODD = [None, True, False, 0, 1, -1, 1.5, "", "x", [], {}, [1, 2], {"a": 1}, "1", "NaN", [[[]]], -0.0, 1e-320,
       "2024-13-45T99:99:99Z", "\u0000", "\u202e", 2**63, -2**64]
HUGE = [b"1e999", b"-1e999", b"1" + b"0" * 400, b"-1" + b"0" * 400, b"1.7976931348623157e308",
        b"-1.7e308", b"18446744073709551616", b"1e-400", b"1" + b"0" * 5000, b"NaN", b"Infinity", b"-Infinity"]
SURROGATES = [b'"\\ud800"', b'"\\udfff"', b'"a\\ud800b"', b'"\\ud83d"']
NDJSON = "application/x-ndjson"


class Case(NamedTuple):
    family: str
    port: str        # "ingest" or "metrics"
    payload: bytes   # the whole request, as sent
    app_level: bool  # answered by mlmon's app (so a 4xx must be a JSON error), not by the HTTP server


def record(rng: random.Random, model: str | None = None) -> dict[str, Any]:
    model = model or rng.choice(["fraud", "fraud", "delivery_time", "captured"])
    i = rng.randrange(10**6)
    if model == "fraud":
        features: dict[str, Any] = {"amount": rng.uniform(0, 900), "account_age_days": rng.randrange(3000),
                                    "country": rng.choice(COUNTRIES), "channel": rng.choice(["web", "app", "pos"]),
                                    "is_international": rng.random() < 0.5}
        prediction: Any = rng.random()
    else:
        features = {"distance_km": rng.uniform(1, 30), "items": rng.randrange(1, 8), "hour": rng.randrange(24),
                    "weather": rng.choice(["clear", "rain", "snow"])}
        prediction = rng.uniform(10, 60)
    out = {"model": model, "model_version": rng.choice(["v1", "v1", "v2"]), "id": f"r-{i}",
           "features": features, "prediction": prediction}
    if model == "fraud":
        out["segments"] = {"country": features["country"]}
    if rng.random() < 0.1:
        out["label"] = rng.choice([0, 1]) if model == "fraud" else rng.uniform(10, 60)
    return out


def odd(rng: random.Random) -> Any:
    """An odd value, copied: the same list or object must not end up inside itself."""
    return copy.deepcopy(rng.choice(ODD))


def dumps(document: Any) -> bytes:
    return json.dumps(document, allow_nan=True).encode()


def post(path: str, body: bytes, content_type: str = "application/json", **headers: str) -> bytes:
    return request_bytes("POST", path, {"Content-Type": content_type, **headers}, body)


def with_literal(rng: random.Random, literal: bytes) -> bytes:
    """A batch where one value (feature, prediction, id, label, version, segment) is a raw JSON literal."""
    records = [record(rng, "fraud") for _ in range(rng.randint(1, 5))]
    target = rng.choice(records)
    where = rng.choice(["feature", "category", "prediction", "id", "label", "model_version", "segment", "model"])
    if where == "feature":
        target["features"]["amount"] = "__LIT__"
    elif where == "category":
        target["features"]["country"] = "__LIT__"
    elif where == "segment":
        target["segments"]["country"] = "__LIT__"
    else:
        target[where] = "__LIT__"
    return dumps(records).replace(b'"__LIT__"', literal)


def predictions_body(rng: random.Random) -> tuple[bytes, str]:
    """A body for /v1/predictions in one of the three shapes, mostly well-formed, sometimes mutated."""
    shape = rng.choice(["records", "ndjson", "columnar"])
    records = [record(rng) for _ in range(rng.randint(0, 20))]
    if rng.random() < 0.5:
        for r in records:
            key = rng.choice(["model", "model_version", "features", "prediction", "id", "timestamp", "segments",
                              "label", "extra"])
            r[key] = odd(rng)
            if isinstance(r.get("features"), dict) and rng.random() < 0.5:
                r["features"][rng.choice(["amount", "country", "items", "zzz"])] = odd(rng)
    if shape == "records":
        return dumps(records), "application/json"
    if shape == "ndjson":
        lines = [dumps(r) for r in records] + rng.choice([[], [b"{oops"], [b"[1,2]"], [b"null"], [b"   "]])
        rng.shuffle(lines)
        return b"\n".join(lines), NDJSON
    n = rng.randint(0, 30)
    model = rng.choice(["fraud", "delivery_time", "captured", "nope", None, 5])
    names = ["amount", "account_age_days", "country", "channel", "is_international", "distance_km", "items",
             "hour", "weather"]
    document: dict[str, Any] = {
        "model": model, "model_version": rng.choice(["v1", "v2", 1, 1.5, True, None, "bad version", "a" * 100]),
        "features": {name: [rng.choice([rng.random(), "DE", odd(rng)]) for _ in range(n)] for name in names},
        "predictions": [rng.choice([rng.random(), rng.random(), odd(rng)]) for _ in range(n)],
    }
    for key in rng.sample(["ids", "timestamps", "labels", "segments"], rng.randint(0, 4)):
        document[key] = rng.choice([[f"c-{rng.randrange(10**6)}" for _ in range(n)], [None] * n, [1] * (n + 1), "x",
                                    [odd(rng) for _ in range(n)]])
    return dumps(document), "application/json"


def labels_body(rng: random.Random) -> tuple[bytes, str]:
    n = rng.randint(0, 20)
    items = [{"id": rng.choice([f"r-{rng.randrange(10**6)}", rng.randrange(10**6), odd(rng)]),
              "label": rng.choice([0, 1, True, 0.5, 30.0, -1.7e308, "1", None, odd(rng)]),
              "model": rng.choice([None, "fraud", "delivery_time", "made-up", 5])} for _ in range(n)]
    shape = rng.choice(["array", "ndjson", "columnar"])
    if shape == "array":
        return dumps(items), "application/json"
    if shape == "ndjson":
        return b"\n".join(dumps(i) for i in items) + rng.choice([b"", b"\n{bad", b"\nnull"]), NDJSON
    document = {"ids": rng.choice([[i["id"] for i in items], "x", [1] * (n + 1)]),
                "labels": rng.choice([[i["label"] for i in items], "x", {}]), "model": rng.choice([None, "fraud", 7])}
    return dumps(document), "application/json"


def generate(seed: int, index: int) -> Case:
    rng = random.Random(seed * 1_000_003 + index)
    family = rng.choices(list(FAMILIES), weights=list(FAMILIES.values()))[0]
    endpoint = rng.choice(["/v1/predictions", "/v1/predictions", "/v1/labels"])
    if family == "predictions":
        body, content_type = predictions_body(rng)
        return Case(family, "ingest", post("/v1/predictions", body, content_type), True)
    if family == "labels":
        body, content_type = labels_body(rng)
        return Case(family, "ingest", post("/v1/labels", body, content_type), True)
    if family == "nesting":
        depth = rng.choice([8, 33, 100, 1_000, 5_000, 100_000])
        kind = rng.choice(["array", "object", "inside"])
        if kind == "array":
            body = b"[" * depth + b"]" * rng.choice([0, depth])
        elif kind == "object":
            body = b'{"a":' * depth + b"1" + b"}" * depth
        else:
            body = dumps([record(rng, "fraud")]).replace(b'"amount": ', b'"amount": ' + b"[" * depth + b"1"
                                                          + b"]" * depth + b", \"x\": ", 1)
        return Case(family, "ingest", post(endpoint, body, rng.choice(["application/json", NDJSON])), True)
    if family == "huge_numbers":
        return Case(family, "ingest", post(endpoint, with_literal(rng, rng.choice(HUGE))), True)
    if family == "surrogates":
        body = with_literal(rng, rng.choice(SURROGATES))
        if rng.random() < 0.3:
            body = body.replace(b'"fraud"', b'"fr\xff\xfeaud"', 1)  # invalid UTF-8 instead
        return Case(family, "ingest", post(endpoint, body), True)
    if family == "list_values":
        literal = rng.choice([b"[5.0]", b"[[5.0]]", b'["DE"]', b"{}", b'{"v": 1}', b"[]", b"[null]"])
        return Case(family, "ingest", post(endpoint, with_literal(rng, literal)), True)
    if family == "long_strings":
        text = "x" * rng.choice([257, 5_000, 70_000, 300_000])
        return Case(family, "ingest", post(endpoint, with_literal(rng, json.dumps(text).encode())), True)
    if family == "ndjson_flood":
        line = rng.choice([b"1", b"{}", b"[]", b" ", b"", dumps(record(rng))])
        count = rng.choice([1_000, 100_001, 300_000])
        body = b"\n".join([line] * count)[:2 * MAX_REQUEST_BYTES]
        return Case(family, "ingest", post(endpoint, body, NDJSON), True)
    if family == "oversized":
        body = b"[" + b",".join([dumps(record(rng, "fraud"))] * 6_000) + b"]"  # ~1.2 MB, over the 1 MiB limit
        return Case(family, "ingest", post(endpoint, body), True)
    if family == "chunked":
        body = dumps([record(rng) for _ in range(rng.randint(1, 10))])
        kind = rng.choice(["valid", "extension", "truncated", "bad_size", "declared_larger", "with_length",
                           "over_limit"])
        if kind == "valid":
            stream = chunk_stream(body, rng.choice([1, 7, 100, 4096]))
        elif kind == "extension":
            stream = chunk_stream(body, 100, b";ext=1")
        elif kind == "truncated":
            stream = chunk_stream(body, 100)[: rng.randint(0, len(body))]
        elif kind == "bad_size":
            stream = b"zz\r\n" + body + b"\r\n0\r\n\r\n"
        elif kind == "declared_larger":  # sizes that stay below max_request_bytes + 2 (issue 16 item 1)
            stream = rng.choice([b"ffff", b"1000", b"%x" % MAX_REQUEST_BYTES]) + b"\r\n" + body + b"\r\n0\r\n\r\n"
        elif kind == "with_length":
            return Case(f"{family}:{kind}", "ingest", chunked_request(endpoint, chunk_stream(body),
                                                                     {"Content-Length": "5"}), True)
        else:
            stream = chunk_stream(b"[" + b",".join([body[1:-1]] * 2_000) + b"]", 65_536)
        return Case(f"{family}:{kind}", "ingest", chunked_request(endpoint, stream), True)
    if family == "drift":
        model = rng.choice(["fraud", "delivery_time", "captured", "nope", "%00", "FRAUD", "fraud.json", "%ff"])
        window = rng.choice(["5m", "1h", "300", "3600s", "0s", "-5m", "1d", "9" * 30 + "h", "x" * 5000, "%ff%fe",
                             "", "1h%00", "1.5h"])
        query = f"window={quote(window, safe='%')}"
        if rng.random() < 0.4:
            query += "&version=" + quote(rng.choice(["v1", "nope", "%00", "a" * 5000, "%ud800", "v 1"]), safe="%")
        return Case(family, "ingest", request_bytes("GET", f"/v1/models/{model}/drift?{query}"), True)
    if family == "scrape":
        port = rng.choice(["metrics", "metrics", "ingest"])
        path = rng.choice(["/metrics", "/healthz", "/readyz", "/"]) if port == "metrics" else \
            rng.choice(["/healthz", "/readyz"])
        accept = rng.choice(["", "application/openmetrics-text; version=1.0.0", "text/plain", "*/*"])
        return Case(family, port, request_bytes("GET", path, {"Accept": accept} if accept else {}), True)
    if family == "methods_paths":
        port = rng.choice(["ingest", "metrics"])
        method = rng.choice(["PUT", "DELETE", "PATCH", "TRACE", "OPTIONS", "HEAD", "FOO", "GET", "POST", "PROPFIND"])
        path = rng.choice(["/v1/predictions/../..", "/%2e%2e/%2e%2e/etc/passwd", "//metrics", "/metrics?x=%00",
                           "/v1/models/..%2f..%2fetc%2fpasswd/drift", "/v1/models/%00/drift", "/v1/labels",
                           "/metrics", "/", "/healthz", "/v1/predictions", "/" + "a" * 5000, "/console",
                           "/v1/models/fraud%0d%0aX:1/drift", "/v1/models/fraud/drift/"])
        body = dumps([record(rng)]) if method in ("PUT", "POST", "PATCH") else None
        headers = {"Content-Type": "application/json"} if body else {}
        return Case(f"{family}:{method}", port, request_bytes(method, path, headers, body), method != "HEAD")
    raw = rng.choice(MALFORMED)  # malformed HTTP: the server layer answers, not mlmon
    return Case(family, rng.choice(["ingest", "metrics"]), raw, False)


MALFORMED = [
    b"GET /metrics HTTP/9.9\r\nHost: x\r\n\r\n",
    b"GARBAGE\r\n\r\n",
    b"GET /metrics\r\n\r\n",
    b"GET /metrics HTTP/1.1\r\nNoColonHeader\r\n\r\n",
    b"GET /metrics HTTP/1.1\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(200)) + b"\r\n",
    b"GET /metrics HTTP/1.1\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n",
    b"POST /v1/predictions HTTP/1.1\r\nContent-Length: -5\r\n\r\n[]",
    b"POST /v1/predictions HTTP/1.1\r\nContent-Length: abc\r\n\r\n[]",
    b"POST /v1/labels HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n[]",
    b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 64,  # the start of a TLS ClientHello
    b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n",
    b"\r\n\r\n\r\n",
    b"",
]

FAMILIES = {  # relative weights
    "predictions": 24, "labels": 8, "nesting": 5, "huge_numbers": 8, "surrogates": 6, "list_values": 6,
    "long_strings": 4, "ndjson_flood": 1, "oversized": 1, "chunked": 8, "drift": 6, "scrape": 8,
    "methods_paths": 8, "malformed_http": 3,
}


# ----------------------------------------------------------------------------- the run


@pytest.fixture(scope="module")
def exporter(tmp_path_factory) -> ExporterProcess:
    folder = tmp_path_factory.mktemp("fuzz")
    data = example_config_data()
    captured = json.loads(json.dumps(next(m for m in data["models"] if m["name"] == "delivery_time")))
    captured.update(name="captured", reference={"capture": 500})
    captured.pop("team", None)
    data["models"].append(captured)
    for model in data["models"]:
        if isinstance(model["reference"], str):
            model["reference"] = str(EXAMPLES / model["reference"])
    metrics_port, ingest_port = free_port(), free_port()
    data["exporter"].update(metrics_listen=f"127.0.0.1:{metrics_port}", ingest_listen=f"127.0.0.1:{ingest_port}",
                            max_request_bytes=MAX_REQUEST_BYTES)
    config = folder / "mlmon.yaml"
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    process = ExporterProcess(config, metrics_port, ingest_port, folder / "serve.log")
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()


def failure(case: Case, index: int, why: str, answer_head: bytes) -> str:
    return f"request {index} ({case.family} -> {case.port}): {why}; answer {answer_head[:160]!r}; " \
           f"request {case.payload[:160]!r}"


def test_fuzz_never_crashes_never_5xx_never_hangs_and_stays_under_the_memory_limit(exporter: ExporterProcess) -> None:
    shown = os.environ.get("MLMON_FUZZ_SHOW")
    if shown is not None:
        print(generate(SEED, int(shown)))
    outcomes: Counter[str] = Counter()
    failures: list[str] = []
    started = time.monotonic()
    for index in range(REQUESTS):
        case = generate(SEED, index)
        answer = exchange(exporter.ports[case.port], case.payload, TIMEOUT)
        outcomes[f"{case.family.split(':')[0]} {answer.status}"] += 1
        if answer.timed_out:
            failures.append(failure(case, index, "no answer within the timeout (a hang)", answer.body))
        elif answer.status >= 500:
            failures.append(failure(case, index, f"a {answer.status}", answer.body))
        elif case.app_level and answer.status == 0:
            failures.append(failure(case, index, "closed without an answer", answer.body))
        elif case.app_level and answer.status >= 400 and not answer.json_error:
            failures.append(failure(case, index, f"a {answer.status} that is not a JSON error", answer.body))
        elif not case.app_level and answer.status not in (0,) and not 400 <= answer.status < 500 \
                and answer.status >= 300:
            failures.append(failure(case, index, f"malformed HTTP answered {answer.status}", answer.body))
        if not exporter.alive:
            failures.append(failure(case, index, f"the exporter died (exit {exporter.process.returncode})", b""))
            break
        if len(failures) >= 20:
            break
    elapsed = time.monotonic() - started
    print(f"\nfuzz: {REQUESTS} requests in {elapsed:.0f} s; outcomes {dict(sorted(outcomes.items()))}")
    assert failures == [], "\n".join(failures)
    assert exporter.alive
    scrape = exchange(exporter.ports["metrics"], request_bytes("GET", "/metrics"), TIMEOUT)
    assert scrape.status == 200 and b"mlmon_predictions_total" in scrape.body
    peak_kb = exporter.status()["VmHWM"]
    print(f"fuzz: peak RSS (VmHWM) {peak_kb / 1024:.0f} MiB")
    assert peak_kb < CHART_MEMORY_LIMIT_KB
