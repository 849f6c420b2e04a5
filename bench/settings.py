"""Bench settings: the real settings, with the bench URLconf (the API plus a bare-insert view).

`bench/ingest.py` sets the environment (PostgreSQL bench database, DEBUG off, a bench-only
SECRET_KEY, no Redis) before Django reads this module.
"""

from servicedesk.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
