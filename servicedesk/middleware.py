from django.conf import settings
from django.http import HttpResponsePermanentRedirect
from django.urls import is_valid_path

from servicedesk.errors import PayloadTooLarge, json_error


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
