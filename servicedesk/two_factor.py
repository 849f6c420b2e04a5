"""Two-factor authentication (TOTP) for legal and supervisors, and step-up for approvals.

- After the password, a lawyer or supervisor must enter a code from an authenticator
  app before any page or session API call (first time: scan the QR code, then confirm
  one code). `REQUIRE_2FA=0` turns this off (the demo does).
- Approving a reply or a template needs a second factor entered within the last
  `STEP_UP_MINUTES`: in the browser a fresh code is asked for; through the API with a
  token, the request carries the current code as `otp`.
"""

from __future__ import annotations

import time
from urllib.parse import quote

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from servicedesk.errors import ApplicationError
from servicedesk.roles import LEGAL, SUPERVISOR, has_role

SETUP_PATH = "/account/2fa/"
_EXEMPT = (SETUP_PATH, "/login/", "/logout/", "/static/", "/healthz", "/readyz", "/metrics")
_VERIFIED_AT = "otp_verified_at"


class StepUpRequired(ApplicationError):
    status_code = 403
    code = "step_up_required"
    default_message = "Enter a current code from your authenticator app to approve."


def needs_second_factor(user) -> bool:
    return (
        settings.SERVICEDESK_REQUIRE_2FA
        and user.is_authenticated
        and has_role(user, LEGAL, SUPERVISOR)
    )


class TwoFactorMiddleware:
    """Sends a lawyer or supervisor who has not entered a code this session to do so."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        user = getattr(request, "user", None)
        if (
            user is not None
            and needs_second_factor(user)
            and not user.is_verified()
            and not request.path.startswith(_EXEMPT)
        ):
            if request.path.startswith("/api/"):
                return JsonResponse(
                    {
                        "code": "two_factor_required",
                        "message": f"Enter your second factor at {SETUP_PATH} first.",
                    },
                    status=403,
                )
            return redirect(f"{SETUP_PATH}?next={quote(request.get_full_path())}")
        return self.get_response(request)


def _confirmed_device(user):
    from django_otp.plugins.otp_totp.models import TOTPDevice

    return TOTPDevice.objects.filter(user=user, confirmed=True).first()


def _qr_svg(url: str) -> str:
    import qrcode
    import qrcode.image.svg

    image = qrcode.make(url, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    return image.to_string(encoding="unicode")


@require_http_methods(["GET", "POST"])
def two_factor(request: HttpRequest) -> HttpResponse:
    """Enter a code (or, the first time, set up the authenticator app)."""
    from django_otp import login as otp_login
    from django_otp.plugins.otp_totp.models import TOTPDevice

    if not request.user.is_authenticated:
        return redirect(f"/login/?next={quote(request.get_full_path())}")
    next_url = request.POST.get("next") or request.GET.get("next") or "/"
    if not url_has_allowed_host_and_scheme(next_url, {request.get_host()}, require_https=False):
        next_url = "/"
    device = _confirmed_device(request.user)
    setting_up = device is None
    if setting_up:
        device = TOTPDevice.objects.filter(user=request.user, confirmed=False).first()
        if device is None:
            device = TOTPDevice.objects.create(
                user=request.user, name="authenticator", confirmed=False
            )
    error = ""
    if request.method == "POST":
        code = request.POST.get("code", "").replace(" ", "")
        if code.isdigit() and len(code) == 6 and device.verify_token(code):
            if setting_up:
                device.confirmed = True
                device.save(update_fields=["confirmed"])
            otp_login(request, device)
            request.session[_VERIFIED_AT] = time.time()
            messages.success(request, "Second factor confirmed.")
            return redirect(next_url)
        error = "That code is not right (or has expired). Enter the current 6-digit code."
    context = {
        "setting_up": setting_up,
        "next": next_url,
        "error": error,
        "qr_svg": _qr_svg(device.config_url) if setting_up else "",
        "secret": device.bin_key.hex() if setting_up else "",
    }
    return render(request, "registration/two_factor.html", context, status=400 if error else 200)


def require_step_up(request, code: str | None = None) -> None:
    """Refuse (403 step_up_required) unless a second factor was entered recently.

    A browser session counts if its code is younger than STEP_UP_MINUTES. An API call
    with a token passes the current code itself."""
    user = request.user
    if not needs_second_factor(user) or not has_role(user, LEGAL):
        return
    session = getattr(request, "session", None)
    verified_at = session.get(_VERIFIED_AT) if session is not None else None
    if verified_at and time.time() - verified_at <= settings.SERVICEDESK_STEP_UP_MINUTES * 60:
        return
    device = _confirmed_device(user)
    if code and device is not None and device.verify_token(str(code).replace(" ", "")):
        if session is not None:
            session[_VERIFIED_AT] = time.time()
        return
    raise StepUpRequired()


def step_up_redirect(request: HttpRequest, back_to: str) -> HttpResponse:
    messages.info(request, "Enter a fresh code from your authenticator app to approve.")
    return redirect(f"{SETUP_PATH}?next={quote(back_to)}&step_up=1")
