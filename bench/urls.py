"""The bench URLconf: every real route, plus the baseline the ingest API is compared with.

The baseline is a DRF view with the project's default authentication, permission and
parser (token auth, IsAuthenticated, JSON), behind the same middleware. It parses the
same body as `POST /api/v1/mentions/` and inserts one row with one INSERT: the least a
request that stores a post can cost on this stack.
"""

from __future__ import annotations

from django.db import connection
from django.urls import include, path
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

BARE_TABLE = "bench_bare_insert"

CREATE_BARE_TABLE = f"""
CREATE TABLE IF NOT EXISTS {BARE_TABLE} (
    id bigserial PRIMARY KEY,
    channel varchar(64) NOT NULL,
    external_id varchar(255) NOT NULL,
    author_external_id varchar(255) NOT NULL,
    handle varchar(255) NOT NULL,
    display_name varchar(255) NOT NULL,
    text text NOT NULL,
    url varchar(2048) NOT NULL,
    posted_at timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (channel, external_id)
)
"""

INSERT_BARE = (
    f"INSERT INTO {BARE_TABLE} "  # noqa: S608 (a constant table name, values are parameters)
    "(channel, external_id, author_external_id, handle, display_name, text, url, posted_at) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id"
)


class BareInsertApi(APIView):
    """Parse the mention body and insert it as one row: 201 with the row's id."""

    def post(self, request):
        data = request.data
        author = data["author"]
        with connection.cursor() as cursor:
            cursor.execute(
                INSERT_BARE,
                [
                    data["channel"],
                    data["external_id"],
                    author["external_id"],
                    author.get("handle", ""),
                    author.get("display_name", ""),
                    data["text"],
                    data.get("url", ""),
                    data["posted_at"],
                ],
            )
            (row_id,) = cursor.fetchone()
        return Response({"id": row_id}, status=status.HTTP_201_CREATED)


urlpatterns = [
    path("bench/bare-insert/", BareInsertApi.as_view(), name="bench-bare-insert"),
    path("", include("servicedesk.urls")),
]

handler404 = "servicedesk.views.not_found"
handler500 = "servicedesk.views.error"
