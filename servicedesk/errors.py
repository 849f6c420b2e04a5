"""Application errors with stable codes, and the one DRF handler that renders them.

Services raise `ApplicationError` subclasses; the API answers every error as JSON
`{"code": ..., "message": ...}` (plus `fields` for invalid input). A user's mistake is
never a 500.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, JsonResponse
from django_fsm import TransitionNotAllowed
from rest_framework import exceptions as drf_exceptions
from rest_framework import status
from rest_framework.response import Response

# Paths whose clients read JSON: their errors (404, 500, 503) are JSON too.
JSON_PREFIXES = ("/api/", "/connectors/", "/healthz", "/readyz", "/metrics")


class ApplicationError(Exception):
    status_code = status.HTTP_400_BAD_REQUEST
    code = "error"
    default_message = "The request could not be carried out."

    def __init__(self, message: str | None = None, *, code: str | None = None, **extra: Any):
        self.message = message or self.default_message
        if code is not None:
            self.code = code
        self.extra = extra
        super().__init__(self.message)

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.extra}


class InvalidInput(ApplicationError):
    code = "invalid_input"
    default_message = "The request is not valid."


class RoleRequired(ApplicationError):
    """The user's role does not allow this action (403)."""

    status_code = status.HTTP_403_FORBIDDEN
    code = "role_required"
    default_message = "Your role does not allow this action."


class NotFound(ApplicationError):
    status_code = status.HTTP_404_NOT_FOUND
    code = "not_found"
    default_message = "Not found."


class TransitionRefused(ApplicationError):
    """The object is not in a state that allows this action (409)."""

    status_code = status.HTTP_409_CONFLICT
    code = "invalid_transition"
    default_message = "This action is not allowed in the current state."


class ServiceUnavailable(ApplicationError):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    code = "service_unavailable"
    default_message = "The database cannot be reached just now; try again shortly."


class PayloadTooLarge(ApplicationError):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    code = "payload_too_large"
    default_message = "The request body is larger than 1 MiB."


def _flatten_field_errors(detail: Any) -> Any:
    """DRF's nested ErrorDetail structure as plain {field: [{code, message}]} data."""
    if isinstance(detail, dict):
        return {key: _flatten_field_errors(value) for key, value in detail.items()}
    if isinstance(detail, list):
        if all(isinstance(item, drf_exceptions.ErrorDetail) for item in detail):
            return [{"code": item.code, "message": str(item)} for item in detail]
        return [_flatten_field_errors(item) for item in detail]
    if isinstance(detail, drf_exceptions.ErrorDetail):
        return [{"code": detail.code, "message": str(detail)}]
    return detail


_DRF_CODES = {
    drf_exceptions.ParseError: "malformed_json",
    drf_exceptions.AuthenticationFailed: "authentication_failed",
    drf_exceptions.NotAuthenticated: "not_authenticated",
    drf_exceptions.PermissionDenied: "role_required",
    drf_exceptions.NotFound: "not_found",
    drf_exceptions.MethodNotAllowed: "method_not_allowed",
    drf_exceptions.NotAcceptable: "not_acceptable",
    drf_exceptions.UnsupportedMediaType: "unsupported_media_type",
    drf_exceptions.Throttled: "throttled",
}


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApplicationError):
        return Response(exc.as_dict(), status=exc.status_code)
    if isinstance(exc, TransitionNotAllowed):
        error = TransitionRefused(str(exc) or None)
        return Response(error.as_dict(), status=error.status_code)
    if isinstance(exc, RequestDataTooBig):
        error = PayloadTooLarge()
        return Response(error.as_dict(), status=error.status_code)
    if isinstance(exc, Http404):
        return Response(NotFound().as_dict(), status=status.HTTP_404_NOT_FOUND)
    if isinstance(exc, DjangoPermissionDenied):
        return Response(RoleRequired().as_dict(), status=status.HTTP_403_FORBIDDEN)
    if isinstance(exc, drf_exceptions.ValidationError):
        body = {
            "code": "invalid_input",
            "message": "Some fields are missing or not valid.",
            "fields": _flatten_field_errors(exc.detail),
        }
        return Response(body, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, drf_exceptions.APIException):
        code = next(
            (code for cls, code in _DRF_CODES.items() if isinstance(exc, cls)),
            exc.default_code,
        )
        headers = {}
        if getattr(exc, "wait", None) is not None:
            headers["Retry-After"] = str(int(exc.wait))
        if isinstance(exc, drf_exceptions.NotAuthenticated | drf_exceptions.AuthenticationFailed):
            headers["WWW-Authenticate"] = 'Token realm="api"'
        return Response(
            {"code": code, "message": str(exc.detail)}, status=exc.status_code, headers=headers
        )
    return None


def json_error(error: ApplicationError) -> JsonResponse:
    """The same error body for plain Django views and middleware."""
    return JsonResponse(error.as_dict(), status=error.status_code)
