"""The one pagination of the API: limit/offset, with a ceiling on the page size."""

from __future__ import annotations

from rest_framework.pagination import LimitOffsetPagination


class Pagination(LimitOffsetPagination):
    """`?limit=&offset=`; a limit above the ceiling gets the ceiling (a huge number
    would otherwise reach the database as an out-of-range LIMIT)."""

    max_limit = 500
