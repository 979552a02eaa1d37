"""The `mlmon` command: a thin layer over the use cases in the other modules.

Exit codes: 0 ok, 1 a check found a difference, 2 bad input (config, profile, arguments).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from pathlib import Path

from exporter import __version__
from exporter.config.model import ConfigError, MlmonConfig, ModelConfig, config_json_schema, load_config
from exporter.logs import limit_log_lines
from exporter.profiles.profile import Profile, ProfileError

EXIT_BAD_INPUT = 2
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("text", "json")


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error: the problem and where to look, not the whole usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


class UsageError(Exception):
    """A command line that cannot be run as given: one line naming the problem and the fix."""


def _config_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", default="mlmon.yaml", help="path to mlmon.yaml (default: %(default)s)")


def _output_args(parser: argparse.ArgumentParser, default: str | None) -> None:
    """Every generator writes to -o/--out, or with --check only compares (exit 1 when stale, for CI)."""
    if default is None:
        parser.add_argument("-o", "--out", required=True, help="the folder to write into (created when missing)")
    else:
        parser.add_argument("-o", "--out", default=default, help="where to write (default: %(default)s)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 when what is there is stale")


def _deprecated(args: argparse.Namespace, old: str, new: str) -> None:
    print(f"mlmon: {old} is deprecated; use {new}", file=sys.stderr)


def _write(path: str | Path, text: str) -> None:
    """Write a generated file, creating its folder; errors name the path (main() turns them into exit 2)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def cmd_serve(args: argparse.Namespace) -> int:
    from exporter.config.model import _check_listen
    from exporter.http.server import ServeOptions, serve
    from exporter.http.web_config import WebConfigError

    for flag, value in (("--web.listen-address", args.web_listen), ("--ingest.listen-address", args.ingest_listen)):
        if value is not None:
            try:
                _check_listen(value)
            except ValueError as error:
                print(f"{flag}: {error}", file=sys.stderr)
                return EXIT_BAD_INPUT
    config = load_config(args.config)
    if args.state_dir:  # the flag wins over exporter.state_dir (a container names its volume here)
        exporter = config.exporter.model_copy(update={"state_dir": str(Path(args.state_dir).resolve())})
        config = config.model_copy(update={"exporter": exporter})
    options = ServeOptions(
        config_path=args.config, web_config_file=args.web_config_file or None,
        ingest_web_config_file=args.ingest_web_config_file or None,
        ingest_bearer_token_file=args.ingest_bearer_token_file or None,
        metrics_listen=args.web_listen, ingest_listen=args.ingest_listen,
    )
    try:
        serve(config, options)
    except WebConfigError as error:
        print(f"web config: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


def _serve_args(parser: argparse.ArgumentParser) -> None:
    """Prometheus-style flags; each also reads an MLMON_* environment variable (the flag wins)."""
    env = os.environ.get
    parser.add_argument(
        "--web.config.file", dest="web_config_file", default=env("MLMON_WEB_CONFIG_FILE"), metavar="FILE",
        help="exporter-toolkit web config (TLS, client certs, basic auth, headers) for the metrics listener; "
             "env MLMON_WEB_CONFIG_FILE (docs/security.md)",
    )
    parser.add_argument(
        "--ingest.web.config.file", dest="ingest_web_config_file", default=env("MLMON_INGEST_WEB_CONFIG_FILE"),
        metavar="FILE", help="the same format for the ingest listener; env MLMON_INGEST_WEB_CONFIG_FILE",
    )
    parser.add_argument(
        "--ingest.bearer-token-file", dest="ingest_bearer_token_file", default=env("MLMON_INGEST_BEARER_TOKEN_FILE"),
        metavar="FILE", help="ingest requests must send 'Authorization: Bearer <the file's content>'; "
                             "env MLMON_INGEST_BEARER_TOKEN_FILE (overrides exporter.ingest_bearer_token_file)",
    )
    parser.add_argument(
        "--web.listen-address", dest="web_listen", default=env("MLMON_WEB_LISTEN_ADDRESS"), metavar="HOST:PORT",
        help="metrics listener (overrides exporter.metrics_listen); env MLMON_WEB_LISTEN_ADDRESS",
    )
    parser.add_argument(
        "--ingest.listen-address", dest="ingest_listen", default=env("MLMON_INGEST_LISTEN_ADDRESS"), metavar="HOST:PORT",
        help="ingest listener (overrides exporter.ingest_listen); env MLMON_INGEST_LISTEN_ADDRESS",
    )


def cmd_act(args: argparse.Namespace) -> int:
    from exporter.actions.serve import serve_act
    from exporter.config.model import _check_listen
    from exporter.http.web_config import WebConfigError

    if args.listen is not None:
        try:
            _check_listen(args.listen)
        except ValueError as error:
            raise UsageError(f"--listen: {error}") from None
    config = load_config(args.config)
    if args.state_dir:  # the flag wins over alerting.act.state_dir (a container names its volume here)
        act = config.alerting.act.model_copy(update={"state_dir": str(Path(args.state_dir).resolve())})
        config = config.model_copy(update={"alerting": config.alerting.model_copy(update={"act": act})})
    if not config.alerting.actions:
        print(f"mlmon act: {args.config} declares no alerting.actions; every webhook will match nothing", file=sys.stderr)
    try:
        serve_act(config, args.listen, args.dry_run, args.web_config_file or None)
    except WebConfigError as error:
        print(f"web config: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from exporter.tooling.demo import DemoOptions, run_demo

    options = DemoOptions(
        seed=args.seed, rate=args.rate, duration=args.duration, drift_after=args.drift_after, label_delay=args.label_delay,
        swap_after=args.swap_after if args.swap_after >= 0 else None,
        prometheus_port=args.prometheus_port, alertmanager_port=args.alertmanager_port,
    )
    # SIGTERM stops the demo like Ctrl-C does: traffic ends, every process it started is stopped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    render = None
    if args.stack:
        from alert_rules.build import render  # the CLI composes the packages; exporter never imports them
    run_demo(load_config(args.config), options, render=render)
    return 0


def cmd_config_check(args: argparse.Namespace) -> int:
    path = args.config
    if args.file is not None:  # the old positional spelling
        _deprecated(args, "`mlmon config check FILE`", "`mlmon config check -c FILE`")
        path = args.file
    config = load_config(path)
    if config.links.exporter_url is None:  # valid, but alerts and dashboards then cannot link the pages
        print("hint: links.exporter_url is not set, so alerts carry no page_url and the dashboards no link to the "
              "model pages; set it to the URL a browser reaches the exporter at (docs/pages.md#links-to-the-pages)",
              file=sys.stderr)
    if args.skip_profiles:
        print(f"{path}: ok ({len(config.models)} model(s); reference profiles not checked)")
        return 0
    from exporter.profiles.load import load_profiles

    try:
        profiles = load_profiles(config)
    except ProfileError as error:
        # One line (the error names the file and its fix); a profile not built yet is a common first run.
        raise ProfileError(
            f"{error} (the config itself is valid: `mlmon config check -c {path} --skip-profiles` checks only it)"
        ) from None
    print(f"{path}: ok ({len(config.models)} model(s), references readable)")
    _print_series_budget(config, profiles, args.versions)
    return 0


def _print_series_budget(config: MlmonConfig, profiles: dict[str, Profile], versions: int) -> None:
    """Series per exporter by family group and the fleet rules' series; a warning above the budget."""
    from alert_rules.series import recorded_series  # the composition root may run the generators
    from exporter.tooling.series_budget import GROUPS, columns, explained, per_exporter, segment_drift_costs
    from exporter.tooling.series_budget import segment_quality_costs

    counts = per_exporter(config, profiles, versions)
    total = sum(counts.values())
    parts = ", ".join(f"{group} {counts[group]}" for group in GROUPS)
    print(f"series per exporter ({versions} version(s) per model, every family reached): {parts}; total {total}")
    for line in segment_drift_costs(config, profiles) + segment_quality_costs(config):
        print(line)
    rules = recorded_series(config, {m.name: columns(m, profiles.get(m.name)) for m in config.models}, versions,
                            {m.name: explained(m, profiles.get(m.name)) for m in config.models})
    print(f"fleet recording rules add {rules} series (once per Prometheus, whatever the replica count)")
    budget = config.exporter.series_budget
    if total > budget:
        print(f"warning: {total} series per exporter is above exporter.series_budget ({budget}); fewer drift.export "
              "methods, windows, bins, segment values, segments[].features with drift or segments with quality: true (a "
              "multiclass one costs (classes + 1)^2 per value) lower it (docs/kubernetes.md, docs/drift.md \"Drift per "
              "segment\", docs/quality.md \"Quality per segment value\")", file=sys.stderr)


def cmd_config_schema(args: argparse.Namespace) -> int:
    text = json.dumps(config_json_schema(), indent=2) + "\n"
    if args.out:
        _write(args.out, text)
    else:
        sys.stdout.write(text)
    return 0


def _config_and_model(args: argparse.Namespace) -> tuple[MlmonConfig, ModelConfig]:
    """The config of -c and its model named by --model; a name it does not have is a config error."""
    config = load_config(args.config)
    model = config.model(args.model)
    if model is None:
        raise ConfigError(args.config, [f"no model named {args.model!r}; models: {', '.join(m.name for m in config.models)}"])
    return config, model


def cmd_profile_build(args: argparse.Namespace) -> int:
    from exporter.profiles.build import build_profile

    config, model = _config_and_model(args)
    out = args.out
    if args.output is not None:
        _deprecated(args, "--output", "-o/--out")
        out = out or args.output
    if out is None:
        raise UsageError("profile build needs -o/--out PROFILE.json, the file to write")
    say = lambda line: print(f"mlmon profile build: {line}", file=sys.stderr)  # noqa: E731
    profile = build_profile(
        args.data, model, sample_rows=args.sample_rows, progress=sys.stderr.isatty(), say=say, label_column=args.label_column
    )
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    profile.write(out)
    print(f"{out}: {profile.rows} rows, {len(profile.features)} features, {profile.content_hash}")
    return 0


def cmd_labels_send(args: argparse.Namespace) -> int:
    from exporter.tooling.labels_send import SendError, send_labels

    token = Path(args.bearer_token_file).read_text().strip() if args.bearer_token_file else None
    try:
        summaries = send_labels(
            Path(args.file), args.url or ["http://127.0.0.1:8711"], id_column=args.id_column,
            label_column=args.label_column, model=args.model, batch_size=args.batch_size, token=token,
        )
    except SendError as error:
        raise UsageError(str(error)) from None
    for url, summary in summaries.items():
        print(f"{url}: {summary.line()}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from exporter.config.model import parse_duration
    from exporter.tooling.report import ReportError, check_batch, write_report

    config, model = _config_and_model(args)
    say = lambda line: print(f"mlmon report: {line}", file=sys.stderr)  # noqa: E731
    try:
        window = parse_duration(args.window) if args.window else None
        report = check_batch(config, model, Path(args.data), label_column=args.label_column or None, window=window,
                             progress=sys.stderr.isatty(), say=say)
    except (ReportError, ValueError) as error:
        raise UsageError(str(error)) from None
    out = Path(args.out)
    json_path = Path(args.json) if args.json else out.with_suffix(".json")
    write_report(report, out, json_path)
    for reason in report.reasons:
        say(reason)
    print(f"{out}, {json_path}: {report.rows} rows, {'FAIL' if report.failed else 'pass'}")
    return 1 if report.failed else 0


def cmd_explain(args: argparse.Namespace) -> int:
    """The fleet's nDCG, share TV and top driver per version, from Prometheus's merged counters (docs/explainability.md)."""
    import json

    from exporter.config.model import parse_duration
    from exporter.tooling.fleet_attributions import fleet_report

    config, model = _config_and_model(args)
    try:
        window = parse_duration(args.window) if args.window else max(model.drift.windows)
        report = fleet_report(args.prometheus, model, window)
    except (ValueError, OSError) as error:
        raise UsageError(f"explain: {error}") from None
    print(json.dumps(report, indent=1))
    return 1 if any(v.get("drifted") for v in report["versions"]) else 0


def cmd_docs(args: argparse.Namespace) -> int:
    from exporter.config.reference_doc import render_config_doc
    from exporter.tooling.metrics_doc import render_metrics_doc

    text = render_metrics_doc() if args.docs_command == "metrics" else render_config_doc()
    if args.check:
        current = Path(args.out).read_text() if Path(args.out).exists() else ""
        if current != text:
            print(f"{args.out} is stale: run `make generate`", file=sys.stderr)
            return 1
        return 0
    _write(args.out, text)
    return 0


def _rebuild_command(args: argparse.Namespace, what: str) -> str:
    return f"mlmon {what} build -c {args.config} -o {args.out}"


def cmd_rules_build(args: argparse.Namespace) -> int:
    from alert_rules.build import build

    return build(load_config(args.config), Path(args.out), check=args.check, fix=_rebuild_command(args, "rules"))


def cmd_rollouts_build(args: argparse.Namespace) -> int:
    from alert_rules.rollouts import build  # Argo Rollouts / Flagger gates (docs/rollouts.md)

    return build(load_config(args.config), Path(args.out), check=args.check, fix=_rebuild_command(args, "rollouts"))


def cmd_dashboards_build(args: argparse.Namespace) -> int:
    # Imported here: `dashboards` imports `exporter`, never the other way round.
    from dashboards.build import stale, write

    config, out = load_config(args.config), Path(args.out)
    if args.check:
        problems = stale(config, out)
        for problem in problems:
            print(f"{problem}: run `{_rebuild_command(args, 'dashboards')}`", file=sys.stderr)
        return 1 if problems else 0
    for path in write(config, out):
        print(path)
    return 0


def cmd_chart_values(args: argparse.Namespace) -> int:
    from chart_values.values import render  # composes alert_rules and dashboards, like the two above

    text = render(Path(args.config), under=args.under, references_configmap=args.references_configmap)
    if args.out == "-":
        sys.stdout.write(text)
    else:
        Path(args.out).write_text(text, encoding="utf-8")
        print(args.out)
    return 0


def cmd_chart_kustomize(args: argparse.Namespace) -> int:
    from chart_values.kustomize import write  # the chart's objects as plain YAML, for a Deployment Helm does not manage

    for path in write(Path(args.config), Path(args.out), deployment=args.deployment, namespace=args.namespace,
                      native=args.native, image=args.image):
        print(path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="mlmon", description="Prometheus-native monitoring for ML models.")
    parser.add_argument("--version", action="version", version=f"mlmon {__version__}")
    parser.add_argument(
        "--log-level", type=str.upper, choices=LOG_LEVELS, default=os.environ.get("MLMON_LOG_LEVEL", "INFO").upper(),
        help="DEBUG, INFO, WARNING or ERROR (env MLMON_LOG_LEVEL; default: %(default)s)",
    )
    parser.add_argument(
        "--log-format", choices=LOG_FORMATS, default=os.environ.get("MLMON_LOG_FORMAT", "text"),
        help="text, or json: one JSON object per line for log collectors (env MLMON_LOG_FORMAT; default: %(default)s)",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the sidecar exporter")
    _config_arg(serve)
    _serve_args(serve)
    serve.add_argument(
        "--state-dir", default=os.environ.get("MLMON_STATE_DIR"),
        help="folder for state snapshots, overriding exporter.state_dir (env MLMON_STATE_DIR)",
    )
    serve.set_defaults(run=cmd_serve)

    act = commands.add_parser("act", help="receive Alertmanager webhooks and run alerting.actions (docs/remediation.md)")
    _config_arg(act)
    act.add_argument("--listen", default=os.environ.get("MLMON_ACT_LISTEN"), metavar="HOST:PORT",
                     help="where to listen (overrides alerting.act.listen); env MLMON_ACT_LISTEN")
    act.add_argument("--dry-run", action="store_true", default=os.environ.get("MLMON_ACT_DRY_RUN") == "1",
                     help="record what each action would send and call nothing; env MLMON_ACT_DRY_RUN=1")
    act.add_argument("--web.config.file", dest="web_config_file", default=os.environ.get("MLMON_ACT_WEB_CONFIG_FILE"),
                     metavar="FILE", help="exporter-toolkit web config (TLS, basic auth); env MLMON_ACT_WEB_CONFIG_FILE")
    act.add_argument("--state-dir", default=os.environ.get("MLMON_ACT_STATE_DIR"),
                     help="folder of the dedupe record, overriding alerting.act.state_dir (env MLMON_ACT_STATE_DIR)")
    act.set_defaults(run=cmd_act)

    demo = commands.add_parser("demo", help="run the exporter with synthetic traffic that drifts")
    _config_arg(demo)
    demo.add_argument("--seed", type=int, default=7, help="seed of the synthetic traffic (default: %(default)s)")
    demo.add_argument("--rate", type=float, default=200.0, help="records per second per model")
    demo.add_argument("--duration", type=float, default=None, help="seconds to run (default: until Ctrl-C)")
    demo.add_argument("--drift-after", type=float, default=60.0, help="seconds of clean traffic before drift")
    demo.add_argument("--label-delay", type=float, default=20.0, help="seconds before a prediction's label arrives")
    demo.add_argument("--swap-after", type=float, default=30.0,
                      help="seconds until the fraud model is swapped for one that weighs another feature (an "
                      "attribution shift with unchanged inputs); negative: never (default: %(default)s)")
    demo.add_argument(
        "--stack", action="store_true",
        help="also run Prometheus and Alertmanager (Debian packages) with the generated rules; alerts print here",
    )
    demo.add_argument("--prometheus-port", type=int, default=None, help="with --stack: Prometheus's port (default: a free one)")
    demo.add_argument(
        "--alertmanager-port", type=int, default=None, help="with --stack: Alertmanager's port (default: a free one)"
    )
    demo.set_defaults(run=cmd_demo)

    config = commands.add_parser("config", help="validate the config or print its JSON Schema")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    check = config_commands.add_parser("check", help="validate the config and the reference profiles it names")
    _config_arg(check)
    check.add_argument("file", nargs="?", help=argparse.SUPPRESS)  # deprecated: `config check FILE`
    check.add_argument(
        "--skip-profiles", action="store_true", help="validate only the config (before the profiles are built)"
    )
    check.add_argument("--versions", type=int, default=1, metavar="N",
                       help="live versions per model to count series for (default: 1)")
    check.set_defaults(run=cmd_config_check)
    schema = config_commands.add_parser("schema", help="print the JSON Schema of mlmon.yaml")
    schema.add_argument("-o", "--out", help="write to this file instead of stdout")
    schema.set_defaults(run=cmd_config_schema)

    profile = commands.add_parser("profile", help="reference profiles")
    profile_commands = profile.add_subparsers(dest="profile_command", required=True)
    build = profile_commands.add_parser("build", help="build a reference profile from CSV, JSON lines or Parquet")
    _config_arg(build)
    build.add_argument("--model", required=True, help="the config's model the data belongs to")
    build.add_argument("data", help="reference data: .csv, .jsonl/.ndjson, or .parquet (with pyarrow)")
    build.add_argument("-o", "--out", help="the profile file to write (its folder is created)")
    build.add_argument("--output", help=argparse.SUPPRESS)  # deprecated spelling of --out
    build.add_argument("--sample-rows", type=int, default=1_000_000, help="reservoir size for quantiles")
    build.add_argument(
        "--label-column", help="the data's label column: calibrates a classifier's scores (one map per class for "
        "multiclass) or learns a regression model's error per prediction bin, for label-free estimates"
    )
    build.set_defaults(run=cmd_profile_build)

    labels = commands.add_parser("labels", help="ground truth for predictions already sent")
    labels_commands = labels.add_subparsers(dest="labels_command", required=True)
    send = labels_commands.add_parser("send", help="send a file of labels (CSV, JSON lines, Parquet) in batches")
    send.add_argument("file", help="the labels: one row per prediction id")
    send.add_argument(
        "--url", action="append",
        help="the exporter's ingest address (default http://127.0.0.1:8711); repeat it to send to every replica",
    )
    send.add_argument("--id-column", default="id", help="the column of prediction ids (default: %(default)s)")
    send.add_argument("--label-column", default="label", help="the column of labels (default: %(default)s)")
    send.add_argument("--model", help="the model the ids belong to (optional; ids are unique per exporter)")
    send.add_argument("--batch-size", type=int, default=10_000, help="labels per request (default: %(default)s)")
    send.add_argument("--bearer-token-file", help="a file holding the ingest listener's bearer token")
    send.set_defaults(run=cmd_labels_send)

    report = commands.add_parser("report", help="check a batch file against a model's reference (HTML + JSON; exit 1 on drift)")
    _config_arg(report)
    report.add_argument("--model", required=True, help="the config's model the data belongs to")
    report.add_argument("data", help="the batch: .csv, .jsonl/.ndjson, or .parquet (with pyarrow)")
    report.add_argument("-o", "--out", default="report.html", help="the HTML page to write (default: %(default)s)")
    report.add_argument("--json", help="the JSON result to write (default: the --out path with .json)")
    report.add_argument("--window", help="which of the model's drift windows to judge by (default: the first)")
    report.add_argument("--label-column", default="label", help="labels, when the data has them (default: %(default)s)")
    report.set_defaults(run=cmd_report)

    explain = commands.add_parser(
        "explain", help="fleet-wide attribution nDCG, share TV and top driver from Prometheus (exit 1 on drift)")
    _config_arg(explain)
    explain.add_argument("--model", required=True, help="the config's model (with attributions.enabled)")
    explain.add_argument("--prometheus", default="http://127.0.0.1:9090", help="Prometheus with the mlmon rules loaded")
    explain.add_argument("--window", help="a drift window of the model (default: its longest, the alert's)")
    explain.set_defaults(run=cmd_explain)

    rules = commands.add_parser("rules", help="Prometheus rules and Alertmanager config")
    rules_commands = rules.add_subparsers(dest="rules_command", required=True)
    rules_build = rules_commands.add_parser(
        "build", help="write recording/alerting rules, alertmanager.yml and a PrometheusRule from the config"
    )
    _config_arg(rules_build)
    _output_args(rules_build, None)
    rules_build.set_defaults(run=cmd_rules_build)

    rollouts = commands.add_parser("rollouts", help="canary gates: Argo Rollouts and Flagger templates")
    rollouts_commands = rollouts.add_subparsers(dest="rollouts_command", required=True)
    rollouts_build = rollouts_commands.add_parser(
        "build", help="write an AnalysisTemplate and MetricTemplates per model from the config (docs/rollouts.md)"
    )
    _config_arg(rollouts_build)
    _output_args(rollouts_build, None)
    rollouts_build.set_defaults(run=cmd_rollouts_build)

    dashboards = commands.add_parser("dashboards", help="Grafana dashboards")
    dashboards_commands = dashboards.add_subparsers(dest="dashboards_command", required=True)
    dashboards_build = dashboards_commands.add_parser("build", help="write the Grafana dashboards JSON from the config")
    _config_arg(dashboards_build)
    _output_args(dashboards_build, None)
    dashboards_build.set_defaults(run=cmd_dashboards_build)

    chart = commands.add_parser("chart", help="the Helm chart helm/mlmon")
    chart_commands = chart.add_subparsers(dest="chart_command", required=True)
    chart_values = chart_commands.add_parser(
        "values", help="chart values deploying the config with its profiles, rules and dashboards (docs/kubernetes.md)"
    )
    _config_arg(chart_values)
    chart_values.add_argument("-o", "--out", required=True, help="the values file to write; - for stdout")
    chart_values.add_argument("--under", help="nest the values under this key, e.g. mlmon in a parent chart's values")
    chart_values.add_argument(
        "--references-configmap", metavar="NAME",
        help="the profiles are in this ConfigMap of yours (flat keys) instead of in the values",
    )
    chart_values.set_defaults(run=cmd_chart_values)
    kustomize = chart_commands.add_parser(
        "kustomize", help="a Kustomize component (plain YAML) adding the sidecar, rules and dashboards to your Deployment"
    )
    _config_arg(kustomize)
    kustomize.add_argument("-o", "--out", required=True, help="the folder to write (created if missing)")
    kustomize.add_argument("--deployment", required=True, help="name of the Deployment the sidecar is added to")
    kustomize.add_argument("--namespace", help="namespace of the objects (default: the overlay's)")
    kustomize.add_argument("--native", action="store_true",
                           help="a native sidecar: initContainers with restartPolicy Always (Kubernetes >= 1.29)")
    kustomize.add_argument("--image", help="the exporter image (default: mlmon/exporter:<chart appVersion>)")
    kustomize.set_defaults(run=cmd_chart_kustomize)

    from exporter.tooling.reference_client import add_reference_commands

    add_reference_commands(commands)  # mlmon reference promote | capture --reset | show (docs/reference.md)

    docs = commands.add_parser("docs", help="generate reference docs")
    docs_commands = docs.add_subparsers(dest="docs_command", required=True)
    metrics = docs_commands.add_parser("metrics", help="docs/metrics.md from the metric catalog")
    _output_args(metrics, "docs/metrics.md")
    metrics.set_defaults(run=cmd_docs)
    config_doc = docs_commands.add_parser("config", help="docs/configuration.md from the config models")
    _output_args(config_doc, "docs/configuration.md")
    config_doc.set_defaults(run=cmd_docs)
    return parser


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line (time, level, logger, message, and the traceback when there is one)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str, log_format: str) -> None:
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonLogFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    limit_log_lines([handler])  # a flood of one event is counted in metrics, said a few times a minute in the log


def _os_problem(error: OSError) -> str:
    """`cannot write x/y.json: Permission denied` rather than `[Errno 13] ...`."""
    where = f" {error.filename}" if error.filename else ""
    return f"error: cannot use{where}: {error.strerror or error}"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.log_level not in LOG_LEVELS:  # from the environment: argparse checks only the flag
        parser.error(f"MLMON_LOG_LEVEL {args.log_level!r} is not one of {', '.join(LOG_LEVELS)}")
    if args.log_format not in LOG_FORMATS:
        parser.error(f"MLMON_LOG_FORMAT {args.log_format!r} is not one of {', '.join(LOG_FORMATS)}")
    configure_logging(args.log_level, args.log_format)
    try:
        return args.run(args)
    except ConfigError as error:
        print(error.render(), file=sys.stderr)
        return EXIT_BAD_INPUT
    except ProfileError as error:
        print(f"reference profile: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except UsageError as error:
        print(f"mlmon: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as error:
        print(_os_problem(error), file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
