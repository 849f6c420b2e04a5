"""A small shared HTTP helper for platform connectors: httpx with our error mapping.

Most connectors call the platforms' REST APIs directly with httpx; each one's docstring
says why no SDK (tweepy hard-codes its host, google-api-python-client's httplib2
re-sends POSTs on its own, Meta and LinkedIn have no maintained official one, atproto
cannot keep raw pages). Mastodon uses Mastodon.py.

`send()` turns every failure into the connector errors the outbox understands:
- 429 → TransientError with `retry_after` from Retry-After or the rate-limit reset
  headers (epoch seconds, delta seconds or ISO 8601, whichever the platform sends);
- 5xx, 408, timeouts and dropped connections → TransientError; `ambiguous=True` for
  requests that change something (POST...) once the request may have reached the
  platform, so the outbox looks for our reply before posting again;
- other 4xx → PermanentError carrying the platform's own error message.
A connector can pass `classify` to map platform-specific error bodies first.

httpx logs every request URL at INFO; a filter here hides tokens and keys sent in
query strings (Graph API `access_token`, YouTube `key`...).
"""

from __future__ import annotations

import email.utils
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

import httpx

from connectors.base import Connector, ConnectorError, PermanentError, TransientError

DEFAULT_TIMEOUT = Connector.timeout
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Reset headers, in the order they are believed: a platform's own first.
RESET_HEADERS = ("x-rate-limit-reset", "x-ratelimit-reset", "ratelimit-reset")
MESSAGE_LIMIT = 500

_SECRET_QUERY = re.compile(
    r"((?:access_token|appsecret_proof|client_secret|api_key|key|token)=)[^&\s\"']+",
    re.IGNORECASE,
)


class _RedactQuerySecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(
                _SECRET_QUERY.sub(r"\1***", str(arg)) if isinstance(arg, httpx.URL) else arg
                for arg in record.args
            )
        return True


if not any(isinstance(f, _RedactQuerySecrets) for f in logging.getLogger("httpx").filters):
    logging.getLogger("httpx").addFilter(_RedactQuerySecrets())


def send(
    method: str,
    url: str,
    *,
    platform: str,
    timeout: float = DEFAULT_TIMEOUT,
    headers: Mapping[str, str] | None = None,
    params: Any = None,
    json_body: Any = None,
    data: Mapping[str, str] | None = None,
    classify: Callable[[httpx.Response, bool], ConnectorError | None] | None = None,
) -> httpx.Response:
    """One request; a 2xx response, or the matching ConnectorError raised.

    `classify(response, ambiguous)` may return an error for a non-2xx response (or
    None to fall back to the generic mapping).
    """
    changes_something = method.upper() not in SAFE_METHODS
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False) as client:
            response = client.request(
                method, url, headers=headers, params=params, json=json_body, data=data
            )
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        # Nothing was sent: safe to retry, never ambiguous.
        raise TransientError(f"{platform}: could not connect ({_describe(exc)})") from None
    except httpx.TimeoutException as exc:
        raise TransientError(
            f"{platform}: no answer in {timeout:g} s ({_describe(exc)})",
            ambiguous=changes_something,
        ) from None
    except httpx.TransportError as exc:
        raise TransientError(
            f"{platform}: connection failed ({_describe(exc)})", ambiguous=changes_something
        ) from None
    if response.is_success:
        return response
    if classify is not None:
        error = classify(response, changes_something)
        if error is not None:
            raise error
    raise error_for(response, platform=platform, ambiguous=changes_something)


def error_for(response: httpx.Response, *, platform: str, ambiguous: bool) -> ConnectorError:
    """The generic mapping of a non-2xx response."""
    status = response.status_code
    message = error_message(response)
    if status == 429:
        return TransientError(
            f"{platform} rate limit (429): {message}", retry_after=retry_after_seconds(response)
        )
    if status >= 500 or status == 408:
        return TransientError(
            f"{platform} server error ({status}): {message}",
            retry_after=retry_after_seconds(response),
            ambiguous=ambiguous,
        )
    return PermanentError(f"{platform} refused the request ({status}): {message}")


def json_of(response: httpx.Response, *, platform: str, ambiguous: bool = False) -> Any:
    """The JSON of a 2xx response; a body that is not JSON is a transient oddity (a proxy
    page...), ambiguous if the request may have acted."""
    try:
        return response.json()
    except (ValueError, UnicodeDecodeError):
        raise TransientError(
            f"{platform}: the answer ({response.status_code}) is not JSON", ambiguous=ambiguous
        ) from None


def error_message(response: httpx.Response) -> str:
    """The platform's own words for an error, from the usual error body shapes."""
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        body = None
    message = ""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):  # Graph API, Google APIs
            message = str(error.get("message") or "")
        elif isinstance(body.get("detail"), str):  # problem JSON (X v2)
            title = body.get("title")
            message = f"{title}: {body['detail']}" if title else body["detail"]
        elif isinstance(body.get("errors"), list):  # X legacy / partial errors
            message = "; ".join(
                str(item.get("message") or item.get("detail") or item)
                if isinstance(item, dict)
                else str(item)
                for item in body["errors"]
            )
        elif isinstance(error, str):  # Mastodon, Bluesky (error + message)
            detail = body.get("message") or body.get("error_description")
            message = f"{error}: {detail}" if detail else error
        elif isinstance(body.get("message"), str):
            message = body["message"]
    if not message:
        message = response.text.strip() or response.reason_phrase or "no details"
    return message[:MESSAGE_LIMIT]


def retry_after_seconds(
    response: httpx.Response,
    reset_headers: Iterable[str] = RESET_HEADERS,
    *,
    now: float | None = None,
) -> float | None:
    """Seconds to wait, from Retry-After, else the first reset header present."""
    now = time.time() if now is None else now
    retry_after = response.headers.get("retry-after")
    if retry_after:
        seconds = _seconds_until(retry_after, now=now)
        if seconds is not None:
            return seconds
    for name in reset_headers:
        value = response.headers.get(name)
        if value:
            seconds = _seconds_until(value, now=now)
            if seconds is not None:
                return seconds
    return None


def _seconds_until(value: str, *, now: float) -> float | None:
    """A wait from a header value: delta seconds (below 10^9), epoch seconds, an
    HTTP-date or ISO 8601."""
    value = value.strip()
    try:
        number = float(value)
    except ValueError:
        number = None
    if number is not None:
        if number < 1_000_000_000:
            return max(number, 0.0)
        return max(number - now, 0.0)
    moment = None
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if moment is None or moment.tzinfo is None:
        return None
    return max(moment.timestamp() - now, 0.0)


def _describe(exc: Exception) -> str:
    return str(exc) or type(exc).__name__
