"""The web config parser says what is wrong with a file, as exporter-toolkit does, and never ignores a key."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter.http.web_config import WebConfigError, parse_basic, parse_web_config

HASH = "$2y$10$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7zG"

BAD_FILES = [
    ("tls_server_config: {key_file: k}", "missing cert_file"),
    ("tls_server_config: {cert_file: c}", "missing key_file"),
    ("tls_server_config: {cert_file: c, key_file: k, client_ca_file: ca}", "without a client_auth_type"),
    ("tls_server_config: {cert_file: c, key_file: k, client_auth_type: RequireAndVerifyClientCert}", "needs client_ca_file"),
    ("tls_server_config: {cert_file: c, key_file: k, client_auth_type: Sometimes}", "invalid client_auth_type"),
    ("tls_server_config: {cert_file: c, key_file: k, client_auth_type: RequireAnyClientCert, client_ca_file: ca}",
     "not supported"),
    ("tls_server_config: {cert_file: c, key_file: k, min_version: TLS14}", "unknown TLS version"),
    ("tls_server_config: {cert: PEM, key_file: k}", "use cert_file"),
    ("tls_server_config: {cert_file: c, key_file: k, cipher_suites: [TLS_AES_128_GCM_SHA256]}", "not supported"),
    ("tls_server_config: {cert_file: c, key_file: k, bogus: 1}", "unknown key"),
    ("http_server_config: {headers: {X-Powered-By: mlmon}}", "can not be configured"),
    ("http_server_config: {headers: {X-Frame-Options: allow}}", "invalid value for X-Frame-Options"),
    ("basic_auth_users: {prometheus: plaintext}", "not a bcrypt hash"),
    ("rate_limit: {interval: 1s, burst: 5}", "rate_limit is not supported"),
    ("tls_config: {}", "unknown key"),
    ("[1, 2]", "must be a mapping"),
]


@pytest.mark.parametrize("text, message", BAD_FILES)
def test_a_bad_web_config_is_refused_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(WebConfigError, match=message):
        parse_web_config(text, Path("."))


def test_an_empty_file_means_plain_http_without_auth() -> None:
    config = parse_web_config("", Path("."))
    assert config.tls is None and config.users == {} and config.headers == ()


def test_relative_certificate_paths_are_relative_to_the_web_config_file() -> None:
    text = "tls_server_config: {cert_file: s.crt, key_file: s.key, client_auth_type: VerifyClientCertIfGiven, " \
           "client_ca_file: ca.crt}"
    tls = parse_web_config(text, Path("/etc/mlmon")).tls
    assert tls is not None
    assert (tls.cert_file, tls.key_file, tls.client_ca_file) == (
        Path("/etc/mlmon/s.crt"), Path("/etc/mlmon/s.key"), Path("/etc/mlmon/ca.crt"))


def test_users_headers_and_blank_headers_are_read_as_the_toolkit_does() -> None:
    config = parse_web_config(
        f"basic_auth_users: {{alice: '{HASH}'}}\n"
        "http_server_config: {http2: true, headers: {X-Frame-Options: deny, Content-Security-Policy: ''}}",
        Path("."),
    )
    assert config.users == {"alice": HASH.encode()}
    assert config.headers == ((b"x-frame-options", b"deny"),)  # "Unset if blank"


@pytest.mark.parametrize("header, expected", [
    (b"Basic YWxpY2U6c2VjcmV0", ("alice", b"secret")),
    (b"basic YWxpY2U6c2U6Y3JldA==", ("alice", b"se:cret")),  # a colon in the password
    (b"Basic !!!", None),
    (b"Basic YWxpY2U=", None),  # no colon
    (b"Bearer abc", None),
    (None, None),
])
def test_basic_credentials_are_parsed_strictly(header: bytes | None, expected: tuple[str, bytes] | None) -> None:
    assert parse_basic(header) == expected
