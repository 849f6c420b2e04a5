"""The one pagination of the API: limit/offset, with a ceiling on the page size."""

from __future__ import annotations

from rest_framework.pagination import LimitOffsetPagination


class Pagination(LimitOffsetPagination):
    """`?limit=&offset=`; a limit above the ceiling gets the ceiling (a huge number
    would otherwise reach the database as an out-of-range LIMIT)."""

    max_limit = 500


def paginated(serializer_class):
    """The OpenAPI shape of a page: `{count, next, previous, results: [...]}`."""
    from drf_spectacular.utils import inline_serializer
    from rest_framework import serializers

    return inline_serializer(
        name=f"Paginated{serializer_class.__name__.removesuffix('Out')}List",
        fields={
            "count": serializers.IntegerField(),
            "next": serializers.CharField(allow_null=True),
            "previous": serializers.CharField(allow_null=True),
            "results": serializer_class(many=True),
        },
    )
