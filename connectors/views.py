"""Webhook endpoints: verify, store the raw delivery, wake the workers, answer. Nothing else.

Platforms give a webhook a few seconds and send many at once, so a delivery costs as
little as it can: plain Django views that skip the session, user, CSRF and 2FA
middleware (connectors/middleware.py), the client address's rate limits in one cache
call (connectors/ratelimit.py), the accounts from the per-process cache, the signature
checked over the raw bytes, one INSERT committed on its own (no health-check query
first), and a wake-up that is one cache call — not a broker message per delivery (see
connectors/services/deliveries.py).
"""

from __future__ import annotations

import json
import logging

from django.core.cache import cache
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from connectors.base import Connector, ConnectorError
from connectors.middleware import platform_webhook
from connectors.models import DeliveryKind, DeliveryStatus
from connectors.ratelimit import client_address, webhook_admit, webhook_forged_count
from connectors.registry import connector_for
from connectors.selectors import channels_active_on
from connectors.services import deliveries_wake, delivery_store, delivery_store_webhook

logger = logging.getLogger(__name__)

# Seconds a platform is asked to wait before retrying when the database is unavailable.
RETRY_AFTER_SECONDS = 30


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"code": code, "message": message}, status=status)


def _connectors(platforms: tuple[str, ...]) -> list[Connector]:
    # From the per-process cache: an account added or rotated elsewhere is seen within
    # 30 s (at once in the process that saved it), and webhooks skip a query each.
    return [connector_for(channel) for channel in channels_active_on(platforms)]


def _count_forged(platform: str) -> None:
    key = f"servicedesk:webhook:forged:{platform}"
    try:
        if not cache.add(key, 1, timeout=None):
            cache.incr(key)
    except Exception as exc:  # the counter is best-effort: Redis may be down
        logger.warning("webhook %s: forged-delivery counter unavailable: %s", platform, exc)


def _rate_limited(retry_after: int) -> JsonResponse:
    response = _error(
        429,
        "rate_limited",
        f"Too many requests from this address; try again in {retry_after} seconds.",
    )
    response["Retry-After"] = str(retry_after)
    return response


def _handshake(
    request: HttpRequest, connectors: list[Connector], label: str, address: str
) -> HttpResponse:
    answers = []
    for connector in connectors:
        try:
            answers.append(connector.handshake(request))
        except ConnectorError as exc:  # e.g. an account missing its secret
            logger.warning("webhook %s: handshake impossible: %s", label, exc.reason)
    for answer in answers:
        if answer is not None and answer.status_code == 200:
            return answer
    if any(answer is not None for answer in answers):
        webhook_forged_count(address)  # a wrong verify_token is a guess at a secret
        return _error(403, "handshake_refused", "The handshake did not verify.")
    return _error(400, "bad_handshake", "No handshake parameters, or no account for it.")


def _receive(request: HttpRequest, platforms: tuple[str, ...]) -> HttpResponse:
    """Verify, store, answer — or answer 503 when the database cannot store the delivery.

    A platform retries a delivery that was not acknowledged with a 2xx, so one that could
    not be stored must never be: the 503 (with Retry-After) makes the platform send it
    again, and the next request reconnects by itself.

    First of all, the address's rate limits (connectors/ratelimit.py): one cache call,
    before any signature is computed."""
    address = client_address(request)
    retry_after = webhook_admit(address)
    if retry_after is not None:
        return _rate_limited(retry_after)
    try:
        return _verify_and_store(request, platforms, address)
    except DatabaseError as exc:
        logger.error("webhook %s: database unavailable, not acknowledged: %s", platforms[0], exc)
        response = _error(
            503, "storage_unavailable", "The delivery could not be stored; send it again later."
        )
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response


def _verify_and_store(
    request: HttpRequest, platforms: tuple[str, ...], address: str
) -> HttpResponse:
    connectors = _connectors(platforms)
    label = platforms[0]
    if request.method == "GET":
        return _handshake(request, connectors, label, address)

    body = request.body  # the raw bytes: signatures are over these, never re-serialized JSON
    headers = {key.lower(): value for key, value in request.headers.items()}
    verified = [connector for connector in connectors if connector.verify(body, headers)]
    if not verified:
        _count_forged(label)
        webhook_forged_count(address)
        logger.warning(
            "webhook %s: signature missing or invalid (%d bytes from %s)",
            label,
            len(body),
            address,
        )
        return _error(403, "bad_signature", "The signature is missing or does not verify.")
    # One delivery can carry entries for several accounts of one app (Meta batches
    # Pages): each account it concerns gets its own stored copy to process.
    receivers = verified
    if len(verified) > 1:
        receivers = [c for c in verified if c.accepts(body)] or verified[:1]
    kept = {key: value for key, value in headers.items() if key in receivers[0].kept_headers}
    try:
        json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        # Kept as evidence, marked failed: nothing is dropped, and the platform learns.
        channel = receivers[0].channel
        delivery = delivery_store(
            platform=channel.platform,
            channel=channel,
            kind=DeliveryKind.WEBHOOK,
            body=body,
            headers=kept,
            status=DeliveryStatus.FAILED,
            error=f"The body is not JSON: {exc}",
        )
        logger.warning("webhook %s: delivery %s is not JSON", label, delivery.pk)
        return _error(400, "malformed_body", "The body is not JSON.")
    ids = delivery_store_webhook(
        channels=[receiver.channel for receiver in receivers], body=body, headers=kept
    )
    deliveries_wake()
    return JsonResponse({"status": "received", "delivery_ids": ids})


@platform_webhook
@csrf_exempt
@require_http_methods(["GET", "POST"])
def x_webhook(request):
    return _receive(request, ("x",))


@platform_webhook
@csrf_exempt
@require_http_methods(["GET", "POST"])
def meta_webhook(request):
    return _receive(request, ("facebook", "instagram"))


@platform_webhook
@csrf_exempt
@require_http_methods(["POST"])
def generic_webhook(request):
    return _receive(request, ("generic",))
