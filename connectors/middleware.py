"""The platforms' webhooks skip the middleware they have no use for.

A webhook request is verified by its signature alone: it never carries a session, a
user, a CSRF token or a second factor, and its answer is a small JSON document no
browser renders. Yet the full chain (sessions, CSRF, authentication, OTP, 2FA,
messages, clickjacking, login throttling, the security headers) costs it about a fifth
of a millisecond, on the path that must answer hundreds of deliveries a second.

So, placed after the request id, body-size and database-unavailable middleware, this
one calls a view marked `@platform_webhook` directly — once its path has been resolved
to such a view — and lets every other request through the rest of the chain untouched.
The answer keeps its `Content-Length` (a platform's client gets no chunked encoding)
and the two security headers that still mean something for JSON:
`X-Content-Type-Options: nosniff` and `X-Frame-Options: DENY`.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, ResolverMatch, get_urlconf, resolve

PREFIX = "/connectors/"
_MARK = "platform_webhook"


def platform_webhook(view: Callable) -> Callable:
    """Mark a view as a platform webhook: verified by signature, no session or user."""
    setattr(view, _MARK, True)
    return view


class PlatformWebhookMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        # path -> its match, for the webhook routes only (a handful: the cache is
        # bounded by the URLconf, never by what clients send).
        self._matches: dict[tuple[str | None, str], ResolverMatch] = {}

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info
        if not path.startswith(PREFIX):
            return self.get_response(request)
        key = (get_urlconf(), path)
        match = self._matches.get(key)
        if match is None:
            try:
                match = resolve(path)
            except Resolver404:
                return self.get_response(request)
            if not getattr(match.func, _MARK, False):
                return self.get_response(request)
            self._matches[key] = match
        request.resolver_match = match
        response = match.func(request, *match.args, **match.kwargs)
        if not response.streaming:  # as CommonMiddleware would: no chunked encoding
            response.headers.setdefault("Content-Length", str(len(response.content)))
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        return response
