"""AWS access shared by sources and actions: one boto3 session per profile, clients
made lazily (boto3 is imported on first use, never at start-up, and callers are on
worker threads), botocore's adaptive retries, and errors as one readable line."""

from __future__ import annotations

import threading
from typing import Any

_lock = threading.Lock()
_sessions: dict[str | None, Any] = {}
_clients: dict[tuple, Any] = {}

CREDENTIAL_ERRORS = {"UnrecognizedClientException", "InvalidClientTokenId", "ExpiredToken", "ExpiredTokenException",
                     "InvalidSignatureException", "SignatureDoesNotMatch", "AuthFailure"}
PERMISSION_ERRORS = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError"}


def client(service: str, settings: Any) -> Any:
    """A cached boto3 client for ``service`` under ``settings`` (profile, region, endpoint_url)."""
    key = (service, settings.profile, settings.region, settings.endpoint_url)
    with _lock:
        if key in _clients:
            return _clients[key]
        import boto3
        from botocore.config import Config

        session = _sessions.get(settings.profile)
        if session is None:
            session = _sessions[settings.profile] = boto3.session.Session(profile_name=settings.profile)
        made = session.client(service, region_name=settings.region, endpoint_url=settings.endpoint_url,
                              config=Config(retries={"mode": "adaptive", "max_attempts": settings.max_attempts},
                                            connect_timeout=settings.timeout, read_timeout=settings.timeout))
        _clients[key] = made
        return made


def describe(e: BaseException, what: str = "") -> str:
    """One line for an AWS failure: which call, and what to do about credentials or permissions."""
    where = f"{what}: " if what else ""
    try:
        from botocore.exceptions import (BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError,
                                         NoRegionError, ProfileNotFound)
    except ImportError:  # pragma: no cover - boto3 is a dependency
        return f"{where}{type(e).__name__}: {e}"
    if isinstance(e, NoCredentialsError):
        return f"{where}no AWS credentials found (set a profile, AWS_ACCESS_KEY_ID or an instance role)"
    if isinstance(e, ProfileNotFound):
        return f"{where}{e}; check `aws configure list-profiles`"
    if isinstance(e, NoRegionError):
        return f"{where}no AWS region: set region in the config or AWS_DEFAULT_REGION"
    if isinstance(e, EndpointConnectionError):
        return f"{where}cannot reach {getattr(e, 'kwargs', {}).get('endpoint_url', 'the AWS endpoint')}"
    if isinstance(e, ClientError):
        err = e.response.get("Error", {})
        code, message = err.get("Code", "Error"), (err.get("Message") or "").strip().splitlines()
        text = message[0] if message else ""
        op = getattr(e, "operation_name", "")
        if code in CREDENTIAL_ERRORS:
            return f"{where}AWS rejected the credentials ({code}): refresh them (aws sso login, new keys)"
        if code in PERMISSION_ERRORS:
            return f"{where}not allowed to call {op or 'this API'} ({code}): {text}"
        return f"{where}{op + ' ' if op else ''}{code}: {text}".rstrip(": ")
    if isinstance(e, BotoCoreError):
        return f"{where}{e}"
    text = str(e).strip().splitlines()
    return f"{where}{type(e).__name__}: {text[0] if text else ''}"
