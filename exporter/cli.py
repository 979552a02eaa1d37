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

from exporter.config.model import ConfigError, config_json_schema, load_config
from exporter.profiles.profile import ProfileError

EXIT_BAD_INPUT = 2


def _config_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", default="mlmon.yaml", help="path to mlmon.yaml (default: %(default)s)")


def _output_args(parser: argparse.ArgumentParser, default: str) -> None:
    """Every generator writes to --out, or with --check only compares (exit 1 when stale, for CI)."""
    parser.add_argument("--out", default=default, help="where to write (default: %(default)s)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 when what is there is stale")


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
    options = ServeOptions(
        config_path=args.config, web_config_file=args.web_config_file or None,
        ingest_web_config_file=args.ingest_web_config_file or None,
        ingest_bearer_token_file=args.ingest_bearer_token_file or None,
        metrics_listen=args.web_listen, ingest_listen=args.ingest_listen,
    )
    try:
        serve(load_config(args.config), options)
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


def cmd_demo(args: argparse.Namespace) -> int:
    from exporter.tooling.demo import DemoOptions, run_demo

    options = DemoOptions(
        seed=args.seed, rate=args.rate, duration=args.duration, drift_after=args.drift_after, label_delay=args.label_delay
    )
    # SIGTERM stops the demo like Ctrl-C does: traffic ends, every process it started is stopped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    render = None
    if args.stack:
        from alert_rules.build import render  # the CLI composes the packages; exporter never imports them
    run_demo(load_config(args.config), options, render=render)
    return 0


def cmd_config_check(args: argparse.Namespace) -> int:
    config = load_config(args.file)
    from exporter.http.server import load_profiles

    load_profiles(config)
    print(f"{args.file}: ok ({len(config.models)} model(s), references readable)")
    return 0


def cmd_config_schema(args: argparse.Namespace) -> int:
    text = json.dumps(config_json_schema(), indent=2) + "\n"
    if args.out:
        Path(args.out).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def cmd_profile_build(args: argparse.Namespace) -> int:
    from exporter.profiles.build import build_profile

    config = load_config(args.config)
    model = config.model(args.model)
    if model is None:
        raise ConfigError(args.config, [f"no model named {args.model!r}; models: {', '.join(m.name for m in config.models)}"])
    profile = build_profile(args.data, model, sample_rows=args.sample_rows, progress=sys.stderr.isatty())
    profile.write(args.output)
    print(f"{args.output}: {profile.rows} rows, {len(profile.features)} features, {profile.content_hash}")
    return 0


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
    Path(args.out).write_text(text)
    return 0


def cmd_rules_build(args: argparse.Namespace) -> int:
    from alert_rules.build import build

    return build(load_config(args.config), Path(args.out), check=args.check)


def cmd_dashboards_build(args: argparse.Namespace) -> int:
    # Imported here: `dashboards` imports `exporter`, never the other way round.
    from dashboards.build import stale, write

    config, out = load_config(args.config), Path(args.out)
    if args.check:
        problems = stale(config, out)
        for problem in problems:
            print(f"{problem}: run `make generate`", file=sys.stderr)
        return 1 if problems else 0
    for path in write(config, out):
        print(path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlmon", description="Prometheus-native monitoring for ML models.")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (default: %(default)s)")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the sidecar exporter")
    _config_arg(serve)
    _serve_args(serve)
    serve.set_defaults(run=cmd_serve)

    demo = commands.add_parser("demo", help="run the exporter with synthetic traffic that drifts")
    _config_arg(demo)
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--rate", type=float, default=200.0, help="records per second per model")
    demo.add_argument("--duration", type=float, default=None, help="seconds to run (default: until Ctrl-C)")
    demo.add_argument("--drift-after", type=float, default=60.0, help="seconds of clean traffic before drift")
    demo.add_argument("--label-delay", type=float, default=20.0, help="seconds before a prediction's label arrives")
    demo.add_argument(
        "--stack", action="store_true",
        help="also run Prometheus and Alertmanager (Debian packages) with the generated rules; alerts print here",
    )
    demo.set_defaults(run=cmd_demo)

    config = commands.add_parser("config", help="validate the config or print its JSON Schema")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    check = config_commands.add_parser("check", help="validate FILE and the reference profiles it names")
    check.add_argument("file")
    check.set_defaults(run=cmd_config_check)
    schema = config_commands.add_parser("schema", help="print the JSON Schema of mlmon.yaml")
    schema.add_argument("--out", help="write to this file instead of stdout")
    schema.set_defaults(run=cmd_config_schema)

    profile = commands.add_parser("profile", help="reference profiles")
    profile_commands = profile.add_subparsers(dest="profile_command", required=True)
    build = profile_commands.add_parser("build", help="build a reference profile from CSV, JSON lines or Parquet")
    _config_arg(build)
    build.add_argument("--model", required=True)
    build.add_argument("data", help="reference data: .csv, .jsonl/.ndjson, or .parquet (with pyarrow)")
    build.add_argument("-o", "--output", required=True)
    build.add_argument("--sample-rows", type=int, default=1_000_000, help="reservoir size for quantiles")
    build.set_defaults(run=cmd_profile_build)

    rules = commands.add_parser("rules", help="Prometheus rules and Alertmanager config")
    rules_commands = rules.add_subparsers(dest="rules_command", required=True)
    rules_build = rules_commands.add_parser(
        "build", help="write recording/alerting rules, alertmanager.yml and a PrometheusRule from the config"
    )
    _config_arg(rules_build)
    _output_args(rules_build, "alert_rules/generated")
    rules_build.set_defaults(run=cmd_rules_build)

    dashboards = commands.add_parser("dashboards", help="Grafana dashboards")
    dashboards_commands = dashboards.add_subparsers(dest="dashboards_command", required=True)
    dashboards_build = dashboards_commands.add_parser("build", help="write the Grafana dashboards JSON from the config")
    _config_arg(dashboards_build)
    _output_args(dashboards_build, "dashboards/generated")
    dashboards_build.set_defaults(run=cmd_dashboards_build)

    docs = commands.add_parser("docs", help="generate reference docs")
    docs_commands = docs.add_subparsers(dest="docs_command", required=True)
    metrics = docs_commands.add_parser("metrics", help="docs/metrics.md from the metric catalog")
    _output_args(metrics, "docs/metrics.md")
    metrics.set_defaults(run=cmd_docs)
    config_doc = docs_commands.add_parser("config", help="docs/configuration.md from the config models")
    _output_args(config_doc, "docs/configuration.md")
    config_doc.set_defaults(run=cmd_docs)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return args.run(args)
    except ConfigError as error:
        print(error.render(), file=sys.stderr)
        return EXIT_BAD_INPUT
    except ProfileError as error:
        print(f"reference profile: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
