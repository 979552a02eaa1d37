"""`--web.config.file`: exporter-toolkit's web configuration (TLS, mTLS, basic auth, headers) for Python.

The format and its semantics are those of every Prometheus exporter
(https://github.com/prometheus/exporter-toolkit/blob/master/docs/web-configuration.md), so one
file works for mlmon, node_exporter and `promtool check web-config`:

    tls_server_config:
      cert_file: server.crt          # relative paths are relative to this file
      key_file: server.key
      client_auth_type: RequireAndVerifyClientCert
      client_ca_file: ca.crt
      min_version: TLS12
    http_server_config:
      headers:
        X-Frame-Options: deny
    basic_auth_users:
      prometheus: $2y$10$...         # bcrypt hashes only

Like the toolkit, the file is re-read when it changes (checked on every request and connection:
the small file is read and compared, the certificates it names are compared by stat): new users, headers, certificates, keys and client
CAs apply to the next request or connection. A file that turns invalid fails closed (500 for
requests, failed handshakes for TLS) until it is fixed, as in the toolkit. Whether a listener
speaks TLS at all is fixed at start, as in the toolkit.

Parts of the toolkit format mlmon does not implement are refused with a clear message rather
than ignored: inline `cert`/`key`, `cipher_suites`, `curve_preferences`, `rate_limit`.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt
import yaml

log = logging.getLogger("mlmon")

TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1, "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3,
}
# The toolkit's client_auth_type values; RequestClientCert and RequireAnyClientCert ask for a
# certificate without verifying it, which OpenSSL cannot express, so mlmon refuses them.
CLIENT_AUTH = {
    "": ssl.CERT_NONE, "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
# The only headers the toolkit lets a web config set, with their allowed values (None: any).
EXTRA_HEADERS: dict[str, tuple[str, ...] | None] = {
    "Strict-Transport-Security": None,
    "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-XSS-Protection": None,
    "Content-Security-Policy": None,
}
TLS_KEYS = {"cert_file", "key_file", "client_auth_type", "client_ca_file", "client_ca", "client_allowed_sans",
            "min_version", "max_version", "prefer_server_cipher_suites"}
UNSUPPORTED_TLS_KEYS = {"cert": "use cert_file", "key": "use key_file", "cipher_suites": "OpenSSL's defaults apply",
                        "curve_preferences": "OpenSSL's defaults apply"}
# A bcrypt hash of a random password: unknown users are checked against it so that a wrong user
# takes as long as a wrong password (no user enumeration by timing), as the toolkit does.
DECOY_HASH = b"$2b$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi"


class WebConfigError(ValueError):
    """A web config that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class TLSSettings:
    cert_file: Path
    key_file: Path
    client_auth: ssl.VerifyMode
    client_auth_type: str
    client_ca_file: Path | None
    client_ca: str | None
    client_allowed_sans: tuple[str, ...] | None
    min_version: ssl.TLSVersion
    max_version: ssl.TLSVersion
    prefer_server_ciphers: bool

    def files(self) -> tuple[Path, ...]:
        return tuple(p for p in (self.cert_file, self.key_file, self.client_ca_file) if p is not None)

    def context(self) -> ssl.SSLContext:
        """A server context; raises WebConfigError when a file cannot be read or does not match."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = self.min_version
        context.maximum_version = self.max_version
        if self.prefer_server_ciphers:
            context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
        try:
            context.load_cert_chain(self.cert_file, self.key_file)
            if self.client_ca_file is not None:
                context.load_verify_locations(cafile=self.client_ca_file)
            elif self.client_ca is not None:
                context.load_verify_locations(cadata=self.client_ca)
        except (OSError, ssl.SSLError) as error:
            raise WebConfigError(f"tls_server_config: cannot load certificates: {error}") from None
        context.verify_mode = self.client_auth
        return context


@dataclass(frozen=True)
class WebConfig:
    """One parsed, validated web config file."""

    tls: TLSSettings | None = None
    headers: tuple[tuple[bytes, bytes], ...] = ()
    users: dict[str, bytes] = field(default_factory=dict)

    @property
    def requires_client_cert(self) -> bool:
        return self.tls is not None and self.tls.client_auth == ssl.CERT_REQUIRED


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise WebConfigError(f"{where} must be a mapping")
    return value


def parse_web_config(text: str, directory: Path) -> WebConfig:
    """Validate a web config document; relative file names are taken from `directory`."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise WebConfigError(f"not valid YAML: {error}") from None
    data = _mapping(data, "the top level")
    unknown = set(data) - {"tls_server_config", "http_server_config", "basic_auth_users", "rate_limit"}
    if unknown:
        raise WebConfigError(f"unknown key(s) {', '.join(sorted(unknown))}")
    if "rate_limit" in data:
        raise WebConfigError("rate_limit is not supported by mlmon; its limits are in mlmon.yaml's exporter section")
    return WebConfig(
        tls=_parse_tls(_mapping(data.get("tls_server_config"), "tls_server_config"), directory),
        headers=_parse_headers(_mapping(data.get("http_server_config"), "http_server_config")),
        users=_parse_users(_mapping(data.get("basic_auth_users"), "basic_auth_users")),
    )


def _parse_tls(tls: dict[str, Any], directory: Path) -> TLSSettings | None:
    for key, hint in UNSUPPORTED_TLS_KEYS.items():
        if key in tls:
            raise WebConfigError(f"tls_server_config.{key} is not supported by mlmon ({hint})")
    unknown = set(tls) - TLS_KEYS
    if unknown:
        raise WebConfigError(f"tls_server_config: unknown key(s) {', '.join(sorted(unknown))}")
    if not any(tls.get(k) for k in ("cert_file", "key_file", "client_ca_file", "client_ca", "client_auth_type")):
        return None  # the toolkit's "TLS is disabled"
    if not tls.get("cert_file"):
        raise WebConfigError("tls_server_config: missing cert_file")
    if not tls.get("key_file"):
        raise WebConfigError("tls_server_config: missing key_file")
    auth_type = str(tls.get("client_auth_type") or "")
    if auth_type in ("RequestClientCert", "RequireAnyClientCert", "RequireClientCert"):
        raise WebConfigError(f"tls_server_config.client_auth_type {auth_type} (a certificate that is not verified) "
                             "is not supported; use RequireAndVerifyClientCert")
    if auth_type not in CLIENT_AUTH:
        raise WebConfigError(f"tls_server_config: invalid client_auth_type {auth_type!r}")
    has_ca = bool(tls.get("client_ca_file") or tls.get("client_ca"))
    if has_ca and CLIENT_AUTH[auth_type] == ssl.CERT_NONE:
        raise WebConfigError("tls_server_config: client CA's have been configured without a client_auth_type")
    if CLIENT_AUTH[auth_type] != ssl.CERT_NONE and not has_ca:
        raise WebConfigError(f"tls_server_config: client_auth_type {auth_type} needs client_ca_file")
    sans = tls.get("client_allowed_sans")
    if sans is not None and CLIENT_AUTH[auth_type] != ssl.CERT_REQUIRED:
        raise WebConfigError("tls_server_config: client_allowed_sans requires client_auth_type RequireAndVerifyClientCert")
    versions = []
    for key, default in (("min_version", "TLS12"), ("max_version", "TLS13")):
        name = str(tls.get(key) or default)
        if name not in TLS_VERSIONS:
            raise WebConfigError(f"tls_server_config.{key}: unknown TLS version {name!r} (TLS10, TLS11, TLS12, TLS13)")
        versions.append(TLS_VERSIONS[name])
    ca_file = tls.get("client_ca_file")
    return TLSSettings(
        cert_file=directory / str(tls["cert_file"]),
        key_file=directory / str(tls["key_file"]),
        client_auth=CLIENT_AUTH[auth_type],
        client_auth_type=auth_type or "NoClientCert",
        client_ca_file=directory / str(ca_file) if ca_file else None,
        client_ca=str(tls["client_ca"]) if tls.get("client_ca") and not ca_file else None,
        client_allowed_sans=tuple(str(s) for s in sans) if sans is not None else None,
        min_version=versions[0],
        max_version=versions[1],
        prefer_server_ciphers=bool(tls.get("prefer_server_cipher_suites", True)),
    )


def _parse_headers(http: dict[str, Any]) -> tuple[tuple[bytes, bytes], ...]:
    unknown = set(http) - {"headers", "http2"}
    if unknown:
        raise WebConfigError(f"http_server_config: unknown key(s) {', '.join(sorted(unknown))}")
    headers = []
    for name, value in _mapping(http.get("headers"), "http_server_config.headers").items():
        if name not in EXTRA_HEADERS:
            raise WebConfigError(f'HTTP header "{name}" can not be configured')
        allowed = EXTRA_HEADERS[name]
        if allowed is not None and value not in allowed:
            raise WebConfigError(f"invalid value for {name}. Expected one of: {list(allowed)}, but got: {value!r}")
        if value:  # "Unset if blank"
            headers.append((name.lower().encode("latin-1"), str(value).encode("latin-1")))
    return tuple(headers)


def _parse_users(users: dict[str, Any]) -> dict[str, bytes]:
    parsed = {}
    for user, hashed in users.items():
        encoded = str(hashed).encode()
        # bcrypt hashes are $2a$/$2b$/$2y$, a two-digit cost and 53 characters of salt and hash.
        if not (len(encoded) == 60 and encoded[:4] in (b"$2a$", b"$2b$", b"$2y$") and encoded[4:6].isdigit()):
            raise WebConfigError(f"basic_auth_users.{user}: not a bcrypt hash (make one with `htpasswd -nBC 10 \"\"`)")
        parsed[str(user)] = encoded
    return parsed


class BasicAuthChecker:
    """bcrypt checks, serialised and cached like the toolkit's: bcrypt is slow on purpose."""

    MAX_CACHE = 256

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.cache: dict[tuple[str, bytes, bytes], bool] = {}

    def check(self, users: dict[str, bytes], user: str, password: bytes) -> bool:
        hashed = users.get(user)
        key = (user, hashed or DECOY_HASH, password)
        with self.lock:
            cached = self.cache.get(key)
            if cached is None:
                try:
                    cached = bcrypt.checkpw(password, hashed or DECOY_HASH) and hashed is not None
                except ValueError:
                    cached = False
                if len(self.cache) >= self.MAX_CACHE:
                    self.cache.clear()
                self.cache[key] = cached
        return cached


def _stat_key(paths: tuple[Path, ...]) -> tuple[Any, ...]:
    keys: list[Any] = []
    for path in paths:
        try:
            st = os.stat(path)
            keys.append((st.st_ino, st.st_mtime_ns, st.st_size))
        except OSError as error:
            keys.append(error.errno)
    return tuple(keys)


class WebConfigSource:
    """A web config file re-read whenever it (or a certificate it names) changes on disk."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.lock = threading.Lock()
        self.key: tuple[Any, ...] | None = None
        self.config: WebConfig | None = None
        self.error: str | None = None
        self.tls_context: ssl.SSLContext | None = None
        self.auth = BasicAuthChecker()
        self.current()  # read once now
        if self.error is not None:
            raise WebConfigError(f"{self.path}: {self.error}")

    def _files(self) -> tuple[Path, ...]:
        extra = self.config.tls.files() if self.config is not None and self.config.tls is not None else ()
        return (self.path, *extra)

    def _key(self) -> tuple[Any, ...]:
        # The file's own bytes (it is small, and the toolkit reads it per request too: a stat alone
        # can miss two same-size writes within one timestamp tick), and the stat of the files it names.
        try:
            text: Any = self.path.read_bytes()
        except OSError as error:
            text = error.errno
        return (text, _stat_key(self._files()[1:]))

    def current(self) -> WebConfig:
        """The config as the file says now; raises WebConfigError while the file is invalid."""
        key = self._key()
        with self.lock:
            if key != self.key:
                self._reload()
                self.key = self._key()
            if self.error is not None:
                raise WebConfigError(f"{self.path}: {self.error}")
            assert self.config is not None
            return self.config

    def _reload(self) -> None:
        try:
            config = parse_web_config(self.path.read_text(encoding="utf-8"), self.path.parent)
            context = config.tls.context() if config.tls is not None else None
        except (OSError, UnicodeDecodeError) as error:
            self._fail(f"cannot read the file: {error}")
            return
        except WebConfigError as error:
            self._fail(str(error))
            return
        if self.config is not None or self.error is not None:
            log.info("web config %s re-read", self.path)
        self.config, self.tls_context, self.error = config, context, None

    def _fail(self, message: str) -> None:
        if message != self.error:
            log.error("web config %s is invalid, requests are refused until it is fixed: %s", self.path, message)
        self.error = message
        self.tls_context = None

    def server_context(self) -> ssl.SSLContext | None:
        """The listener's TLS context, or None for plain HTTP (decided once, at start).

        Each handshake re-checks the files (the SNI callback runs for every ClientHello, with or
        without a server name) and switches the connection to the newest certificate and client CA.
        """
        config = self.current()
        if config.tls is None:
            return None
        base = config.tls.context()

        def refresh(ssl_object: ssl.SSLObject, _server_name: str | None, _context: ssl.SSLContext) -> int | None:
            try:
                self.current()
            except WebConfigError:
                return ssl.ALERTDESCRIPTION_INTERNAL_ERROR
            if self.tls_context is None:
                return ssl.ALERTDESCRIPTION_INTERNAL_ERROR
            self.tls_context.sni_callback = refresh
            ssl_object.context = self.tls_context
            return None

        base.sni_callback = refresh
        return base

    def check_basic_auth(self, config: WebConfig, authorization: bytes | None) -> bool:
        """True when no users are configured, or the Basic credentials match a user's bcrypt hash."""
        if not config.users:
            return True
        credentials = parse_basic(authorization)
        return credentials is not None and self.auth.check(config.users, *credentials)


def parse_basic(authorization: bytes | None) -> tuple[str, bytes] | None:
    import base64
    import binascii

    if not authorization or not authorization[:6].lower() == b"basic ":
        return None
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(b":")
    if not sep:
        return None
    return user.decode("utf-8", "replace"), password


def san_allowed(peercert: dict[str, Any] | None, allowed: tuple[str, ...]) -> bool:
    """The toolkit's client_allowed_sans: one SAN (DNS, IP, e-mail or URI) of the client cert is listed."""
    if not peercert:
        return False
    for kind, value in peercert.get("subjectAltName", ()):
        if kind == "IP Address":
            try:
                value = str(ipaddress.ip_address(value.strip()))
            except ValueError:
                pass
        if value in allowed:
            return True
    return False


class TokenFile:
    """A bearer token kept in a file (a Kubernetes Secret), read for every request, so a rotation applies at once."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.failing = False
        if self.current() is None:
            raise WebConfigError(f"{self.path}: the bearer token file is empty or unreadable")

    def current(self) -> bytes | None:
        try:
            token = self.path.read_bytes().strip()  # a few bytes: cheaper than being clever about changes
        except OSError as error:
            if not self.failing:
                log.error("bearer token file %s: %s; ingest requests are refused", self.path, error.strerror)
            self.failing = True
            return None
        self.failing = False
        return token or None

    def check(self, authorization: bytes | None) -> bool:
        token = self.current()
        if token is None or not authorization or authorization[:7].lower() != b"bearer ":
            return False
        return hmac.compare_digest(authorization[7:].strip(), token)
