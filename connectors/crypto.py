"""Channel credentials at rest: Fernet-encrypted with a key from the environment.

`CREDENTIALS_KEYS` holds one or more Fernet keys, comma-separated, newest first: the
first encrypts, all decrypt, so keys can be rotated. Unset, a key is derived from
SECRET_KEY (so the demo works), which ties the credentials to that secret.
"""

from __future__ import annotations

import base64
import hashlib
import json

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def _fernet() -> MultiFernet:
    keys = [key.strip() for key in settings.CREDENTIALS_KEYS.split(",") if key.strip()]
    if not keys:
        derived = hashlib.sha256(
            b"servicedesk-credentials:" + settings.SECRET_KEY.encode()
        ).digest()
        keys = [base64.urlsafe_b64encode(derived).decode()]
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except ValueError as exc:
        raise ImproperlyConfigured("CREDENTIALS_KEYS must be Fernet keys") from exc


def encrypt_secrets(secrets: dict[str, str]) -> str:
    if not secrets:
        return ""
    return _fernet().encrypt(json.dumps(secrets, sort_keys=True).encode()).decode()


def decrypt_secrets(token: str) -> dict[str, str]:
    if not token:
        return {}
    try:
        return json.loads(_fernet().decrypt(token.encode()))
    except InvalidToken as exc:
        raise ImproperlyConfigured(
            "channel credentials cannot be decrypted: CREDENTIALS_KEYS (or SECRET_KEY) changed"
        ) from exc
