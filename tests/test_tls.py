"""HTTPS behind a private CA, against a real TLS server on loopback with a CA made here:
a certificate the cockpit does not trust is one line saying what to do; with the CA named
by SSL_CERT_FILE, the polling (aiohttp), `cockpit check` and the actions (httpx) all trust
it (httpx once used certifi's bundle, so an action refused a server the panels trusted)."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import ssl
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from cockpit.tls import tls_context

UNTRUSTED = ("TLS certificate not trusted: unable to get local issuer certificate (signed by a private CA? "
             "export SSL_CERT_FILE=<that CA's PEM file> before starting the cockpit)")


def _pem_pair(tmp: Path) -> tuple[Path, Path, Path]:
    """(the CA's certificate, the server's certificate, the server's key), for 127.0.0.1."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cockpit test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = tmp / "ca.pem", tmp / "server.pem", tmp / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


class _Handler(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        body = json.dumps({"status": "ok", "version": "v1.4.2"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    """(base URL, the CA's PEM file) of an HTTPS server whose certificate a private CA signed."""
    ca, cert, key = _pem_pair(tmp_path_factory.mktemp("tls"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{server.server_address[1]}", ca
    server.shutdown()
    server.server_close()


EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "demo.toml"


def _check(url: str, tmp_path: Path, ca: Path | None) -> str:
    """`cockpit check` of the demo example with its health check on ``url``: that row."""
    config = tmp_path / "tls.toml"
    config.write_text(EXAMPLE.read_text(encoding="utf-8").replace('"http://127.0.0.1:8787/health"', f'"{url}/health"'),
                      encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
    if ca is not None:
        env["SSL_CERT_FILE"] = str(ca)
    out = subprocess.run([sys.executable, "-m", "cockpit.cli", "check", "-c", str(config)], capture_output=True,
                         text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)
    assert "Traceback" not in out.stdout + out.stderr
    return next(line for line in out.stdout.splitlines() if line.startswith("health "))


def test_a_server_behind_a_private_ca_is_one_line_that_says_what_to_do_and_trusted_with_ssl_cert_file(
        tls_server, tmp_path):
    url, ca = tls_server
    untrusted = _check(url, tmp_path, None)
    assert "FAILED" in untrusted and untrusted.endswith(UNTRUSTED)
    trusted = _check(url, tmp_path, ca)
    assert " ok " in trusted and "up (HTTP 200, status ok)" in trusted


@pytest.fixture
def cert_env(monkeypatch):
    """Set or clear SSL_CERT_FILE for this process's one TLS context (made again after)."""
    def use(ca: Path | None) -> None:
        monkeypatch.delenv("SSL_CERT_DIR", raising=False)
        if ca is None:
            monkeypatch.delenv("SSL_CERT_FILE", raising=False)
        else:
            monkeypatch.setenv("SSL_CERT_FILE", str(ca))
        tls_context.cache_clear()

    yield use
    tls_context.cache_clear()


def test_an_action_trusts_what_the_panels_trust(tls_server, cert_env, tmp_path):
    """An http action (httpx) reads the same store as the polling: refused with the same
    line without the CA, run with it."""
    from tests.test_actions import ListRecorder, action_cfg, run, runner_for

    url, ca = tls_server
    _, cfg = action_cfg({"kind": "http", "url": f"{url}/admin/rollback", "effect_after": 0})
    cert_env(None)
    report = run(runner_for(ListRecorder(tmp_path / "untrusted")), cfg)
    assert report.outcome.result == "failed" and report.outcome.details == UNTRUSTED
    cert_env(ca)
    report = run(runner_for(ListRecorder(tmp_path / "trusted")), cfg)
    assert report.outcome.result == "ok", report.outcome.details


async def test_the_posts_to_slack_and_status_pages_trust_it_too(tls_server, cert_env):
    from cockpit.clock import SystemClock
    from cockpit.signals.sources._base import SourceContext

    url, ca = tls_server
    cert_env(ca)
    context = SourceContext(SystemClock())
    try:
        answer = await (await context.http()).post(f"{url}/hooks/incident", json={"text": "declared"})
        assert answer.status_code == 200
    finally:
        await context.aclose()
