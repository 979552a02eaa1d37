"""`mlmon reference promote | capture --reset | show`: the reference admin API of a running exporter.

Thin over HTTP (exporter/http/reference_http.py, docs/reference.md): the exporter owns the window
counts, so the profile is made there, switched to there and kept in its state_dir; `--out` also
writes the new profile here (e.g. to commit it next to the model, or to point the config at it).
Credentials: `--token-file` (the exporter's admin_bearer_token_file) or `--user` with
`--password-file` (basic auth of its --web.config.file).
"""

from __future__ import annotations

import argparse
import base64
import getpass
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from exporter.profiles.profile import Profile, ProfileError

EXIT_REFUSED = 1
EXIT_UNREACHABLE = 2


class ClientError(Exception):
    def __init__(self, message: str, code: int = EXIT_REFUSED) -> None:
        super().__init__(message)
        self.code = code


def _headers(args: argparse.Namespace) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if args.token_file:
        headers["Authorization"] = "Bearer " + Path(args.token_file).read_text(encoding="utf-8").strip()
    elif args.user:
        password = Path(args.password_file).read_text(encoding="utf-8").strip() if args.password_file else ""
        headers["Authorization"] = "Basic " + base64.b64encode(f"{args.user}:{password}".encode()).decode()
    return headers


def call(args: argparse.Namespace, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON answer; ClientError with the exporter's own error text on a 4xx/5xx."""
    url = args.url.rstrip("/") + path
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=_headers(args), method=method)
    try:
        with urllib.request.urlopen(request, timeout=args.timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        try:
            message = json.loads(error.read()).get("error", "")
        except ValueError:
            message = ""
        raise ClientError(f"{method} {url}: {error.code} {message or error.reason}") from None
    except (urllib.error.URLError, OSError) as error:
        raise ClientError(f"{method} {url}: cannot reach the exporter ({getattr(error, 'reason', error)})",
                          EXIT_UNREACHABLE) from None


def _model_path(model: str, suffix: str) -> str:
    return f"/v1/models/{urllib.parse.quote(model, safe='')}/reference{suffix}"


def write_profile(args: argparse.Namespace, version: str | None) -> str:
    query = urllib.parse.urlencode({"profile": "1", **({"version": version} if version else {})})
    answer = call(args, "GET", _model_path(args.model, "?" + query))
    try:
        profile = Profile.from_json(answer["profile"])  # checks the content hash on the way
    except (KeyError, ProfileError) as error:
        raise ClientError(f"the exporter's profile is not usable: {error}") from None
    profile.write(args.out)
    return profile.content_hash


def cmd_promote(args: argparse.Namespace) -> int:
    body = {"version": args.version, "window": args.window, "actor": args.actor, "reason": args.reason}
    try:
        answer = call(args, "POST", _model_path(args.model, ":promote"), body)
        print(f"{args.model}: reference promoted from version {answer['version']} window {answer['window']} "
              f"({answer['samples']} samples): {answer['previous_hash']} -> {answer['reference_hash']}; "
              f"versions switched: {', '.join(answer['switched_versions'])}; kept at {answer['path']}")
        for warning in answer.get("warnings", []):
            print(f"warning: {warning}", file=sys.stderr)
        if args.out:
            write_profile(args, args.version)
            print(f"wrote {args.out}")
    except ClientError as error:
        print(f"mlmon reference promote: {error}", file=sys.stderr)
        return error.code
    return 0


def cmd_capture(args: argparse.Namespace) -> int:
    if not args.reset:
        print("mlmon reference capture: say --reset to restart the capture of a version", file=sys.stderr)
        return EXIT_REFUSED
    body = {"version": args.version, "reset": True, "actor": args.actor, "reason": args.reason}
    try:
        answer = call(args, "POST", _model_path(args.model, ":capture"), body)
    except ClientError as error:
        print(f"mlmon reference capture: {error}", file=sys.stderr)
        return error.code
    print(f"{args.model} version {answer['version']}: capturing the next {answer['capture']} records as its reference "
          f"(was {answer['previous_hash']})")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    query = f"?{urllib.parse.urlencode({'version': args.version})}" if args.version else ""
    try:
        answer = call(args, "GET", _model_path(args.model, query))
        if args.out:
            write_profile(args, args.version)
    except ClientError as error:
        print(f"mlmon reference show: {error}", file=sys.stderr)
        return error.code
    print(json.dumps(answer, indent=1, sort_keys=True))
    return 0


def _common(parser: argparse.ArgumentParser, out_help: str | None) -> None:
    env = os.environ.get
    parser.add_argument("--url", default=env("MLMON_URL", "http://127.0.0.1:8710"),
                        help="the exporter's metrics listener (default: %(default)s; env MLMON_URL)")
    parser.add_argument("--model", required=True, help="the config's model")
    parser.add_argument("--token-file", default=env("MLMON_ADMIN_TOKEN_FILE"),
                        help="file with the exporter's admin bearer token (env MLMON_ADMIN_TOKEN_FILE)")
    parser.add_argument("--user", help="basic auth user of the exporter's --web.config.file")
    parser.add_argument("--password-file", help="file holding that user's password")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the answer")
    if out_help:
        parser.add_argument("-o", "--out", help=out_help)


def _who(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--actor", default=os.environ.get("MLMON_ACTOR") or getpass.getuser(),
                        help="who asks (logged and kept; default: env MLMON_ACTOR or the user name)")
    parser.add_argument("--reason", required=True, help="why (logged and kept with the switch)")


def add_reference_commands(commands: Any) -> None:
    """`mlmon reference ...` under the CLI's subcommands."""
    reference = commands.add_parser("reference", help="switch a running exporter's reference (docs/reference.md)")
    sub = reference.add_subparsers(dest="reference_command", required=True)
    promote = sub.add_parser("promote", help="make a window of a version's live traffic the model's reference")
    _common(promote, "also write the new profile to this file")
    promote.add_argument("--version", required=True, help="the model_version whose window is promoted")
    promote.add_argument("--window", required=True, help="one of the model's drift windows, e.g. 1h")
    _who(promote)
    promote.set_defaults(run=cmd_promote)
    capture = sub.add_parser("capture", help="restart the reference capture of a version (capture-mode models)")
    _common(capture, None)
    capture.add_argument("--version", required=True, help="the model_version whose capture restarts")
    capture.add_argument("--reset", action="store_true", help="restart the capture (required)")
    _who(capture)
    capture.set_defaults(run=cmd_capture)
    show = sub.add_parser("show", help="the reference in use and the recent switches")
    _common(show, "also write the profile in use to this file")
    show.add_argument("--version", help="a version (capture-mode models have one reference per version)")
    show.set_defaults(run=cmd_show)
