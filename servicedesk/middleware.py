from django.conf import settings

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
