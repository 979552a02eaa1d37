"""`mlmon serve --web.config.file` in exporter-toolkit's format, checked with curl and with Prometheus's promtool.

TLS with client certificates (a missing or foreign client cert is refused), bcrypt basic auth,
the extra headers, re-reading the file on change, and the ingest listener's bearer token, which is
checked before a single body byte is read.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest
import yaml

from tests.conftest import toy_model_data, toy_profile
from tests.support.pki import Pki, make_pki
from tests.support.processes import require_binary
from tests.support.served import HOST, ServedExporter, recv_all, status_of, write_config

PASSWORD = "correct horse"
TOKEN = "s3cr3t-ingest-token"


def web_config(pki: Pki, password: str = PASSWORD) -> dict:
    return {
        "tls_server_config": {
            "cert_file": pki.server_cert.name,  # relative to the web config file, as in the toolkit
            "key_file": pki.server_key.name,
            "client_auth_type": "RequireAndVerifyClientCert",
            "client_ca_file": pki.ca.name,
            "min_version": "TLS13",
        },
        "http_server_config": {"headers": {"X-Frame-Options": "deny", "X-Content-Type-Options": "nosniff"}},
        "basic_auth_users": {"prometheus": bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()},
    }


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServedExporter, Pki, Path]]:
    if shutil.which("curl") is None:
        require_binary("curl")
    folder = tmp_path_factory.mktemp("webconfig")
    pki = make_pki(folder)
    web = folder / "web.yml"
    web.write_text(yaml.safe_dump(web_config(pki)))
    (folder / "token").write_text(TOKEN + "\n")
    toy_profile().write(folder / "toy.json")
    config = write_config(folder, [toy_model_data()])
    served = ServedExporter(config, "--web.config.file", str(web), "--ingest.bearer-token-file", str(folder / "token"))
    deadline = time.monotonic() + 30
    while not served.log_text().count("serving metrics"):  # /readyz needs credentials here; the log says when
        assert served.alive() and time.monotonic() < deadline, served.log_text()
        time.sleep(0.05)
    yield served, pki, web
    served.stop()


def curl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["curl", "-sS", "--max-time", "10", "-D", "-", *args], capture_output=True, text=True,
                          timeout=20)


def metrics(served: ServedExporter, pki: Pki, *args: str, client: tuple[Path, Path] | None = None,
            path: str = "/metrics") -> subprocess.CompletedProcess[str]:
    cert = ["--cert", str(client[0]), "--key", str(client[1])] if client else []
    return curl("--cacert", str(pki.ca), *cert, *args, f"https://{HOST}:{served.metrics_port}{path}")


def test_the_web_config_file_passes_promtool_check_web_config(setup) -> None:
    _, _, web = setup
    promtool = require_binary("promtool")
    result = subprocess.run([promtool, "check", "web-config", str(web)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_client_without_a_certificate_or_with_a_stranger_s_is_refused(setup) -> None:
    served, pki, _ = setup
    assert metrics(served, pki, "-u", f"prometheus:{PASSWORD}").returncode != 0
    assert metrics(served, pki, "-u", f"prometheus:{PASSWORD}", client=(pki.stranger_cert, pki.stranger_key)).returncode != 0


def test_plain_http_and_tls_below_min_version_are_refused(setup) -> None:
    served, pki, _ = setup
    assert curl(f"http://{HOST}:{served.metrics_port}/metrics").stdout.find(" 200 ") == -1
    old_tls = metrics(served, pki, "--tls-max", "1.2", "-u", f"prometheus:{PASSWORD}", client=(pki.client_cert, pki.client_key))
    assert old_tls.returncode != 0


def test_basic_auth_is_401_without_or_with_a_wrong_password_and_200_with_the_right_one(setup) -> None:
    served, pki, _ = setup
    client = (pki.client_cert, pki.client_key)
    missing = metrics(served, pki, client=client)
    assert " 401 " in missing.stdout.splitlines()[0] and "www-authenticate: basic" in missing.stdout.lower()
    assert " 401 " in metrics(served, pki, "-u", "prometheus:wrong", client=client).stdout.splitlines()[0]
    assert " 401 " in metrics(served, pki, "-u", f"nobody:{PASSWORD}", client=client).stdout.splitlines()[0]
    ok = metrics(served, pki, "-u", f"prometheus:{PASSWORD}", client=client)
    assert " 200 " in ok.stdout.splitlines()[0] and "mlmon_limit_hits_total" in ok.stdout


def test_the_configured_headers_are_sent_and_no_server_banner(setup) -> None:
    served, pki, _ = setup
    head = metrics(served, pki, "-u", f"prometheus:{PASSWORD}", client=(pki.client_cert, pki.client_key)).stdout.lower()
    head = head.split("\r\n\r\n", 1)[0]
    assert "x-frame-options: deny" in head and "x-content-type-options: nosniff" in head
    assert "\nserver:" not in head


def test_probes_stay_open_for_kubelet(setup) -> None:
    served, pki, _ = setup
    assert " 200 " in metrics(served, pki, client=(pki.client_cert, pki.client_key), path="/healthz").stdout


def test_a_changed_web_config_applies_to_the_next_request(setup) -> None:
    served, pki, web = setup
    client = (pki.client_cert, pki.client_key)
    original = web.read_text()
    try:
        web.write_text(yaml.safe_dump(web_config(pki, password="new password")))
        assert " 401 " in metrics(served, pki, "-u", f"prometheus:{PASSWORD}", client=client).stdout.splitlines()[0]
        assert " 200 " in metrics(served, pki, "-u", "prometheus:new password", client=client).stdout.splitlines()[0]
    finally:
        web.write_text(original)


def test_an_authenticated_post_reload_reloads(setup) -> None:
    served, pki, _ = setup
    reload = metrics(served, pki, "-X", "POST", "-u", f"prometheus:{PASSWORD}", client=(pki.client_cert, pki.client_key),
                     path="/-/reload")
    assert " 200 " in reload.stdout.splitlines()[0] and '"status":"reloaded"' in reload.stdout


def ingest(served: ServedExporter, *args: str) -> subprocess.CompletedProcess[str]:
    return curl("-X", "POST", "-H", "Content-Type: application/json", "--data", "[]", *args,
                f"http://{HOST}:{served.ingest_port}/v1/predictions")


def test_ingest_needs_the_bearer_token(setup) -> None:
    served, _, _ = setup
    missing = ingest(served)
    assert " 401 " in missing.stdout.splitlines()[0] and "www-authenticate: bearer" in missing.stdout.lower()
    assert " 401 " in ingest(served, "-H", "Authorization: Bearer wrong").stdout.splitlines()[0]
    assert " 200 " in ingest(served, "-H", f"Authorization: Bearer {TOKEN}").stdout.splitlines()[0]


def test_a_wrong_token_is_refused_before_the_body_is_read(setup) -> None:
    served, _, _ = setup
    with socket.create_connection((HOST, served.ingest_port), timeout=5) as sock:
        # A megabyte is announced and none is sent: the answer can only come from the headers.
        sock.sendall(b"POST /v1/predictions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\n"
                     b"Expect: 100-continue\r\nContent-Length: 1000000\r\n\r\n")
        answer = recv_all(sock)
    assert status_of(answer) == 401  # not 100 Continue: the server never asked for the body


def test_a_renewed_server_certificate_is_served_from_the_next_connection(setup) -> None:
    served, pki, _ = setup
    client = (pki.client_cert, pki.client_key)
    cert, key = pki.server_cert.read_bytes(), pki.server_key.read_bytes()
    renewed = make_pki(pki.ca.parent / "renewed")  # a new CA and a new server certificate
    try:
        pki.server_cert.write_bytes(renewed.server_cert.read_bytes())
        pki.server_key.write_bytes(renewed.server_key.read_bytes())
        assert metrics(served, pki, "-u", f"prometheus:{PASSWORD}", client=client).returncode != 0  # old CA: unknown
        trusting_new = curl("--cacert", str(renewed.ca), "--cert", str(client[0]), "--key", str(client[1]),
                            "-u", f"prometheus:{PASSWORD}", f"https://{HOST}:{served.metrics_port}/metrics")
        assert " 200 " in trusting_new.stdout.splitlines()[0]
    finally:
        pki.server_cert.write_bytes(cert)
        pki.server_key.write_bytes(key)


def test_client_allowed_sans_admits_only_the_listed_client_names(setup) -> None:
    served, pki, web = setup
    client = (pki.client_cert, pki.client_key)  # its SAN is DNS:prometheus.test
    original = web.read_text()
    try:
        for sans, admitted in ((["prometheus.test"], True), (["someone-else.test"], False)):
            config = web_config(pki)
            config["tls_server_config"]["client_allowed_sans"] = sans
            web.write_text(yaml.safe_dump(config))
            result = metrics(served, pki, "-u", f"prometheus:{PASSWORD}", client=client)
            assert (result.returncode == 0 and " 200 " in result.stdout) is admitted, (sans, result)
    finally:
        web.write_text(original)
