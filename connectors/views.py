"""Webhook endpoints: verify, store the raw delivery, enqueue, answer. Nothing else.

Platforms give a webhook a few seconds; processing happens in a Celery task.
"""

from __future__ import annotations

import json
import logging

from django.core.cache import cache
from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from connectors.base import Connector, ConnectorError
from connectors.models import DeliveryKind, DeliveryStatus
from connectors.registry import connector_for
from connectors.selectors import channels_active_on
from connectors.services import delivery_store

logger = logging.getLogger(__name__)


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"code": code, "message": message}, status=status)


def _connectors(platforms: tuple[str, ...]) -> list[Connector]:
    # From the per-process cache: an account added or rotated elsewhere is seen within
    # 30 s (at once in the process that saved it), and webhooks skip a query each.
    return [connector_for(channel) for channel in channels_active_on(platforms)]


def _count_forged(platform: str) -> None:
    key = f"servicedesk:webhook:forged:{platform}"
    if not cache.add(key, 1, timeout=None):
        cache.incr(key)


def _enqueue(delivery_id: int) -> None:
    from connectors.tasks import delivery_process_task

    delivery_process_task.delay(delivery_id=delivery_id)


def _receive(request: HttpRequest, platforms: tuple[str, ...]):
    connectors = _connectors(platforms)
    label = platforms[0]
    if request.method == "GET":
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
            return _error(403, "handshake_refused", "The handshake did not verify.")
        return _error(400, "bad_handshake", "No handshake parameters, or no account for it.")

    body = request.body  # the raw bytes: signatures are over these, never re-serialized JSON
    headers = {key.lower(): value for key, value in request.headers.items()}
    verified = [connector for connector in connectors if connector.verify(body, headers)]
    if not verified:
        _count_forged(label)
        logger.warning(
            "webhook %s: signature missing or invalid (%d bytes from %s)",
            label,
            len(body),
            request.META.get("REMOTE_ADDR", "?"),
        )
        return _error(403, "bad_signature", "The signature is missing or does not verify.")
    # One delivery can carry entries for several accounts of one app (Meta batches
    # Pages): each account it concerns gets its own stored copy to process.
    receivers = [c for c in verified if c.accepts(body)] or verified[:1]
    connector = receivers[0]
    kept = {key: value for key, value in headers.items() if key in connector.kept_headers}
    try:
        json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        # Kept as evidence, marked failed: nothing is dropped, and the platform learns.
        delivery = delivery_store(
            platform=connector.channel.platform,
            channel=connector.channel,
            kind=DeliveryKind.WEBHOOK,
            body=body,
            headers=kept,
            status=DeliveryStatus.FAILED,
            error=f"The body is not JSON: {exc}",
        )
        logger.warning("webhook %s: delivery %s is not JSON", label, delivery.pk)
        return _error(400, "malformed_body", "The body is not JSON.")
    with transaction.atomic():
        ids = [
            delivery_store(
                platform=receiver.channel.platform,
                channel=receiver.channel,
                kind=DeliveryKind.WEBHOOK,
                body=body,
                headers=kept,
            ).pk
            for receiver in receivers
        ]
        transaction.on_commit(lambda: [_enqueue(delivery_id) for delivery_id in ids])
    return JsonResponse({"status": "received", "delivery_ids": ids})


@csrf_exempt
@require_http_methods(["GET", "POST"])
def x_webhook(request):
    return _receive(request, ("x",))


@csrf_exempt
@require_http_methods(["GET", "POST"])
def meta_webhook(request):
    return _receive(request, ("facebook", "instagram"))


@csrf_exempt
@require_http_methods(["POST"])
def generic_webhook(request):
    return _receive(request, ("generic",))
