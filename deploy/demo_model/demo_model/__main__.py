"""`python -m demo_model train|serve|traffic`, configured by flags or the environment of the container."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

MODEL_DIR = os.environ.get("MODEL_DIR", "/opt/demo_model/models")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="demo_model")
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="fit the models and save them")
    train.add_argument("--out", default=MODEL_DIR)
    train.add_argument("--rows", type=int, default=20_000)
    serve = commands.add_parser("serve", help="serve predictions and forward them to the mlmon sidecar")
    serve.add_argument("--models", default=MODEL_DIR)
    serve.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    serve.add_argument("--version", default=os.environ.get("MODEL_VERSION", "v1"))
    serve.add_argument("--ingest-url", default=os.environ.get("MLMON_INGEST_URL", "http://127.0.0.1:8711/v1/predictions"))
    serve.add_argument("--swap-after", type=float, default=float(os.environ.get("SWAP_AFTER", "0")) or None,
                       help="seconds after start when the fraud model is swapped for one that weighs the channel "
                       "(an attribution shift with unchanged inputs; MLMonAttributionDrift); default never")
    traffic = commands.add_parser("traffic", help="send drifting synthetic traffic to the model server")
    traffic.add_argument("--model-url", default=os.environ.get("MODEL_URL", "http://127.0.0.1:8080"))
    traffic.add_argument("--rate", type=float, default=float(os.environ.get("RECORDS_PER_SECOND", "50")))
    traffic.add_argument("--clean-seconds", type=float, default=float(os.environ.get("CLEAN_SECONDS", "600")))
    traffic.add_argument("--drift-seconds", type=float, default=float(os.environ.get("DRIFT_SECONDS", "900")))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    if args.command == "train":
        from demo_model.train import train_all

        for path in train_all(Path(args.out), rows=args.rows):
            print(f"trained {path}")
    elif args.command == "serve":
        from werkzeug.serving import make_server

        from mlmon_client import Client

        from demo_model.server import create_app, load_models

        import time

        started, swap_after = time.monotonic(), args.swap_after
        app = create_app(load_models(Path(args.models)), Client(args.ingest_url), args.version,
                         swapped=lambda: swap_after is not None and time.monotonic() - started >= swap_after)
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        logging.getLogger("demo_model").info("serving on :%d, forwarding to %s", args.port, args.ingest_url)
        make_server("0.0.0.0", args.port, app, threaded=True).serve_forever()
    else:
        from demo_model.traffic import Schedule, run

        run(args.model_url, args.rate, Schedule(args.clean_seconds, args.drift_seconds))


if __name__ == "__main__":
    main()
