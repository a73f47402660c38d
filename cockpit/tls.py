"""How the cockpit trusts a server's certificate, in one place: the system's CA store, plus
the file SSL_CERT_FILE names (or the folder SSL_CERT_DIR names) when set, as OpenSSL reads
them. The polling (aiohttp's own verifying context) reads the same store; httpx, for the
actions and the posts to Slack and status pages, would use certifi's bundle instead, so an
action could refuse a server behind a private CA that the panels trust."""

from __future__ import annotations

import ssl
from functools import cache


@cache
def tls_context() -> ssl.SSLContext:
    """The verifying client context every HTTPS request of the cockpit uses (made once:
    loading the CA store takes ~10-30 ms)."""
    return ssl.create_default_context()
