"""Test settings: the real settings, with test-only values for what production must name."""

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production-0123456789abcdef")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("SESSION_COOKIE_SECURE", "0")
os.environ.setdefault("CSRF_COOKIE_SECURE", "0")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,127.0.0.1,localhost")
# Second factors are tested on their own (tests/servicedesk/test_two_factor.py).
os.environ.setdefault("REQUIRE_2FA", "0")

from servicedesk.settings import *  # noqa: E402, F403

# Hashing demo passwords with PBKDF2 costs most of a fast test's time.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Tests run tasks in-process unless a test starts a real worker (tests/tickets/test_worker.py).
CELERY_TASK_ALWAYS_EAGER = True
