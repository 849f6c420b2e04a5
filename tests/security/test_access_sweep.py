"""Every URL of the project, for every role: what DESIGN.md promises, and never a 500.

The sweep walks `get_resolver()`: a URL pattern this file does not classify fails the
first test, so nothing is ever left unchecked. For each pattern it sends each of its
methods (and the ones it must refuse) as each role — anonymous, the assigned agent
(alice), a second agent (bob), a lawyer, a supervisor, an admin (staff), the integration
account and a logged-in user with no role — against real objects made through the
services, and checks the answer: anonymous goes to the login page (pages) or gets a 401
(API); a role violation is a 403, a hidden object a 404, a refused transition a 409,
each with a JSON `code` on the API; and whatever a refused request was, the stored
objects are unchanged afterwards. Each request runs in a savepoint that is rolled back,
so every role meets the same world.

Then: ids that do not exist (404, not a 500), and mass assignment — read-only fields sent
to every writable endpoint are ignored or refused, never stored.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from approvals import template_services
from approvals.models import (
    LegalReview,
    PolicyState,
    PolicyVersion,
    ResponseTemplate,
    TemplatePurpose,
    TemplateVersion,
)
from servicedesk.models import AuditEvent
from tests.conftest import client_for
from tests.factories import ChannelFactory, UserFactory
from tickets.models import Mention, Reply, Ticket, TicketInvitation, TicketNote
from tickets.services import (
    mention_ingest,
    reply_create,
    reply_submit,
    ticket_claim,
)

pytestmark = pytest.mark.django_db

ROLES = (
    "anonymous",
    "agent",
    "agent2",
    "legal",
    "supervisor",
    "admin",
    "integration",
    "outsider",
)
GROUPS = {
    "everyone": ROLES[1:],
    "desk": ("agent", "agent2", "legal", "supervisor"),
    "non_desk": ("admin", "integration", "outsider"),
    "agents": ("agent", "agent2"),
}

LENDING = "@NorthwindBank what is your 30-year fixed mortgage rate today?"
ANSWER = "Our 30-year fixed is 6.125% APR today; see northwind.example/rates for terms."


# ---- what a request may answer ---------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    statuses: frozenset[int]
    code: str | None = None  # the API answer's JSON `code`
    unchanged: bool = False  # the stored objects must be exactly as before
    login: bool = False  # a redirect to the login page


def ok(*statuses: int) -> Outcome:
    return Outcome(frozenset(statuses))


def refused(*statuses: int, code: str | None = None) -> Outcome:
    return Outcome(frozenset(statuses), code=code, unchanged=True)


API_ANON = refused(401, code="not_authenticated")
PAGE_ANON = Outcome(frozenset({302}), unchanged=True, login=True)
API_ROLE = refused(403, code="role_required")
PAGE_ROLE = refused(403)
API_405 = refused(405, code="method_not_allowed")
PAGE_405 = refused(405)
NOT_ASSIGNEE = refused(409, code="not_assignee")


def expect(kind: str, **groups: Outcome) -> dict[str, Outcome]:
    """Outcome per role from groups (applied in order, later ones win); anonymous gets
    the login answer of the kind unless named."""
    table: dict[str, Outcome] = {"anonymous": API_ANON if kind == "api" else PAGE_ANON}
    for name, outcome in groups.items():
        for role in GROUPS.get(name, (name,)):
            table[role] = outcome
    missing = set(ROLES) - set(table)
    assert not missing, f"no outcome for {sorted(missing)}"
    return table


@dataclass(frozen=True)
class Call:
    method: str
    outcomes: dict[str, Outcome]
    # The body: a dict (strings naming a world object become its id), or world -> dict.
    data: dict | Callable[[World], dict] | None = None


@dataclass(frozen=True)
class Route:
    kind: str  # "api", "page" or "public"
    calls: tuple[Call, ...]
    args: dict[str, str] = field(default_factory=dict)  # URL argument -> world object
    # Methods the route refuses (405); the others are in `calls`.
    refuses: tuple[str, ...] = ()


def api(*calls: Call, args=None, refuses=("GET", "POST", "PATCH", "DELETE")) -> Route:
    taken = {call.method for call in calls}
    return Route(
        "api", calls, args or {}, tuple(method for method in refuses if method not in taken)
    )


def page(*calls: Call, args=None, refuses=("GET", "POST")) -> Route:
    taken = {call.method for call in calls}
    return Route(
        "page", calls, args or {}, tuple(method for method in refuses if method not in taken)
    )


def api_read(**groups: Outcome) -> Call:
    return Call("GET", expect("api", **groups))


def page_read(**groups: Outcome) -> Call:
    return Call("GET", expect("page", **groups))


DESK_READ = api_read(desk=ok(200), non_desk=API_ROLE)
SUPERVISOR_READ = api_read(everyone=API_ROLE, supervisor=ok(200))
DESK_PAGE = page_read(desk=ok(200), non_desk=PAGE_ROLE)
LEGAL_PAGE = page_read(everyone=PAGE_ROLE, legal=ok(200), supervisor=ok(200))
SUPERVISOR_PAGE = page_read(everyone=PAGE_ROLE, supervisor=ok(200))
T1 = {"ticket_id": "t1"}  # alice's ticket in progress, with her draft r1
T2 = {"ticket_id": "t2"}  # alice's regulated ticket in legal review (reply r2)
T3 = {"ticket_id": "t3"}  # alice's ticket in progress, no reply yet
R1 = {"reply_id": "r1"}
R2 = {"reply_id": "r2"}
TPL = {"template_id": "tpl"}  # a draft template written by the supervisor
REASON = {"reason": "checked by the access sweep"}


def _mention(world) -> dict:
    return {
        "channel": "sim",
        "external_id": "sweep-1",
        "author": {"external_id": "c-sweep", "handle": "sweeper"},
        "text": "where is my card?",
        "posted_at": (timezone.now() - timedelta(minutes=1)).isoformat(),
    }


# Every URL pattern of the project, as get_resolver() spells it (the admin site's are
# swept generically below).
ROUTES: dict[str, Route] = {
    # ---- public -------------------------------------------------------------------------
    # Probes answer anyone; 503 says what is down (a migration another process is adding).
    "healthz": Route(
        "public", (Call("GET", expect("public", anonymous=ok(200, 503), everyone=ok(200, 503))),)
    ),
    "readyz": Route(
        "public", (Call("GET", expect("public", anonymous=ok(200, 503), everyone=ok(200, 503))),)
    ),
    # Prometheus: open unless METRICS_TOKEN is set (tested with one below).
    "metrics": Route(
        "public", (Call("GET", expect("public", anonymous=ok(200), everyone=ok(200))),)
    ),
    "api/schema/": Route(
        "public", (Call("GET", expect("public", anonymous=ok(200), everyone=ok(200))),)
    ),
    "api/docs/": Route(
        "public", (Call("GET", expect("public", anonymous=ok(200), everyone=ok(200))),)
    ),
    "login/": Route(
        "public",
        (
            Call("GET", expect("public", anonymous=ok(200), everyone=ok(302))),
            Call("POST", expect("public", anonymous=ok(200), everyone=ok(302)), data={}),
        ),
    ),
    "logout/": Route(
        "public",
        (
            Call("GET", expect("public", anonymous=PAGE_405, everyone=PAGE_405)),
            Call("POST", expect("public", anonymous=ok(302), everyone=ok(302)), data={}),
        ),
    ),
    # The webhooks: signatures, not roles (tests/connectors, test_webhook_rate_limits).
    "connectors/x/webhook/": Route(
        "public",
        (
            Call("GET", expect("public", anonymous=refused(400), everyone=refused(400))),
            Call("POST", expect("public", anonymous=refused(403), everyone=refused(403)), data={}),
        ),
    ),
    "connectors/meta/webhook/": Route(
        "public",
        (
            Call("GET", expect("public", anonymous=refused(400), everyone=refused(400))),
            Call("POST", expect("public", anonymous=refused(403), everyone=refused(403)), data={}),
        ),
    ),
    "connectors/generic/webhook/": Route(
        "public",
        (
            Call("GET", expect("public", anonymous=refused(405), everyone=refused(405))),
            Call("POST", expect("public", anonymous=refused(403), everyone=refused(403)), data={}),
        ),
    ),
    # ---- pages for everyone logged in ---------------------------------------------------------
    "": Route(
        "page",
        (
            Call("GET", expect("page", everyone=ok(302))),
            Call("POST", expect("page", everyone=ok(302)), data={}),
        ),
    ),
    "account/2fa/": Route(
        "page",
        (
            Call("GET", expect("page", everyone=ok(200))),
            Call("POST", expect("page", everyone=refused(400)), data={"code": "000000"}),
        ),
    ),
    "notifications/": page(page_read(everyone=ok(200))),
    "notifications/bell/": page(page_read(everyone=ok(200))),
    "notifications/read/": page(Call("POST", expect("page", everyone=ok(302)), data={})),
    # ---- the desk's pages ---------------------------------------------------------------------
    "inbox/": page(DESK_PAGE),
    "inbox/rows/": page(DESK_PAGE),
    "tickets/<int:ticket_id>/": page(DESK_PAGE, args=T1),
    "tickets/<int:ticket_id>/screen/": page(
        Call("POST", expect("page", desk=ok(200), non_desk=PAGE_ROLE), data={"body": "hi"}),
        args=T1,
    ),
    "tickets/<int:ticket_id>/claim/": page(
        # In progress already: the desk is told so; anyone else may never claim.
        Call(
            "POST",
            expect(
                "page",
                non_desk=PAGE_ROLE,
                agents=refused(302),
                supervisor=refused(302),
                legal=PAGE_ROLE,
            ),
            data={},
        ),
        args=T1,
    ),
    "tickets/<int:ticket_id>/close/": page(
        Call(
            "POST",
            expect(
                "page",
                non_desk=PAGE_ROLE,
                legal=PAGE_ROLE,
                agent=ok(302),
                supervisor=ok(302),
                agent2=refused(302),
            ),
            data=REASON,
        ),
        args=T1,
    ),
    "tickets/<int:ticket_id>/ignore/": page(
        Call(
            "POST",
            expect(
                "page",
                non_desk=PAGE_ROLE,
                legal=PAGE_ROLE,
                agent=ok(302),
                supervisor=ok(302),
                agent2=refused(302),
            ),
            data=REASON,
        ),
        args=T1,
    ),
    "tickets/<int:ticket_id>/reply/": page(
        Call(
            "POST",
            expect(
                "page",
                non_desk=PAGE_ROLE,
                legal=PAGE_ROLE,
                agent=ok(302),
                agent2=refused(409),
                supervisor=refused(409),
            ),
            data={"body": "Edited by the sweep.", "action": "save"},
        ),
        args=T1,
    ),
    "tickets/<int:ticket_id>/notes/": page(
        Call("POST", expect("page", desk=ok(302), non_desk=PAGE_ROLE), data={"body": "a note"}),
        args=T1,
    ),
    "tickets/<int:ticket_id>/template/": page(
        # The draft template is not usable: the desk is told; nobody else gets that far.
        Call(
            "POST", expect("page", desk=refused(302), non_desk=PAGE_ROLE), data={"template": "tpl"}
        ),
        args=T3,
    ),
    "tickets/<int:ticket_id>/holding/": page(
        Call(
            "POST",
            expect(
                "page",
                non_desk=PAGE_ROLE,
                legal=PAGE_ROLE,
                agent=refused(302),
                agent2=refused(302),
                supervisor=refused(302),
            ),
            data={},
        ),
        args=T2,
    ),
    "tickets/<int:ticket_id>/invite/": page(
        # Anyone at the desk may ask a colleague to help (DESIGN.md: work spreads).
        Call(
            "POST",
            expect("page", desk=ok(302), non_desk=PAGE_ROLE),
            data={"invitee": "outsider", "role": "advise", "message": ""},
        ),
        args=T1,
    ),
    "tickets/<int:ticket_id>/reassign/": page(
        Call(
            "POST",
            expect("page", everyone=PAGE_ROLE, supervisor=ok(302)),
            data={"assignee": "agent2", "reason": "sweep"},
        ),
        args=T1,
    ),
    "tickets/<int:ticket_id>/clear-regulated/": page(
        Call(
            "POST",
            expect("page", everyone=PAGE_ROLE, legal=ok(302), supervisor=ok(302)),
            data=REASON,
        ),
        args=T2,
    ),
    "tickets/<int:ticket_id>/presence/": page(
        Call(
            "POST", expect("page", desk=ok(200), non_desk=PAGE_ROLE), data={"activity": "viewing"}
        ),
        args=T1,
    ),
    # ---- legal's pages ------------------------------------------------------------------------
    "legal/": page(LEGAL_PAGE),
    "legal/rows/": page(LEGAL_PAGE),
    "legal/reviews/<int:reply_id>/": page(LEGAL_PAGE, args=R2),
    "legal/reviews/<int:reply_id>/approve/": page(
        Call("POST", expect("page", everyone=PAGE_ROLE, legal=ok(302)), data={}), args=R2
    ),
    "legal/reviews/<int:reply_id>/request-changes/": page(
        Call("POST", expect("page", everyone=PAGE_ROLE, legal=ok(302)), data={"comment": "fix"}),
        args=R2,
    ),
    "legal/templates/": page(LEGAL_PAGE),
    "legal/templates/new/": page(
        Call(
            "POST",
            expect("page", everyone=PAGE_ROLE, legal=ok(302), supervisor=ok(302)),
            data={"name": "Sweep", "body": "Hello there.", "purpose": "answer"},
        )
    ),
    "legal/templates/<int:template_id>/": page(
        LEGAL_PAGE,
        Call(
            "POST",
            expect("page", everyone=PAGE_ROLE, legal=ok(302), supervisor=ok(302)),
            data={"action": "edit", "body": "Hello again."},
        ),
        args=TPL,
    ),
    "legal/policy/": page(LEGAL_PAGE),
    "legal/policy/draft/": page(
        Call("POST", expect("page", everyone=PAGE_ROLE, legal=ok(302)), data={"note": "sweep"})
    ),
    "legal/policy/<int:number>/": page(
        LEGAL_PAGE,
        # The active version is not a draft: even legal cannot change it.
        Call(
            "POST",
            expect("page", everyone=PAGE_ROLE, legal=refused(409)),
            data={"action": "note", "note": "changed", "not_pii": ""},
        ),
        args={"number": "policy"},
    ),
    # ---- supervisors' pages ---------------------------------------------------------------------
    "reports/": page(SUPERVISOR_PAGE),
    "reports/staffing/": page(SUPERVISOR_PAGE),
    "wall/": page(SUPERVISOR_PAGE),
    "wall/panel/": page(SUPERVISOR_PAGE),
    "tickets/<int:ticket_id>/evidence/": page(
        page_read(everyone=PAGE_ROLE, legal=ok(200), supervisor=ok(200)), args=T1
    ),
    # ---- the API --------------------------------------------------------------------------------
    "api/v1/mentions/": api(
        Call(
            "POST",
            expect(
                "api", everyone=API_ROLE, agents=ok(201), supervisor=ok(201), integration=ok(201)
            ),
            data=_mention,
        )
    ),
    "api/v1/tickets/": api(DESK_READ),
    "api/v1/tickets/<int:ticket_id>/": api(DESK_READ, args=T1),
    "api/v1/tickets/<int:ticket_id>/claim/": api(
        # In progress already: 409 for those who may claim; a 403 for anyone else.
        Call(
            "POST",
            expect(
                "api",
                everyone=API_ROLE,
                agents=refused(409, code="invalid_transition"),
                supervisor=refused(409, code="invalid_transition"),
            ),
            data={},
        ),
        args=T1,
    ),
    "api/v1/tickets/<int:ticket_id>/close/": api(
        Call(
            "POST",
            expect(
                "api", everyone=API_ROLE, agent=ok(200), supervisor=ok(200), agent2=NOT_ASSIGNEE
            ),
            data=REASON,
        ),
        args=T1,
    ),
    "api/v1/tickets/<int:ticket_id>/ignore/": api(
        Call(
            "POST",
            expect(
                "api", everyone=API_ROLE, agent=ok(200), supervisor=ok(200), agent2=NOT_ASSIGNEE
            ),
            data=REASON,
        ),
        args=T1,
    ),
    "api/v1/tickets/<int:ticket_id>/flag-regulated/": api(
        Call("POST", expect("api", desk=ok(200), non_desk=API_ROLE), data=REASON), args=T1
    ),
    "api/v1/tickets/<int:ticket_id>/clear-regulated/": api(
        Call(
            "POST",
            expect("api", everyone=API_ROLE, legal=ok(200), supervisor=ok(200)),
            data=REASON,
        ),
        args=T2,
    ),
    "api/v1/tickets/<int:ticket_id>/replies/": api(
        Call(
            "POST",
            expect(
                "api",
                everyone=API_ROLE,
                agent=ok(201),
                agent2=NOT_ASSIGNEE,
                supervisor=NOT_ASSIGNEE,
            ),
            data={"body": "We are looking into it."},
        ),
        args=T3,
    ),
    "api/v1/tickets/<int:ticket_id>/holding-reply/": api(
        Call(
            "POST",
            expect(
                "api",
                everyone=API_ROLE,
                agent=refused(409, code="template_not_approved"),
                agent2=NOT_ASSIGNEE,
                supervisor=NOT_ASSIGNEE,
            ),
            data={},
        ),
        args=T2,
    ),
    "api/v1/replies/<int:reply_id>/": api(
        DESK_READ,
        Call(
            "PATCH",
            expect(
                "api",
                everyone=API_ROLE,
                agent=ok(200),
                agent2=NOT_ASSIGNEE,
                supervisor=NOT_ASSIGNEE,
            ),
            data={"body": "Edited by the sweep."},
        ),
        args=R1,
    ),
    "api/v1/replies/<int:reply_id>/submit/": api(
        Call(
            "POST",
            expect(
                "api",
                everyone=API_ROLE,
                agent=ok(200),
                agent2=NOT_ASSIGNEE,
                supervisor=NOT_ASSIGNEE,
            ),
            data={},
        ),
        args=R1,
    ),
    "api/v1/replies/<int:reply_id>/send/": api(
        Call(
            "POST",
            expect(
                "api",
                everyone=API_ROLE,
                agent=ok(202),
                agent2=NOT_ASSIGNEE,
                supervisor=NOT_ASSIGNEE,
            ),
            data={},
        ),
        args=R1,
    ),
    "api/v1/replies/<int:reply_id>/approve/": api(
        Call("POST", expect("api", everyone=API_ROLE, legal=ok(200)), data={}), args=R2
    ),
    "api/v1/replies/<int:reply_id>/request-changes/": api(
        Call("POST", expect("api", everyone=API_ROLE, legal=ok(200)), data={"comment": "fix"}),
        args=R2,
    ),
    "api/v1/audit/": api(
        api_read(everyone=API_ROLE, supervisor=ok(200)),
    ),
    "api/v1/metrics/latency/": api(SUPERVISOR_READ),
    "api/v1/metrics/latency/export/": api(SUPERVISOR_READ),
    "api/v1/metrics/breaches/": api(SUPERVISOR_READ),
    "api/v1/metrics/staffing/": api(SUPERVISOR_READ),
    "api/v1/metrics/wall/": api(SUPERVISOR_READ),
    "api/v1/tickets/<int:ticket_id>/evidence/": api(
        api_read(everyone=API_ROLE, legal=ok(200), supervisor=ok(200)), args=T1
    ),
    "api/v1/screen/": api(
        Call("POST", expect("api", desk=ok(200), non_desk=API_ROLE), data={"text": "hello"})
    ),
    "api/v1/reviews/": api(api_read(everyone=API_ROLE, legal=ok(200), supervisor=ok(200))),
    "api/v1/templates/": api(
        DESK_READ,
        Call(
            "POST",
            expect("api", everyone=API_ROLE, legal=ok(201), supervisor=ok(201)),
            data={"name": "Sweep", "body": "Hello there."},
        ),
    ),
    "api/v1/templates/candidates/": api(
        api_read(everyone=API_ROLE, legal=ok(200), supervisor=ok(200))
    ),
    "api/v1/templates/slot-choices/": api(DESK_READ),
    "api/v1/templates/<int:template_id>/": api(
        # A draft is legal's business: agents cannot even see it.
        api_read(
            non_desk=API_ROLE,
            agents=refused(404, code="not_found"),
            legal=ok(200),
            supervisor=ok(200),
        ),
        Call(
            "PATCH",
            expect("api", everyone=API_ROLE, legal=ok(200), supervisor=ok(200)),
            data={"body": "Hello again."},
        ),
        args=TPL,
    ),
    "api/v1/templates/<int:template_id>/approve/": api(
        Call("POST", expect("api", everyone=API_ROLE, legal=ok(200)), data={}), args=TPL
    ),
    "api/v1/templates/<int:template_id>/retire/": api(
        # Nothing approved to retire: legal hears why; nobody else gets that far.
        Call(
            "POST",
            expect("api", everyone=API_ROLE, legal=refused(409, code="not_approved")),
            data={},
        ),
        args=TPL,
    ),
    "api/v1/policy/": api(DESK_READ),
}


# ---- the URL patterns -------------------------------------------------------------------


def _patterns(resolver=None, prefix: str = "") -> list[tuple[str, URLPattern]]:
    resolver = resolver or get_resolver()
    found = []
    for item in resolver.url_patterns:
        if isinstance(item, URLResolver):
            found.extend(_patterns(item, prefix + str(item.pattern)))
        else:
            found.append((prefix + str(item.pattern), item))
    return found


def _project_routes() -> set[str]:
    return {route for route, _ in _patterns() if not route.startswith("admin/")}


def _admin_routes() -> list[str]:
    return sorted(route for route, _ in _patterns() if route.startswith("admin/"))


def test_every_url_pattern_is_classified_by_the_sweep():
    routes = _project_routes()

    assert sorted(routes - set(ROUTES)) == [], "new URL patterns: classify them in ROUTES"
    assert sorted(set(ROUTES) - routes) == [], "patterns in ROUTES that no longer exist"
    # Everything else belongs to the admin site, swept below.
    assert all(route.startswith("admin/") for route, _ in _patterns() if route not in ROUTES)


# ---- the world every request meets ----------------------------------------------------------


@dataclass
class World:
    users: dict
    ids: dict

    def user(self, role: str):
        return self.users.get(role)


def _post(channel, number: int, text: str):
    return mention_ingest(
        channel=channel,
        external_id=f"sweep-post-{number}",
        author={"external_id": f"sweep-c-{number}", "handle": f"cust{number}", "display_name": "C"},
        text=text,
        url=f"https://simulated.invalid/p/{number}",
        posted_at=timezone.now() - timedelta(minutes=2),
    ).ticket


@pytest.fixture
def world(db) -> World:
    channel = ChannelFactory()
    users = {
        "agent": UserFactory(username="alice", roles=["agent"]),
        "agent2": UserFactory(username="bob", roles=["agent"]),
        "legal": UserFactory(username="lena", roles=["legal"]),
        "supervisor": UserFactory(username="sue", roles=["supervisor"]),
        "admin": UserFactory(username="ada", roles=["admin"], is_staff=True),
        "integration": UserFactory(username="feed", roles=["integration"]),
        "outsider": UserFactory(username="oscar"),
    }
    alice = users["agent"]
    t_open = _post(channel, 1, "@NorthwindBank the app keeps logging me out")
    t1 = _post(channel, 2, "@NorthwindBank my card was declined twice")
    ticket_claim(ticket_id=t1.pk, actor=alice)
    r1 = reply_create(ticket_id=t1.pk, actor=alice, body="Sorry about that! Please DM us.")
    t2 = _post(channel, 3, LENDING)
    ticket_claim(ticket_id=t2.pk, actor=alice)
    r2 = reply_create(ticket_id=t2.pk, actor=alice, body=ANSWER)
    reply_submit(reply_id=r2.pk, actor=alice)
    t3 = _post(channel, 4, "@NorthwindBank is the branch open on Sunday?")
    ticket_claim(ticket_id=t3.pk, actor=alice)
    tpl = template_services.template_create(
        actor=users["supervisor"], name="Branch hours", body="Hi {first_name}, we open at 9."
    )
    policy = PolicyVersion.objects.get(state=PolicyState.ACTIVE)
    ids = {
        "t_open": t_open.pk,
        "t1": t1.pk,
        "t2": t2.pk,
        "t3": t3.pk,
        "r1": r1.pk,
        "r2": r2.pk,
        "tpl": tpl.template_id,
        "policy": policy.number,
        **{role: user.pk for role, user in users.items()},
    }
    return World(users=users, ids=ids)


def snapshot() -> tuple:
    """What a refused request must leave as it was."""
    return (
        list(
            Ticket.objects.order_by("pk").values_list(
                "pk", "state", "assignee_id", "regulated", "regulated_by_id", "close_reason"
            )
        ),
        list(
            Reply.objects.order_by("pk").values_list(
                "pk", "state", "kind", "body", "body_sha256", "revision", "author_id"
            )
        ),
        list(LegalReview.objects.order_by("pk").values_list("pk", "decision", "reviewer_id")),
        list(
            TemplateVersion.objects.order_by("pk").values_list(
                "pk", "state", "body", "approved_by_id", "editor_ids"
            )
        ),
        ResponseTemplate.objects.count(),
        list(PolicyVersion.objects.order_by("pk").values_list("pk", "state", "note")),
        TicketInvitation.objects.count(),
        TicketNote.objects.count(),
        Mention.objects.count(),
        AuditEvent.objects.count(),
    )


def _url(route: str, args: dict[str, str], world: World) -> str:
    path = route
    for name, ref in args.items():
        path = re.sub(rf"<(?:\w+:)?{name}>", str(world.ids[ref]), path)
    assert "<" not in path, path
    return "/" + path


def _data(call: Call, world: World) -> dict | None:
    data = call.data(world) if callable(call.data) else call.data
    if data is None:
        return None
    # Form values naming a world object (a user, a template) become its id.
    return {
        key: world.ids.get(value, value) if isinstance(value, str) else value
        for key, value in data.items()
    }


class Clients:
    """One logged-in browser (pages) and one token client (API) per role."""

    def __init__(self, world: World):
        self.browsers: dict[str, Client] = {}
        self.tokens = {}
        for role in ROLES:
            user = world.user(role)
            browser = Client()
            if user is not None:
                browser.force_login(user)
            self.browsers[role] = browser
            self.tokens[role] = client_for(user)

    def send(self, kind: str, role: str, method: str, url: str, data):
        if kind == "api":
            client = self.tokens[role]
            if method == "GET":
                return client.get(url, data)
            return getattr(client, method.lower())(url, data, format="json")
        browser = self.browsers[role]
        cookies = copy.deepcopy(browser.cookies)  # logging out must not log the role out
        try:
            if method == "GET":
                return browser.get(url, data)
            return getattr(browser, method.lower())(url, data or {})
        finally:
            browser.cookies = cookies


def _check(response, outcome: Outcome, kind: str, where: str) -> None:
    assert response.status_code < 500, f"{where}: {response.status_code}"
    assert response.status_code in outcome.statuses, (
        f"{where}: {response.status_code}, expected {sorted(outcome.statuses)}: "
        f"{response.content[:300]!r}"
    )
    if outcome.login:
        assert response["Location"].startswith("/login/?next="), where
    if kind == "api" and response.status_code >= 400:
        assert response["Content-Type"].startswith("application/json"), where
        body = response.json()
        assert "code" in body, f"{where}: no JSON code in {body}"
        if outcome.code is not None:
            assert body["code"] == outcome.code, f"{where}: {body}"


def _sweep(route_name: str, route: Route, world: World, clients: Clients) -> int:
    url = _url(route_name, route.args, world)
    calls = list(route.calls)
    for method in route.refuses:
        if route.kind == "api":
            calls.append(Call(method, expect("api", everyone=API_405), data={}))
        else:
            calls.append(
                Call(method, expect("page", anonymous=PAGE_405, everyone=PAGE_405), data={})
            )
    sent = 0
    for call in calls:
        for role in ROLES:
            outcome = call.outcomes[role]
            where = f"{call.method} {url} as {role}"
            with transaction.atomic():
                before = snapshot() if outcome.unchanged and call.method != "GET" else None
                data = _data(call, world) if call.method != "GET" else None
                response = clients.send(route.kind, role, call.method, url, data)
                _check(response, outcome, route.kind, where)
                if before is not None:
                    assert snapshot() == before, f"{where} changed stored objects"
                transaction.set_rollback(True)
            sent += 1
    return sent


@pytest.mark.parametrize("route_name", sorted(ROUTES))
def test_each_role_gets_what_the_design_promises(route_name, world):
    route = ROUTES[route_name]
    sent = _sweep(route_name, route, world, Clients(world))

    assert sent >= len(ROLES)


# ---- the admin site ---------------------------------------------------------------------------


def _admin_url(route: str, world: World) -> str:
    """A concrete URL for an admin pattern: an existing object of its model if any."""
    match = re.match(r"admin/(\w+)/(\w+)/", route)
    object_id = "1"
    if match and "<" in route:
        model = ContentType.objects.get_by_natural_key(*match.groups()).model_class()
        first = model.objects.order_by("pk").values_list("pk", flat=True).first()
        object_id = str(first or 1)
    if route.startswith("admin/r/"):
        content_type = ContentType.objects.get_for_model(Ticket)
        return f"/admin/r/{content_type.pk}/{world.ids['t1']}/"
    return "/" + re.sub(r"<(?:\w+:)?\w+>", object_id, route)


ADMIN_OPEN = {"admin/login/", "admin/logout/"}


def test_the_admin_site_lets_in_only_staff_and_never_fails(world):
    """Anonymous and desk users (not staff) are sent to the admin's login from every
    admin URL, whatever the method, and nothing changes; the staff admin's pages answer
    without a 500."""
    clients = Clients(world)
    routes = _admin_routes()
    assert len(routes) > 50  # every registered model's views are here

    for route in routes:
        url = _admin_url(route, world)
        for role in ("anonymous", "agent"):  # the desk's roles are not staff
            for method in ("GET", "POST"):
                if route in ADMIN_OPEN:
                    continue
                with transaction.atomic():
                    before = snapshot() if method == "POST" else None
                    response = clients.send(
                        "page", role, method, url, {} if method == "POST" else None
                    )
                    where = f"{method} {url} as {role}"
                    assert response.status_code == 302, f"{where}: {response.status_code}"
                    assert response["Location"].startswith("/admin/login/"), where
                    if before is not None:
                        assert snapshot() == before, f"{where} changed stored objects"
                    transaction.set_rollback(True)
        with transaction.atomic():
            response = clients.send("page", "admin", "GET", url, None)
            assert response.status_code in (200, 302, 403, 404, 405), f"GET {url} as admin"
            transaction.set_rollback(True)


# ---- objects that do not exist ------------------------------------------------------------


@pytest.mark.parametrize("route_name", sorted(name for name in ROUTES if "<int:" in name))
def test_an_id_that_does_not_exist_is_a_404_or_a_403_never_a_500(route_name, world):
    route = ROUTES[route_name]
    clients = Clients(world)
    url = "/" + re.sub(r"<int:\w+>", "999999", route_name)

    for call in route.calls:
        for role in ROLES:
            where = f"{call.method} {url} as {role}"
            with transaction.atomic():
                before = snapshot() if call.method != "GET" else None
                data = _data(call, world) if call.method != "GET" else None
                response = clients.send(route.kind, role, call.method, url, data)
                if role == "anonymous":
                    expected = {401} if route.kind == "api" else {302}
                elif route.kind == "api" or call.method == "GET":
                    expected = {403, 404}
                else:
                    expected = {302, 403, 404}  # a page may say "No such ticket" and go back
                assert response.status_code in expected, f"{where}: {response.status_code}"
                if route.kind == "api" and role != "anonymous":
                    assert response.json()["code"] in ("role_required", "not_found") or (
                        response.json()["code"].endswith("_not_found")
                    ), where
                if before is not None:
                    assert snapshot() == before, f"{where} changed stored objects"
                transaction.set_rollback(True)


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("/api/v1/tickets/999999/", "ticket_not_found"),
        ("/api/v1/replies/999999/", "reply_not_found"),
        ("/api/v1/templates/999999/", "not_found"),
    ],
)
def test_the_desk_gets_a_404_with_its_code_for_a_missing_object(url, code, world):
    for role in ("agent", "legal", "supervisor"):
        response = client_for(world.user(role)).get(url)

        assert response.status_code == 404
        assert response.json()["code"] == code


def test_a_token_that_is_not_ours_is_a_401_with_a_code(world):
    client = client_for(None)
    client.credentials(HTTP_AUTHORIZATION="Token " + "f" * 40)

    response = client.get("/api/v1/tickets/")

    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


def test_metrics_with_a_token_set_refuse_anyone_without_it(world, settings):
    settings.METRICS_TOKEN = "scrape-me-7f3a"

    anonymous = Client().get("/metrics")
    agent = Clients(world).browsers["agent"].get("/metrics")
    scraper = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me-7f3a")

    assert (anonymous.status_code, anonymous.json()["code"]) == (401, "not_authenticated")
    assert agent.status_code == 401  # a desk login is not the scraper's token
    assert scraper.status_code == 200


# ---- what each role may read of a ticket ------------------------------------------------------

CARD = "4111 1111 1111 1111"


def test_a_card_number_edited_out_of_a_post_stays_masked_in_its_history(world):
    """The post's earlier text is shown in full only to the assignee, legal and
    supervisors — on the API as on the page (it used to be sent to every agent)."""
    from connectors.models import ChannelAccount
    from tickets.services import mention_edit

    channel = ChannelAccount.objects.get(name="sim")
    ticket = _post(channel, 50, f"@NorthwindBank card {CARD} was charged twice")
    ticket_claim(ticket_id=ticket.pk, actor=world.user("agent"))
    mention_edit(channel=channel, external_id="sweep-post-50", text="my card was charged twice")

    def history(role):
        response = client_for(world.user(role)).get(f"/api/v1/tickets/{ticket.pk}/")
        assert response.status_code == 200
        return [entry["text"] for entry in response.json()["thread"][0]["edit_history"]]

    assert history("agent2") == ["@NorthwindBank card [••••••••••••1111] was charged twice"]
    for role in ("agent", "legal", "supervisor"):
        assert history(role) == [f"@NorthwindBank card {CARD} was charged twice"]


def test_an_invited_colleague_drafts_through_the_api_and_is_told_so(world):
    """README: the reply endpoint takes the assignee or an invited colleague. The draft
    used to be stored while the answer said 403."""
    from tickets.services.collab import ticket_invite

    outsider = world.user("outsider")
    ticket_invite(
        ticket_id=world.ids["t3"], actor=world.user("agent"), invitee_id=outsider.pk, role="draft"
    )
    client = client_for(outsider)

    created = client.post(
        f"/api/v1/tickets/{world.ids['t3']}/replies/", {"body": "Draft by Oscar."}, format="json"
    )
    edited = client.patch(
        f"/api/v1/replies/{created.json()['id']}/", {"body": "Draft by Oscar, v2."}, format="json"
    )
    submitted = client.post(f"/api/v1/replies/{created.json()['id']}/submit/")
    sent = client.post(f"/api/v1/replies/{created.json()['id']}/send/")
    other_reply = client.get(f"/api/v1/replies/{world.ids['r1']}/")

    assert created.status_code == 201
    assert created.json()["author"] == "oscar"
    assert edited.status_code == 200 and edited.json()["revision"] == 2
    # Drafting only: submitting and sending stay the assignee's.
    assert (submitted.status_code, submitted.json()["code"]) == (403, "role_required")
    assert (sent.status_code, sent.json()["code"]) == (403, "role_required")
    assert Reply.objects.get(pk=created.json()["id"]).state == "draft"
    # Another ticket's reply stays out of reach.
    assert other_reply.status_code == 403


def test_a_colleague_who_was_not_invited_cannot_read_a_reply_or_learn_it_exists(world):
    client = client_for(world.user("outsider"))

    existing = client.get(f"/api/v1/replies/{world.ids['r1']}/")
    missing = client.get("/api/v1/replies/999999/")

    assert (existing.status_code, existing.json()["code"]) == (403, "role_required")
    assert (missing.status_code, missing.json()["code"]) == (403, "role_required")


def test_a_role_that_may_never_claim_learns_nothing_of_the_tickets_state(world):
    """403 whatever the state (it used to be 409 naming the state for a ticket already
    taken, 403 for an open one)."""
    for ticket in ("t_open", "t1", "t2"):
        for role in ("legal", "admin", "integration", "outsider"):
            response = client_for(world.user(role)).post(
                f"/api/v1/tickets/{world.ids[ticket]}/claim/"
            )

            assert response.status_code == 403, (ticket, role)
            assert response.json() == {
                "code": "role_required",
                "message": "Your role does not allow 'claim' on a ticket.",
            }
    assert Ticket.objects.get(pk=world.ids["t_open"]).state == "open"


# ---- mass assignment ----------------------------------------------------------------------

# Fields no request may set: state, who did what, hashes, ids, links, timestamps.
LONG_AGO = "2001-01-01T00:00:00Z"


def junk(world: World, *, keep: tuple[str, ...] = ()) -> dict:
    fields = {
        "id": 987654,
        "pk": 987654,
        "state": "sent",
        "kind": "holding",
        "decision": "approved",
        "regulated": False,
        "regulated_by": world.ids["agent2"],
        "regulated_reasons": [],
        "assignee": world.ids["agent2"],
        "author": world.ids["agent2"],
        "reviewer": world.ids["agent2"],
        "created_by": world.ids["agent2"],
        "approved_by": world.ids["agent2"],
        "editor_ids": [],
        "approved_hash": "0" * 64,
        "body_sha256": "0" * 64,
        "revision": 42,
        "number": 42,
        "ticket": world.ids["t_open"],
        "template_version": 1,
        "reviews": [{"decision": "approved", "reviewer": world.ids["legal"]}],
        "external_id": "forged-1",
        "external_url": "https://evil.example/x",
        "priority": "urgent",
        "deadline": "2099-01-01T00:00:00Z",
        "claimed_at": LONG_AGO,
        "approved_at": LONG_AGO,
        "closed_at": LONG_AGO,
        "close_reason": "forged",
        "sent_at": LONG_AGO,
        "retired_at": LONG_AGO,
        "received_at": LONG_AGO,
        "created_at": LONG_AGO,
        "updated_at": LONG_AGO,
    }
    return {key: value for key, value in fields.items() if key not in keep}


def _recent(moment) -> bool:
    return moment is not None and timezone.now() - moment < timedelta(minutes=5)


def _sha(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


MASS: dict[str, object] = {}


def mass(route: str):
    def register(check):
        MASS[route] = check
        return check

    return register


def _as(world: World, role: str):
    return client_for(world.user(role))


@mass("api/v1/mentions/")
def _mentions(world):
    payload = {**junk(world), **_mention(world), "external_id": "mass-1", "text": LENDING}
    clean = {**_mention(world), "external_id": "mass-2", "text": LENDING}
    clean["author"] = {"external_id": "c-clean", "handle": "clean"}
    client = _as(world, "integration")

    response = client.post("/api/v1/mentions/", payload, format="json")
    control = client.post("/api/v1/mentions/", clean, format="json")

    assert (response.status_code, control.status_code) == (201, 201)
    mention = Mention.objects.get(external_id="mass-1")
    ticket, twin = mention.ticket, Mention.objects.get(external_id="mass-2").ticket
    assert mention.pk != 987654 and ticket.pk not in (987654, world.ids["t_open"])
    assert _recent(mention.received_at)
    assert (ticket.state, ticket.assignee_id, ticket.regulated) == ("open", None, True)
    # Triage and the window decide, as for the same post sent without the extras.
    assert (ticket.priority, ticket.deadline - ticket.posted_at) == (
        twin.priority,
        twin.deadline - twin.posted_at,
    )


@mass("api/v1/tickets/<int:ticket_id>/claim/")
def _claim(world):
    url = f"/api/v1/tickets/{world.ids['t_open']}/claim/"
    response = _as(world, "agent").post(url, junk(world), format="json")

    assert response.status_code == 200
    ticket = Ticket.objects.get(pk=world.ids["t_open"])
    assert (ticket.state, ticket.assignee_id) == ("in_progress", world.ids["agent"])
    assert _recent(ticket.claimed_at)


def _finish(world, action: str, ticket: str, state: str):
    url = f"/api/v1/tickets/{world.ids[ticket]}/{action}/"
    response = _as(world, "agent").post(url, {**junk(world), **REASON}, format="json")

    assert response.status_code == 200
    stored = Ticket.objects.get(pk=world.ids[ticket])
    assert (stored.state, stored.assignee_id) == (state, world.ids["agent"])
    assert stored.close_reason == REASON["reason"]
    assert _recent(stored.closed_at)


@mass("api/v1/tickets/<int:ticket_id>/close/")
def _close(world):
    _finish(world, "close", "t1", "closed")


@mass("api/v1/tickets/<int:ticket_id>/ignore/")
def _ignore(world):
    _finish(world, "ignore", "t3", "ignored")


@mass("api/v1/tickets/<int:ticket_id>/flag-regulated/")
def _flag(world):
    url = f"/api/v1/tickets/{world.ids['t1']}/flag-regulated/"
    response = _as(world, "agent2").post(url, {**junk(world), **REASON}, format="json")

    assert response.status_code == 200
    ticket = Ticket.objects.get(pk=world.ids["t1"])
    assert (ticket.regulated, ticket.regulated_by_id) == (True, world.ids["agent2"])
    assert [reason["match"] for reason in ticket.regulated_reasons] == [REASON["reason"]]


@mass("api/v1/tickets/<int:ticket_id>/clear-regulated/")
def _clear(world):
    url = f"/api/v1/tickets/{world.ids['t2']}/clear-regulated/"
    payload = {**junk(world), **REASON, "regulated": True, "regulated_reasons": [{"rule": "x"}]}
    response = _as(world, "legal").post(url, payload, format="json")

    assert response.status_code == 200
    ticket = Ticket.objects.get(pk=world.ids["t2"])
    assert (ticket.regulated, ticket.regulated_reasons, ticket.regulated_by_id) == (False, [], None)


@mass("api/v1/tickets/<int:ticket_id>/replies/")
def _reply_create(world):
    url = f"/api/v1/tickets/{world.ids['t3']}/replies/"
    body = "We are looking into it."
    response = _as(world, "agent").post(url, {**junk(world), "body": body}, format="json")

    assert response.status_code == 201
    reply = Reply.objects.get(pk=response.json()["id"])
    assert reply.pk != 987654
    assert (reply.ticket_id, reply.author_id) == (world.ids["t3"], world.ids["agent"])
    assert (reply.state, reply.kind, reply.revision) == ("draft", "answer", 1)
    assert (reply.body, reply.body_sha256) == (body, _sha(body))
    assert (reply.template_version_id, reply.external_id, reply.sent_at) == (None, "", None)
    assert not LegalReview.objects.filter(reply=reply).exists()


@mass("api/v1/tickets/<int:ticket_id>/holding-reply/")
def _holding(world):
    version = template_services.template_create(
        actor=world.user("supervisor"),
        name="Holding",
        body="Thanks {handle}, a specialist is checking and will reply here shortly.",
        purpose=TemplatePurpose.HOLDING,
    )
    template_services.template_approve(template_id=version.template_id, actor=world.user("legal"))
    url = f"/api/v1/tickets/{world.ids['t2']}/holding-reply/"
    payload = {
        **junk(world),
        "template": version.template_id,
        "body": "Our rate is 0% APR for you!",
        "kind": "answer",
    }
    response = _as(world, "agent").post(url, payload, format="json")

    assert response.status_code == 202
    reply = Reply.objects.get(pk=response.json()["id"])
    assert (reply.kind, reply.author_id) == ("holding", world.ids["agent"])
    assert reply.body == "Thanks @cust3, a specialist is checking and will reply here shortly."
    assert reply.template_version_id == version.pk
    assert reply.external_id != "forged-1"


@mass("api/v1/replies/<int:reply_id>/")
def _reply_update(world):
    body = "Edited text."
    response = _as(world, "agent").patch(
        f"/api/v1/replies/{world.ids['r1']}/", {**junk(world), "body": body}, format="json"
    )

    assert response.status_code == 200
    reply = Reply.objects.get(pk=world.ids["r1"])
    assert (reply.state, reply.kind, reply.revision) == ("draft", "answer", 2)
    assert (reply.ticket_id, reply.author_id) == (world.ids["t1"], world.ids["agent"])
    assert reply.body_sha256 == _sha(body)


@mass("api/v1/replies/<int:reply_id>/submit/")
def _submit(world):
    url = f"/api/v1/replies/{world.ids['r1']}/submit/"
    response = _as(world, "agent").post(url, junk(world), format="json")

    assert response.status_code == 200
    assert Reply.objects.get(pk=world.ids["r1"]).state == "in_review"
    assert Ticket.objects.get(pk=world.ids["t1"]).state == "in_legal_review"
    assert not LegalReview.objects.filter(reply_id=world.ids["r1"]).exists()


@mass("api/v1/replies/<int:reply_id>/send/")
def _send(world):
    url = f"/api/v1/replies/{world.ids['r1']}/send/"
    response = _as(world, "agent").post(url, junk(world), format="json")

    assert response.status_code == 202
    reply = Reply.objects.get(pk=world.ids["r1"])
    assert reply.state == "sent"  # published by the simulated platform, on commit
    assert reply.external_id not in ("", "forged-1")
    assert reply.external_url != "https://evil.example/x"
    assert _recent(reply.sent_at)


def _review(world, action: str, decision: str, reply_state: str):
    url = f"/api/v1/replies/{world.ids['r2']}/{action}/"
    payload = {**junk(world), "comment": "looked at", "decision": "other"}
    response = _as(world, "legal").post(url, payload, format="json")

    assert response.status_code == 200
    reply = Reply.objects.get(pk=world.ids["r2"])
    (review,) = LegalReview.objects.filter(reply=reply)
    assert (review.decision, review.reviewer_id) == (decision, world.ids["legal"])
    assert (review.body_sha256, review.revision) == (reply.body_sha256, reply.revision)
    assert reply.body_sha256 == _sha(ANSWER)
    assert reply.state == reply_state


@mass("api/v1/replies/<int:reply_id>/approve/")
def _approve(world):
    _review(world, "approve", "approved", "approved")


@mass("api/v1/replies/<int:reply_id>/request-changes/")
def _request_changes(world):
    _review(world, "request-changes", "changes_requested", "draft")


@mass("api/v1/templates/")
def _template_create(world):
    payload = {**junk(world), "name": "Opening hours", "body": "We open at 9."}
    response = _as(world, "supervisor").post("/api/v1/templates/", payload, format="json")

    assert response.status_code == 201
    template = ResponseTemplate.objects.get(name="Opening hours")
    (version,) = template.versions.all()
    assert template.pk != 987654 and template.created_by_id == world.ids["supervisor"]
    assert (version.state, version.number, version.approved_by_id) == ("draft", 1, None)
    assert (version.created_by_id, version.editor_ids) == (
        world.ids["supervisor"],
        [world.ids["supervisor"]],
    )
    assert version.approved_at is None


@mass("api/v1/templates/<int:template_id>/")
def _template_update(world):
    url = f"/api/v1/templates/{world.ids['tpl']}/"
    response = _as(world, "legal").patch(
        url, {**junk(world), "body": "Hi, we open at 10."}, format="json"
    )

    assert response.status_code == 200
    (version,) = TemplateVersion.objects.filter(template_id=world.ids["tpl"])
    assert (version.state, version.number, version.approved_by_id) == ("draft", 1, None)
    assert version.editor_ids == [world.ids["supervisor"], world.ids["legal"]]
    assert version.created_by_id == world.ids["supervisor"]


@mass("api/v1/templates/<int:template_id>/approve/")
def _template_approve(world):
    url = f"/api/v1/templates/{world.ids['tpl']}/approve/"
    payload = {**junk(world), "body": "Changed at approval!", "comment": "fine"}
    response = _as(world, "legal").post(url, payload, format="json")

    assert response.status_code == 200
    (version,) = TemplateVersion.objects.filter(template_id=world.ids["tpl"])
    assert (version.state, version.approved_by_id, version.number) == (
        "approved",
        world.ids["legal"],
        1,
    )
    assert version.body == "Hi {first_name}, we open at 9."
    assert _recent(version.approved_at)


@mass("api/v1/templates/<int:template_id>/retire/")
def _template_retire(world):
    template_services.template_approve(template_id=world.ids["tpl"], actor=world.user("legal"))
    url = f"/api/v1/templates/{world.ids['tpl']}/retire/"
    response = _as(world, "legal").post(url, {**junk(world), "state": "approved"}, format="json")

    assert response.status_code == 200
    (version,) = TemplateVersion.objects.filter(template_id=world.ids["tpl"])
    assert version.state == "retired"
    assert _recent(version.retired_at)


# Writes nothing: the screening of a text is only answered.
NOTHING_STORED = {"api/v1/screen/"}


def test_every_writable_endpoint_is_tried_with_read_only_fields():
    writable = {
        name
        for name, route in ROUTES.items()
        if route.kind == "api" and any(call.method in ("POST", "PATCH") for call in route.calls)
    }

    assert sorted(writable - NOTHING_STORED - set(MASS)) == []
    assert sorted(set(MASS) - writable) == []


@pytest.mark.parametrize("route_name", sorted(MASS))
def test_read_only_fields_sent_to_a_writable_endpoint_are_never_stored(route_name, world):
    audit_before = AuditEvent.objects.count()

    MASS[route_name](world)

    assert AuditEvent.objects.count() > audit_before  # the request did its real work
