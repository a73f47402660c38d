"""AWS access shared by sources and actions: one boto3 session per profile, clients
made lazily (boto3 is imported on first use, never at start-up, and callers are on
worker threads), botocore's adaptive retries, and errors as one readable line."""

from __future__ import annotations

import re
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


class NotAnAwsAnswer(Exception):
    """Something answered 200 in AWS's place (a proxy's page, a wrong endpoint_url):
    botocore reads such a body as an empty answer, which must not pass for "nothing"."""


def field(answer: dict, key: str) -> Any:
    """``answer[key]`` of a parsed AWS answer; a field every real answer carries being
    absent means it was not AWS that answered."""
    if key not in answer:
        raise NotAnAwsAnswer(f"not an AWS answer (no {key}): check endpoint_url and any proxy")
    return answer[key]


def failed(e: BaseException, what: str = "") -> str:
    """``describe(e, what)``; and when AWS rejected the credentials or found none, every
    cached session and client is dropped, so the next call reads the credentials again
    (after `aws sso login` or new keys) without restarting the cockpit."""
    if _credentials_problem(e):
        with _lock:
            _sessions.clear()
            _clients.clear()
    return describe(e, what)


def _credentials_problem(e: BaseException) -> bool:
    from botocore.exceptions import ClientError, NoCredentialsError

    if isinstance(e, NoCredentialsError):
        return True
    return isinstance(e, ClientError) and _error_of(e.response.get("Error", {}))[0] in CREDENTIAL_ERRORS


_XML_CODE = re.compile(r"<Code>([^<]{1,100})</Code>")
_XML_MESSAGE = re.compile(r"<Message>([^<]{0,300})</Message>")


def _error_of(err: dict) -> tuple[str, str]:
    """Code and first message line of a ClientError. An error sent as XML to a client
    expecting JSON (moto's auth errors, some gateways) reaches botocore unparsed, with
    the HTTP status as code: its own code and message are read out of it."""
    code, message = str(err.get("Code", "Error")), str(err.get("Message") or "")
    if code.isdigit() and message.lstrip().startswith("<"):
        found, said = _XML_CODE.search(message), _XML_MESSAGE.search(message)
        if found:
            code, message = found.group(1), said.group(1) if said else ""
    lines = message.strip().splitlines()
    return code, lines[0] if lines else ""


def describe(e: BaseException, what: str = "") -> str:
    """One line for an AWS failure, the cause first (a panel shows the start of it), then
    the call; and what to do about credentials or permissions."""
    where = f" ({what})" if what else ""
    try:
        from botocore.exceptions import (BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError,
                                         NoRegionError, ProfileNotFound, ReadTimeoutError, ConnectTimeoutError)
    except ImportError:  # pragma: no cover - boto3 is a dependency
        return f"{type(e).__name__}: {e}{where}"
    if isinstance(e, NotAnAwsAnswer):
        return f"{e}{where}"
    if isinstance(e, NoCredentialsError):
        return f"no AWS credentials found (set a profile, AWS_ACCESS_KEY_ID or an instance role){where}"
    if isinstance(e, ProfileNotFound):
        return f"{e}; check `aws configure list-profiles`{where}"
    if isinstance(e, NoRegionError):
        return f"no AWS region: set region in the config or AWS_DEFAULT_REGION{where}"
    if isinstance(e, (ReadTimeoutError, ConnectTimeoutError)):
        return f"timed out: no answer from {getattr(e, 'kwargs', {}).get('endpoint_url', 'AWS')}{where}"
    if isinstance(e, EndpointConnectionError):
        return f"cannot reach {getattr(e, 'kwargs', {}).get('endpoint_url', 'the AWS endpoint')}{where}"
    if isinstance(e, ClientError):
        code, text = _error_of(e.response.get("Error", {}))
        op = getattr(e, "operation_name", "")
        if code in CREDENTIAL_ERRORS:
            return f"AWS rejected the credentials ({code}): refresh them (aws sso login, new keys){where}"
        if code in PERMISSION_ERRORS:
            return f"not allowed to call {op or 'this API'} ({code}): {text}{where}"
        if code.isdigit():  # not an AWS error document: whatever answered in AWS's place
            code = f"HTTP {code}"
        return f"{code}: {text}".rstrip(": ") + where
    if isinstance(e, BotoCoreError):
        return f"{e}{where}"
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}{where}"
