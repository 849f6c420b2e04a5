"""Bad input on every endpoint: a 4xx JSON answer with a stable code, and nothing written."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from approvals.models import LegalReview
from servicedesk.models import AuditEvent
from tests.conftest import mention_payload
from tickets.models import Customer, Mention, Reply, ReplyRevision, Ticket

pytestmark = pytest.mark.django_db

LENDING_QUESTION = "@NorthwindBank what is your 30-year fixed mortgage rate today?"
SAFE_ANSWER = "Hi! Rates change daily; please see northwind.example/rates or DM us."
MAX_TEXT_BYTES = 64 * 1024
ONE_MIB = 1024 * 1024
MALFORMED = '{"channel": '
MISSING = 999_999

COUNTED = (Mention, Ticket, Customer, Reply, ReplyRevision, LegalReview, AuditEvent)


def _rows() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in COUNTED}


def _field_code(response, name: str) -> str:
    return response.json()["fields"][name][0]["code"]


@pytest.fixture
def desk(api, agent, lawyer, ingest, claimed_ticket):
    """One of each object an endpoint acts on, all belonging to the agent.

    open_ticket: unclaimed; empty_ticket: claimed, no reply yet; draft: a draft reply on
    a claimed ticket; in_review: a regulated reply waiting for legal.
    """
    client = api(agent)
    open_ticket = ingest()["ticket_id"]
    empty_ticket = claimed_ticket()
    draft_ticket = claimed_ticket()
    draft = client.post(
        f"/api/v1/tickets/{draft_ticket}/replies/", {"body": SAFE_ANSWER}, format="json"
    ).json()["id"]
    review_ticket = claimed_ticket(LENDING_QUESTION)
    in_review = client.post(
        f"/api/v1/tickets/{review_ticket}/replies/", {"body": SAFE_ANSWER}, format="json"
    ).json()["id"]
    assert client.post(f"/api/v1/replies/{in_review}/submit/").status_code == 200
    return SimpleNamespace(
        open_ticket=open_ticket,
        empty_ticket=empty_ticket,
        draft_ticket=draft_ticket,
        draft=draft,
        review_ticket=review_ticket,
        in_review=in_review,
    )


# Every endpoint that reads a JSON body: (role, method, path template).
BODY_ENDPOINTS = [
    ("agent", "post", "/api/v1/mentions/"),
    ("agent", "post", "/api/v1/tickets/{empty_ticket}/replies/"),
    ("agent", "patch", "/api/v1/replies/{draft}/"),
    ("lawyer", "post", "/api/v1/replies/{in_review}/approve/"),
    ("lawyer", "post", "/api/v1/replies/{in_review}/request-changes/"),
    ("agent", "post", "/api/v1/tickets/{open_ticket}/close/"),
    ("agent", "post", "/api/v1/tickets/{open_ticket}/ignore/"),
    ("agent", "post", "/api/v1/tickets/{open_ticket}/flag-regulated/"),
    ("lawyer", "post", "/api/v1/tickets/{review_ticket}/clear-regulated/"),
    ("agent", "post", "/api/v1/screen/"),
]


def _call(request, api, desk, role, method, template, **kwargs):
    user = request.getfixturevalue(role)
    path = template.format(**vars(desk))
    return getattr(api(user), method)(path, **kwargs)


# ---- malformed bodies ----------------------------------------------------------------


@pytest.mark.parametrize(("role", "method", "template"), BODY_ENDPOINTS)
def test_bad_input_malformed_json_is_refused_on_every_endpoint(
    request, api, desk, role, method, template
):
    before = _rows()

    response = _call(
        request, api, desk, role, method, template, data=MALFORMED, content_type="application/json"
    )

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "malformed_json"
    assert _rows() == before


def test_bad_input_malformed_json_leaves_the_reply_and_ticket_as_they_were(api, agent, desk):
    client = api(agent)

    client.patch(f"/api/v1/replies/{desk.draft}/", data=MALFORMED, content_type="application/json")
    client.post(
        f"/api/v1/tickets/{desk.open_ticket}/close/",
        data=MALFORMED,
        content_type="application/json",
    )

    assert client.get(f"/api/v1/replies/{desk.draft}/").json()["body"] == SAFE_ANSWER
    assert client.get(f"/api/v1/tickets/{desk.open_ticket}/").json()["state"] == "open"


@pytest.mark.parametrize(
    "raw_body",
    [
        b'{"text": "\xff\xfe broken utf-8"}',
        b'{"text": NaN}',
        b"",
        b"   ",
        b'{"channel": "sim"} trailing',
    ],
    ids=["invalid-utf8", "nan", "empty", "blank", "trailing-garbage"],
)
def test_bad_input_unparseable_mention_body_is_malformed_json(api, agent, channel, raw_body):
    before = _rows()

    response = api(agent).post("/api/v1/mentions/", data=raw_body, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["code"] in {"malformed_json", "invalid_input"}
    assert _rows() == before


@pytest.mark.parametrize("depth", [65, 500, 990, 100_000])
def test_bad_input_deeply_nested_json_is_refused_not_a_crash(api, agent, channel, depth):
    body = '{"raw": {"a": ' + "[" * depth + "]" * depth + "}}"
    before = _rows()

    response = api(agent).post("/api/v1/mentions/", data=body, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["code"] == "malformed_json"
    assert _rows() == before


def test_bad_input_nested_raw_within_the_limit_is_stored(api, agent, channel):
    nested: dict = {"leaf": "ok"}
    for _ in range(60):
        nested = {"child": nested}

    response = api(agent).post("/api/v1/mentions/", mention_payload(raw=nested), format="json")

    assert response.status_code == 201
    assert Mention.objects.get().raw == nested


@pytest.mark.parametrize(
    "template",
    ["/api/v1/mentions/", "/api/v1/tickets/{empty_ticket}/replies/", "/api/v1/screen/"],
)
def test_bad_input_json_array_instead_of_object_is_invalid_input(request, api, desk, template):
    before = _rows()

    response = _call(
        request,
        api,
        desk,
        "agent",
        "post",
        template,
        data="[1, 2]",
        content_type="application/json",
    )

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_input"
    assert _field_code(response, "non_field_errors") == "invalid"
    assert _rows() == before


# ---- mention fields ------------------------------------------------------------------


def test_bad_input_mention_with_no_fields_names_every_required_one(api, agent, channel):
    before = _rows()

    response = api(agent).post("/api/v1/mentions/", {}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_input"
    fields = response.json()["fields"]
    assert sorted(fields) == ["author", "channel", "external_id", "posted_at", "text"]
    assert {name: errors[0]["code"] for name, errors in fields.items()} == {
        "author": "required",
        "channel": "required",
        "external_id": "required",
        "posted_at": "required",
        "text": "required",
    }
    assert _rows() == before


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("text", 12345, "invalid"),
        ("text", ["hello"], "invalid"),
        ("text", {"body": "hello"}, "invalid"),
        ("text", None, "null"),
        ("text", True, "invalid"),
        ("posted_at", 123, "invalid"),
        ("posted_at", "yesterday", "invalid"),
        ("posted_at", "2026-01-01T10:00:00", "naive_datetime"),
        ("posted_at", "2999-01-01T10:00:00Z", "posted_at_in_future"),
        ("posted_at", "", "invalid"),
        ("channel", "nowhere", "unknown_channel"),
        ("channel", "not a slug!", "invalid"),
        ("channel", ["sim"], "invalid"),
        ("external_id", "", "blank"),
        ("external_id", "x" * 256, "max_length"),
        ("url", "not a url", "invalid"),
        ("raw", ["not", "an", "object"], "not_a_dict"),
        ("raw", "a string", "not_a_dict"),
    ],
)
def test_bad_input_mention_field_is_refused_with_its_code(api, agent, channel, field, value, code):
    before = _rows()

    response = api(agent).post(
        "/api/v1/mentions/", mention_payload(**{field: value}), format="json"
    )

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_input"
    assert _field_code(response, field) == code
    assert _rows() == before


@pytest.mark.parametrize("author", ["cust-1", 42, ["cust-1"]])
def test_bad_input_mention_author_not_an_object_is_invalid(api, agent, channel, author):
    before = _rows()

    response = api(agent).post("/api/v1/mentions/", mention_payload(author=author), format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_input"
    assert response.json()["fields"]["author"]["non_field_errors"][0]["code"] == "invalid"
    assert _rows() == before


def test_bad_input_mention_author_without_external_id_is_invalid(api, agent, channel):
    before = _rows()

    response = api(agent).post(
        "/api/v1/mentions/", mention_payload(author={"handle": "someone"}), format="json"
    )

    assert response.status_code == 400
    assert response.json()["fields"]["author"]["external_id"][0]["code"] == "required"
    assert _rows() == before


def test_bad_input_inactive_channel_is_unknown(api, agent, channel):
    channel.is_active = False
    channel.save()
    before = _rows()

    response = api(agent).post("/api/v1/mentions/", mention_payload(), format="json")

    assert response.status_code == 400
    assert _field_code(response, "channel") == "unknown_channel"
    assert _rows() == before


def test_bad_input_mention_text_of_exactly_64_kib_is_accepted(api, agent, channel):
    response = api(agent).post(
        "/api/v1/mentions/", mention_payload(text="a" * MAX_TEXT_BYTES), format="json"
    )

    assert response.status_code == 201
    assert len(Mention.objects.get().text) == MAX_TEXT_BYTES


@pytest.mark.parametrize(
    "text",
    ["a" * (MAX_TEXT_BYTES + 1), "é" * 40_000, "💳" * 16_385],
    ids=["ascii-65537-bytes", "two-byte-40000-chars", "four-byte-16385-chars"],
)
def test_bad_input_mention_text_over_64_kib_of_utf8_is_too_long(api, agent, channel, text):
    assert len(text) < MAX_TEXT_BYTES or text.isascii()
    assert len(text.encode("utf-8")) > MAX_TEXT_BYTES
    before = _rows()

    response = api(agent).post("/api/v1/mentions/", mention_payload(text=text), format="json")

    assert response.status_code == 400
    assert _field_code(response, "text") == "text_too_long"
    assert _rows() == before


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("text", "hello\x00world"),
        ("external_id", "post\x00-1"),
        ("in_reply_to_external_id", "post\x00-0"),
        ("author", {"external_id": "cust\x00", "handle": "h", "display_name": "d"}),
        ("raw", {"note": "a\x00b"}),
    ],
)
def test_bad_input_nul_character_in_a_mention_is_refused(api, agent, channel, field, value):
    before = _rows()

    response = api(agent).post(
        "/api/v1/mentions/", mention_payload(**{field: value}), format="json"
    )

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_input"
    assert field in response.json()["fields"]
    assert _rows() == before


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("text", "card \ud83d stolen"),
        ("external_id", "post-\udc00"),
        ("author", {"external_id": "cust-1", "handle": "\ud800", "display_name": "d"}),
        ("raw", {"\udfff": 1}),
    ],
)
def test_bad_input_lone_surrogate_is_malformed_not_a_crash(api, agent, channel, field, value):
    payload = json.dumps(mention_payload(**{field: value}))
    before = _rows()

    response = api(agent).post("/api/v1/mentions/", data=payload, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["code"] == "malformed_json"
    assert _rows() == before


def test_bad_input_lone_surrogate_in_a_reply_is_malformed_not_a_crash(api, agent, desk):
    before = _rows()

    response = api(agent).post(
        f"/api/v1/tickets/{desk.empty_ticket}/replies/",
        data='{"body": "Hi \\ud83d"}',
        content_type="application/json",
    )

    assert response.status_code == 400
    assert response.json()["code"] == "malformed_json"
    assert _rows() == before


# ---- body size -----------------------------------------------------------------------


def test_bad_input_mention_body_over_1_mib_is_payload_too_large(api, agent, channel):
    payload = mention_payload(text="a" * (ONE_MIB + 1))
    before = _rows()

    response = api(agent).post("/api/v1/mentions/", payload, format="json")

    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert _rows() == before


def test_bad_input_reply_body_over_1_mib_is_payload_too_large(api, agent, desk):
    before = _rows()

    response = api(agent).post(
        f"/api/v1/tickets/{desk.empty_ticket}/replies/", {"body": "a" * ONE_MIB}, format="json"
    )

    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert _rows() == before


# ---- reply bodies --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("a" * (MAX_TEXT_BYTES + 1), "text_too_long"),
        ("€" * 21_846, "text_too_long"),
        ("", "blank"),
        (None, "null"),
        (12345, "invalid"),
        (["Hi"], "invalid"),
        ("Hi\x00there", "null_characters_not_allowed"),
    ],
    ids=["ascii-too-long", "three-byte-too-long", "blank", "null", "number", "list", "nul"],
)
def test_bad_input_reply_create_body_is_refused_with_its_code(api, agent, desk, body, code):
    before = _rows()

    response = api(agent).post(
        f"/api/v1/tickets/{desk.empty_ticket}/replies/", {"body": body}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_input"
    assert _field_code(response, "body") == code
    assert _rows() == before


@pytest.mark.parametrize(
    ("body", "code"),
    [("a" * (MAX_TEXT_BYTES + 1), "text_too_long"), ("", "blank"), (7, "invalid")],
    ids=["too-long", "blank", "number"],
)
def test_bad_input_reply_edit_body_is_refused_and_the_draft_kept(api, agent, desk, body, code):
    before = _rows()

    response = api(agent).patch(f"/api/v1/replies/{desk.draft}/", {"body": body}, format="json")

    assert response.status_code == 400
    assert _field_code(response, "body") == code
    assert _rows() == before
    reply = api(agent).get(f"/api/v1/replies/{desk.draft}/").json()
    assert (reply["body"], reply["revision"]) == (SAFE_ANSWER, 1)


def test_bad_input_reply_create_without_body_is_required(api, agent, desk):
    before = _rows()

    response = api(agent).post(f"/api/v1/tickets/{desk.empty_ticket}/replies/", {}, format="json")

    assert response.status_code == 400
    assert _field_code(response, "body") == "required"
    assert _rows() == before


@pytest.mark.parametrize(
    ("text", "code"),
    [("a" * (MAX_TEXT_BYTES + 1), "text_too_long"), (None, "null"), ([1], "invalid")],
    ids=["too-long", "null", "list"],
)
def test_bad_input_screen_text_is_refused_with_its_code(api, agent, channel, text, code):
    response = api(agent).post("/api/v1/screen/", {"text": text}, format="json")

    assert response.status_code == 400
    assert _field_code(response, "text") == code


@pytest.mark.parametrize(
    ("template", "payload", "field", "code"),
    [
        ("/api/v1/tickets/{open_ticket}/close/", {"reason": ""}, "reason", "blank"),
        ("/api/v1/tickets/{open_ticket}/close/", {"reason": "x" * 501}, "reason", "max_length"),
        ("/api/v1/tickets/{open_ticket}/ignore/", {"reason": ["spam"]}, "reason", "invalid"),
        ("/api/v1/tickets/{open_ticket}/flag-regulated/", {}, "reason", "required"),
    ],
)
def test_bad_input_reason_is_refused_and_the_ticket_unchanged(
    api, agent, desk, template, payload, field, code
):
    before = _rows()

    response = api(agent).post(template.format(**vars(desk)), payload, format="json")

    assert response.status_code == 400
    assert _field_code(response, field) == code
    assert _rows() == before
    ticket = api(agent).get(f"/api/v1/tickets/{desk.open_ticket}/").json()
    assert (ticket["state"], ticket["regulated"]) == ("open", False)


def test_bad_input_review_comment_of_the_wrong_type_is_refused(api, lawyer, desk):
    before = _rows()

    response = api(lawyer).post(
        f"/api/v1/replies/{desk.in_review}/approve/", {"comment": ["ok"]}, format="json"
    )

    assert response.status_code == 400
    assert _field_code(response, "comment") == "invalid"
    assert _rows() == before
    assert api(lawyer).get(f"/api/v1/replies/{desk.in_review}/").json()["state"] == "in_review"


# ---- ids that do not exist -----------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "method", "path", "payload", "code"),
    [
        ("agent", "get", f"/api/v1/tickets/{MISSING}/", None, "ticket_not_found"),
        ("agent", "post", f"/api/v1/tickets/{MISSING}/claim/", None, "ticket_not_found"),
        ("agent", "post", f"/api/v1/tickets/{MISSING}/close/", {"reason": "x"}, "ticket_not_found"),
        (
            "agent",
            "post",
            f"/api/v1/tickets/{MISSING}/ignore/",
            {"reason": "x"},
            "ticket_not_found",
        ),
        (
            "agent",
            "post",
            f"/api/v1/tickets/{MISSING}/flag-regulated/",
            {"reason": "x"},
            "ticket_not_found",
        ),
        (
            "lawyer",
            "post",
            f"/api/v1/tickets/{MISSING}/clear-regulated/",
            {"reason": "x"},
            "ticket_not_found",
        ),
        (
            "agent",
            "post",
            f"/api/v1/tickets/{MISSING}/replies/",
            {"body": "Hi"},
            "ticket_not_found",
        ),
        ("agent", "get", f"/api/v1/replies/{MISSING}/", None, "reply_not_found"),
        ("agent", "patch", f"/api/v1/replies/{MISSING}/", {"body": "Hi"}, "reply_not_found"),
        ("agent", "post", f"/api/v1/replies/{MISSING}/submit/", None, "reply_not_found"),
        ("agent", "post", f"/api/v1/replies/{MISSING}/send/", None, "reply_not_found"),
        ("lawyer", "post", f"/api/v1/replies/{MISSING}/approve/", {}, "reply_not_found"),
        (
            "lawyer",
            "post",
            f"/api/v1/replies/{MISSING}/request-changes/",
            {"comment": "Fix it."},
            "reply_not_found",
        ),
        ("agent", "get", "/api/v1/tickets/99999999999999999999999/", None, "ticket_not_found"),
        ("agent", "post", "/api/v1/replies/99999999999999999999999/send/", None, "reply_not_found"),
    ],
)
def test_bad_input_missing_object_is_404_with_its_code(
    request, api, desk, role, method, path, payload, code
):
    user = request.getfixturevalue(role)
    before = _rows()

    response = getattr(api(user), method)(path, payload, format="json")

    assert response.status_code == 404
    assert response.json()["code"] == code
    assert _rows() == before


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/tickets/abc/"),
        ("post", "/api/v1/tickets/abc/claim/"),
        ("post", "/api/v1/tickets/-1/close/"),
        ("get", "/api/v1/replies/1.5/"),
        ("post", "/api/v1/replies/abc/approve/"),
        ("get", "/api/v1/no-such-endpoint/"),
    ],
)
def test_bad_input_path_that_matches_nothing_is_json_404(api, agent, channel, method, path):
    before = _rows()

    response = getattr(api(agent), method)(path, {}, format="json")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "not_found"
    assert _rows() == before


# ---- other people's work -------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "template", "payload"),
    [
        ("patch", "/api/v1/replies/{draft}/", {"body": "Hijacked text"}),
        ("post", "/api/v1/replies/{draft}/submit/", None),
        ("post", "/api/v1/replies/{draft}/send/", None),
        ("post", "/api/v1/tickets/{empty_ticket}/replies/", {"body": "Mine now"}),
    ],
)
def test_bad_input_another_agents_reply_is_refused(
    api, agent, agent2, desk, method, template, payload
):
    before = _rows()

    response = getattr(api(agent2), method)(template.format(**vars(desk)), payload, format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "not_assignee"
    assert response.json()["assignee"] == "alice"
    assert _rows() == before
    reply = api(agent).get(f"/api/v1/replies/{desk.draft}/").json()
    assert (reply["state"], reply["body"]) == ("draft", SAFE_ANSWER)


def test_bad_input_claiming_an_already_claimed_ticket_is_refused(api, agent2, desk):
    before = _rows()

    response = api(agent2).post(f"/api/v1/tickets/{desk.empty_ticket}/claim/")

    assert response.status_code == 409
    assert response.json()["code"] == "invalid_transition"
    assert _rows() == before
    assert api(agent2).get(f"/api/v1/tickets/{desk.empty_ticket}/").json()["assignee"] == "alice"


# ---- list filters --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("state=bogus", "state"),
        ("state=open,bogus", "state"),
        ("regulated=maybe", "regulated"),
        ("breached=soon", "breached"),
        ("assignee=%00", "assignee"),
        ("channel=sim%00", "channel"),
    ],
)
def test_bad_input_unknown_ticket_filter_value_is_invalid_filter(api, agent, desk, query, field):
    response = api(agent).get(f"/api/v1/tickets/?{query}")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_filter"
    assert response.json()["field"] == field


@pytest.mark.parametrize("value", ["abc", "-1", "1.0", "", "%C2%B2", "%00"])
def test_bad_input_audit_ticket_filter_must_be_an_id(api, agent, desk, value):
    response = api(agent).get(f"/api/v1/audit/?ticket={value}")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_input"
    assert _field_code(response, "ticket") == "invalid"


@pytest.mark.parametrize(
    "template",
    ["/api/v1/tickets/?", "/api/v1/reviews/?", "/api/v1/audit/?ticket={review_ticket}&"],
)
@pytest.mark.parametrize(
    "query", ["limit=99999999999999999999999", "offset=99999999999999999999999"]
)
def test_bad_input_huge_page_numbers_are_not_a_crash(api, supervisor, desk, template, query):
    path = template.format(**vars(desk)) + query

    response = api(supervisor).get(path)

    assert response.status_code == 200
    expected = response.json()["count"] if query.startswith("limit") else 0
    assert response.json()["count"] > 0
    assert len(response.json()["results"]) == expected


# ---- methods and media types ---------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "template"),
    [
        ("get", "/api/v1/tickets/{open_ticket}/claim/"),
        ("get", "/api/v1/mentions/"),
        ("delete", "/api/v1/replies/{draft}/"),
        ("put", "/api/v1/replies/{draft}/"),
        ("post", "/api/v1/tickets/"),
        ("delete", "/api/v1/tickets/{open_ticket}/"),
        ("get", "/api/v1/replies/{draft}/send/"),
    ],
)
def test_bad_input_wrong_method_is_405(api, agent, desk, method, template):
    before = _rows()

    response = getattr(api(agent), method)(template.format(**vars(desk)))

    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
    assert _rows() == before
    assert api(agent).get(f"/api/v1/tickets/{desk.open_ticket}/").json()["state"] == "open"


@pytest.mark.parametrize(
    ("content_type", "data"),
    [
        ("application/x-www-form-urlencoded", "channel=sim&external_id=f-1&text=hi"),
        ("text/plain", '{"channel": "sim"}'),
        ("application/xml", "<mention/>"),
    ],
)
def test_bad_input_non_json_mention_body_is_415(api, agent, channel, content_type, data):
    before = _rows()

    response = api(agent).post("/api/v1/mentions/", data=data, content_type=content_type)

    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"
    assert _rows() == before


def test_bad_input_multipart_reply_body_is_415(api, agent, desk):
    before = _rows()

    response = api(agent).post(
        f"/api/v1/tickets/{desk.empty_ticket}/replies/", {"body": SAFE_ANSWER}, format="multipart"
    )

    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"
    assert _rows() == before


def test_api_path_without_trailing_slash_redirects_keeping_the_method(api, agent, channel):
    response = api(agent).post("/api/v1/mentions", mention_payload(), format="json")

    assert response.status_code == 308
    assert response["Location"] == "/api/v1/mentions/"
    assert Mention.objects.count() == 0


def test_api_path_that_does_not_exist_without_slash_is_a_json_404(api, agent):
    response = api(agent).get("/api/v1/nothing-here")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
