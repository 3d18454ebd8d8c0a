"""boto3 clients: the one place streamkit creates them (endpoint, region and local credentials)."""

from __future__ import annotations

import os
import threading
from typing import Any

import boto3
from botocore.config import Config

from streamkit.errors import ConfigurationError

__all__ = ["DEFAULT_REGION", "aws_client", "resolve_endpoint", "resolve_region"]

DEFAULT_REGION = "us-east-1"
_LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]")


def resolve_region(region: str | None = None) -> str:
    return region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION


def resolve_endpoint(service: str, endpoint_url: str | None = None) -> str | None:
    """Explicit endpoint, else ``AWS_ENDPOINT_URL_<SERVICE>``, else ``AWS_ENDPOINT_URL``, else AWS's."""
    if endpoint_url:
        return endpoint_url
    specific = os.environ.get(f"AWS_ENDPOINT_URL_{service.upper()}")
    return specific or os.environ.get("AWS_ENDPOINT_URL") or None


def _is_local(endpoint: str | None) -> bool:
    return endpoint is not None and any(f"//{h}" in endpoint for h in _LOCAL_HOSTS)


def aws_client(
    service: str,
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
    retries: int | None = None,
    max_pool_connections: int = 32,
    connect_timeout: float = 5.0,
    read_timeout: float = 30.0,
) -> Any:
    """A boto3 client for `service`.

    Against a loopback endpoint with no credentials configured, dummy credentials are used so the
    local servers accept the signature. ``retries=0`` turns botocore's own retries off (streamkit
    retries with its own policy and needs to see every failure).
    """
    endpoint = resolve_endpoint(service, endpoint_url)
    if endpoint is not None and not (endpoint.startswith(("http://", "https://")) and len(endpoint) > 8):
        raise ConfigurationError(f"bad endpoint URL {endpoint!r} for {service}: expected http://HOST:PORT or https://...")
    cfg: dict[str, Any] = dict(
        max_pool_connections=max_pool_connections,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
    )
    if retries is not None:
        cfg["retries"] = {"total_max_attempts": retries + 1, "mode": "standard"}
    kwargs: dict[str, Any] = dict(region_name=resolve_region(region), config=Config(**cfg))
    if endpoint:
        kwargs["endpoint_url"] = endpoint
    if _is_local(endpoint) and not (os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE")):
        # The local servers accept any signature; skip the credential chain (and its IMDS timeouts).
        kwargs.update(aws_access_key_id="local", aws_secret_access_key="local")
    with _SESSION_LOCK:  # a Session is not thread-safe; the clients it makes are
        return _session().client(service, **kwargs)


_SESSION_LOCK = threading.Lock()
_SESSION: Any = None


def _session() -> Any:
    """One boto3 Session per process: each new Session would load and parse the service models again
    (0.1-0.3 s per client); clients made from one share them."""
    global _SESSION
    if _SESSION is None:
        _SESSION = boto3.session.Session()
    return _SESSION

