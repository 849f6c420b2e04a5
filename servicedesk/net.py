"""The address a request came from, the same for login throttling and webhook limits."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def forwarded_for(request: HttpRequest) -> str:
    """REMOTE_ADDR or, behind a trusted proxy (`BEHIND_PROXY=1`), the last entry of
    X-Forwarded-For: the one our proxy added. The entries before it are the client's own
    to write, so trusting the first would let anyone pick the address they are counted
    under."""
    remote = request.META.get("REMOTE_ADDR", "")
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if forwarded and settings.BEHIND_PROXY:
        return forwarded.rsplit(",", 1)[-1].strip() or remote
    return remote


def plain_address(raw: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address as a proxy may write it (`v4:port`, `[v6]:port`), or None."""
    if raw.startswith("["):
        raw = raw[1 : raw.find("]")]
    elif raw.count(":") == 1:
        raw = raw.partition(":")[0]
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def login_client_ip(request: HttpRequest) -> str | None:
    """Login throttling's address (django-axes' AXES_CLIENT_IP_CALLABLE)."""
    address = plain_address(forwarded_for(request))
    return str(address) if address is not None else request.META.get("REMOTE_ADDR")
