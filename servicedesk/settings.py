"""Settings for servicedesk, read from the environment.

Embedded defaults need no server: SQLite in the project folder, Celery tasks run
eagerly in-process and a local-memory cache while REDIS_URL is unset. Every variable
read here is listed in `.env.example`.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from exc


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


DEBUG = env_bool("DEBUG", default=False)

# A development key is allowed only with DEBUG on; production must name its own.
_DEV_SECRET_KEY = "dev-only-insecure-key-change-me-servicedesk-0123456789abcdef"  # noqa: S105
SECRET_KEY = env_str("SECRET_KEY", _DEV_SECRET_KEY if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_fsm",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "servicedesk",
    "connectors",
    "tickets",
    "approvals",
]

MIDDLEWARE = [
    "servicedesk.observability.RequestIdMiddleware",
    "servicedesk.middleware.BodySizeLimitMiddleware",
    # An unreachable database: 503 with Retry-After, not a 500 (for the views below).
    "servicedesk.middleware.DatabaseUnavailableMiddleware",
    # The platforms' webhooks (signed, sessionless) skip the rest of the chain.
    "connectors.middleware.PlatformWebhookMiddleware",
    "servicedesk.middleware.ApiSlashRedirectMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "servicedesk.two_factor.TwoFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Login throttling: after AXES_FAILURE_LIMIT wrong passwords for one user from one
    # address, that pair is locked out for AXES_COOLOFF_TIME (answered 429).
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# The client's address: REMOTE_ADDR, or behind a trusted proxy the last X-Forwarded-For
# entry (servicedesk/net.py), as for the webhook limits.
AXES_CLIENT_IP_CALLABLE = "servicedesk.net.login_client_ip"
BEHIND_PROXY = env_bool("BEHIND_PROXY", False)


def _env_limit(name: str, default: int) -> int:
    value = env_int(name, default)
    if value < 0:
        raise ImproperlyConfigured(f"{name} must be 0 (off) or more, got {value}")
    return value


def _env_addresses(name: str, default: list[str]) -> frozenset[str]:
    import ipaddress

    try:
        return frozenset(str(ipaddress.ip_address(item)) for item in env_list(name, default))
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must list IP addresses: {exc}") from exc


# Public webhooks (connectors/ratelimit.py), per client address per minute; 0 turns a
# limit off. WEBHOOK_FORGED_LIMIT: failed signatures, then 429 for the rest of the
# minute. WEBHOOK_RATE_LIMIT: every request; platforms deliver from a few addresses in
# bursts, so keep it well above their peak: 60,000 a minute is 1,000 a second, about
# what one 2-core machine acknowledges at most (bench/webhooks.py), so a platform
# delivering the goal's 500 a second from a single address is never refused. Forged
# requests have their own, low limit. This host is never limited (the bench; a local
# proxy must set BEHIND_PROXY=1 for its clients to be told apart).
WEBHOOK_RATE_LIMIT = _env_limit("WEBHOOK_RATE_LIMIT", 60000)
WEBHOOK_FORGED_LIMIT = _env_limit("WEBHOOK_FORGED_LIMIT", 20)
WEBHOOK_RATE_LIMIT_EXEMPT = _env_addresses("WEBHOOK_RATE_LIMIT_EXEMPT", ["127.0.0.1", "::1"])
# The cache (alias in CACHES) holding the counters.
WEBHOOK_RATE_LIMIT_CACHE = "default"

# Two-factor authentication (TOTP) for legal and supervisors; approvals need a code
# entered within the last STEP_UP_MINUTES.
SERVICEDESK_REQUIRE_2FA = env_bool("REQUIRE_2FA", True)
SERVICEDESK_STEP_UP_MINUTES = env_int("STEP_UP_MINUTES", 15)
OTP_TOTP_ISSUER = env_str("OTP_TOTP_ISSUER", "servicedesk")
# The admin never shows a device's TOTP secret or QR code: whoever saw it could make a
# lawyer's codes (and its config pages answered a missing device with a 500).
OTP_ADMIN_HIDE_SENSITIVE_DATA = True

ROOT_URLCONF = "servicedesk.urls"
WSGI_APPLICATION = "servicedesk.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                # The navigation (name, role, bell), computed only by pages that show it.
                "tickets.ui.nav_context",
            ],
        },
    },
]

DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'servicedesk.sqlite3'}")
DATABASES = {
    "default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the demo's mention stream write while the web server reads.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
else:
    # A database that does not answer fails a request in seconds (a webhook then answers
    # 503 and the platform retries) instead of holding a web process; a persistent
    # connection that died is noticed and replaced before it is used.
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env_int(
        "DB_CONNECT_TIMEOUT", 5
    )
    # Session settings for every connection: JIT off by default (compiling the wall's
    # and the reports' queries cost more than it saved). Behind a pooler that refuses
    # startup options (pgbouncer), set it empty and use ALTER ROLE … SET jit = off.
    session_options = env_str("DB_SESSION_OPTIONS", "-c jit=off")
    if session_options:
        DATABASES["default"]["OPTIONS"]["options"] = session_options
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            # Redis down or hung costs a request a second at most, never a web process.
            "OPTIONS": {
                "socket_connect_timeout": env_int("REDIS_CONNECT_TIMEOUT", 1),
                "socket_timeout": env_int("REDIS_SOCKET_TIMEOUT", 2),
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Celery: Redis is the broker when named; otherwise every task runs eagerly in-process.
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "servicedesk"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
# Keep a worker's database connection across tasks (reconnecting per task cost more than
# the work); servicedesk/celery.py drops broken or expired ones before each task.
CELERY_DB_REUSE_MAX = env_int("CELERY_DB_REUSE_MAX", 1000)
CELERY_BEAT_SCHEDULE = {
    "poll-due-channels": {"task": "connectors.poll_due_channels", "schedule": 15.0},
    "outbox-sweep": {"task": "tickets.outbox_sweep", "schedule": 30.0},
    "delivery-sweep": {"task": "connectors.delivery_sweep", "schedule": 60.0},
    "audit-archive": {"task": "servicedesk.audit_archive", "schedule": 3600.0},
    # Supervision: window warnings, breaches and legal escalations; the latency record.
    "escalations-check": {"task": "tickets.escalations_check", "schedule": 30.0},
    "cycles-refresh": {"task": "tickets.cycles_refresh", "schedule": 30.0},
    "wall-warm": {"task": "tickets.wall_warm", "schedule": 300.0},
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]

# The desk's own login page; each role then lands on its page (tickets/ui.py landing_url).
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"

# Request bodies: 1 MiB at most (answered 413 before any parsing), and one text field
# of a mention or reply 64 KiB at most.
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
MAX_TEXT_BYTES = 64 * 1024

# Audit retention: events older than this many days are written to archive files (the
# rows stay: the log is append-only). 0 turns archiving off.
AUDIT_RETENTION_DAYS = env_int("AUDIT_RETENTION_DAYS", 0)
AUDIT_ARCHIVE_DIR = env_str("AUDIT_ARCHIVE_DIR", str(BASE_DIR / "audit-archive"))

# Compliance: the bank's own web domains. A link to one of them in a reply can carry
# the full credit disclosures (Reg Z, electronic advertisements), and template URL
# slots accept only these domains.
SERVICEDESK_LINK_DOMAINS = env_list("SERVICEDESK_LINK_DOMAINS", ["northwind.example"])
# Send the approved holding reply automatically when a regulated draft goes to legal.
SERVICEDESK_AUTO_HOLDING_REPLY = env_bool("SERVICEDESK_AUTO_HOLDING_REPLY", False)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["servicedesk.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "servicedesk.pagination.Pagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "servicedesk.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append(
        "rest_framework.renderers.BrowsableAPIRenderer"
    )

SPECTACULAR_SETTINGS = {
    "TITLE": "servicedesk API",
    "DESCRIPTION": "Social customer service with a legal gate on regulated replies.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# Supervision (issue 6). Escalations go in-app always; by e-mail and to a chat webhook
# (a JSON {"text": ...} POST, as Slack-style incoming webhooks take) for these kinds.
ESCALATION_KINDS = ("window_50", "window_80", "window_breach", "legal_at_risk", "legal_escalated")


def env_kinds(name: str, default: list[str]) -> list[str]:
    kinds = env_list(name, default)
    unknown = sorted(set(kinds) - set(ESCALATION_KINDS))
    if unknown:
        raise ImproperlyConfigured(
            f"{name}: unknown escalation kinds {unknown}; choose from {list(ESCALATION_KINDS)}"
        )
    return kinds


ESCALATION_EMAIL_KINDS = env_kinds(
    "ESCALATION_EMAIL_KINDS", ["window_80", "window_breach", "legal_at_risk", "legal_escalated"]
)
SERVICEDESK_CHAT_WEBHOOK_URL = env_str("SERVICEDESK_CHAT_WEBHOOK_URL", "")
if SERVICEDESK_CHAT_WEBHOOK_URL and not SERVICEDESK_CHAT_WEBHOOK_URL.startswith(
    ("https://", "http://")
):
    raise ImproperlyConfigured("SERVICEDESK_CHAT_WEBHOOK_URL must be an http(s) URL")
CHAT_KINDS = env_kinds("CHAT_KINDS", ["window_breach", "legal_escalated"])
# The desk's public address, for links in e-mails and chat messages.
SERVICEDESK_BASE_URL = env_str("SERVICEDESK_BASE_URL", "")
# Staffing: the share of customers to answer within the window (Erlang C target).
STAFFING_TARGET_PCT = env_int("STAFFING_TARGET_PCT", 90)
if not 1 <= STAFFING_TARGET_PCT <= 99:
    raise ImproperlyConfigured("STAFFING_TARGET_PCT must be between 1 and 99")
# Latency reports on PostgreSQL sort a period's durations in memory, this much per sort.
REPORT_WORK_MEM = env_str("REPORT_WORK_MEM", "256MB")
# The command-center wall: hours of mentions on its chart, seconds between refreshes.
WALL_HOURS = env_int("WALL_HOURS", 3)
WALL_REFRESH_SECONDS = env_int("WALL_REFRESH_SECONDS", 15)
if not 1 <= WALL_HOURS <= 24 or WALL_REFRESH_SECONDS < 5:
    raise ImproperlyConfigured("WALL_HOURS must be 1-24 and WALL_REFRESH_SECONDS at least 5")

# E-mail (escalations). Unset EMAIL_HOST: messages are written to the console log.
EMAIL_HOST = env_str("EMAIL_HOST", "")
EMAIL_PORT = env_int("EMAIL_PORT", 587)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", default=True)
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "") or (
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend"
)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "servicedesk@localhost")

# Fernet keys for channel credentials at rest, newest first (see connectors/crypto.py).
CREDENTIALS_KEYS = env_str("CREDENTIALS_KEYS", "")

# First-response window when no WindowPolicy row matches a channel and priority.
DEFAULT_WINDOW_MINUTES = env_int("DEFAULT_WINDOW_MINUTES", 60)

# Security headers; production values unless DEBUG is on.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=not DEBUG)
# Probes from the load balancer and Prometheus come over plain HTTP inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# LOG_FORMAT=json (the production default) writes one JSON object per line with the
# request id; `text` is for a developer's terminal.
LOG_FORMAT = env_str("LOG_FORMAT", "text" if DEBUG else "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "servicedesk.observability.RequestIdFilter"}},
    "formatters": {
        "json": {"()": "servicedesk.observability.JsonFormatter"},
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT if LOG_FORMAT in ("json", "text") else "json",
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # httpx logs every URL at INFO; some platforms put tokens in query strings.
        "httpx": {"level": "WARNING"},
        # Lockouts are logged at WARNING; every successful login is not news.
        "axes": {"level": "WARNING"},
    },
}

# /metrics: with a token set, Prometheus must send it as a bearer token.
METRICS_TOKEN = env_str("METRICS_TOKEN", "")
