import logging

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, HttpResponsePermanentRedirect
from django.urls import is_valid_path

from servicedesk.errors import JSON_PREFIXES, PayloadTooLarge, ServiceUnavailable, json_error

logger = logging.getLogger(__name__)

# Seconds a client is asked to wait when the database is unavailable.
RETRY_AFTER_SECONDS = 30


class BodySizeLimitMiddleware:
    """Answer 413 for a declared body over the limit before anything reads it.

    Django itself would raise RequestDataTooBig only once a view touches the body
    (and answer 400); platforms and API clients need the honest 413.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if limit is not None and length > limit:
            return json_error(PayloadTooLarge())
        return self.get_response(request)


class ApiSlashRedirectMiddleware:
    """`/api/v1/mentions` → 308 to `/api/v1/mentions/`, keeping the method and body.

    Django's own slash redirect is a 301, which clients follow as a GET (and in DEBUG it
    refuses POSTs with an error page): an API client would lose its body.
    """

    prefixes = ("/api/",)

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        path = request.path_info
        if path.startswith(self.prefixes) and not path.endswith("/"):
            urlconf = getattr(request, "urlconf", None)
            if not is_valid_path(path, urlconf) and is_valid_path(f"{path}/", urlconf):
                location = request.get_full_path(force_append_slash=True)
                return HttpResponsePermanentRedirect(location, preserve_request=True)
        return self.get_response(request)


class DatabaseUnavailableMiddleware:
    """A database that cannot be reached answers 503 with Retry-After — JSON
    `service_unavailable` on the API, a short page elsewhere — not a 500: nothing is
    wrong with the request, and it will work again by itself once the database is back
    (each request reconnects)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        return database_unavailable_response(request, exception)


def database_unavailable_response(request, exception) -> HttpResponse | None:
    """The 503 for an unreachable database; None for any other exception. Also used by
    the 500 handler, for what fails in a middleware before any view runs."""
    if not isinstance(exception, OperationalError | InterfaceError):
        return None
    logger.error("database unavailable: %s %s: %s", request.method, request.path, exception)
    if request.path.startswith(JSON_PREFIXES):
        response = json_error(ServiceUnavailable())
    else:
        response = HttpResponse(
            "The desk cannot reach its database just now. This page will work again by"
            " itself shortly: reload it in a minute.",
            status=503,
            content_type="text/plain; charset=utf-8",
        )
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
