from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from rest_framework.authtoken.models import Token

from connectors.models import ChannelAccount
from servicedesk.roles import ADMIN, AGENT, LEGAL, SUPERVISOR

DEMO_USERS = [
    ("agent", AGENT, "Alex Agent"),
    ("agent2", AGENT, "Sam Second"),
    ("lawyer", LEGAL, "Lee Lawyer"),
    ("lawyer2", LEGAL, "Robin Counsel"),
    ("supervisor", SUPERVISOR, "Pat Supervisor"),
    ("admin", ADMIN, "Ada Admin"),
]


DEMO_BRANCHES = [
    ("Harbor Street", "1-800-555-0142", "100 Harbor Street"),
    ("Riverside", "1-800-555-0143", "2 River Road"),
    ("Hillcrest", "1-800-555-0144", "48 Hill Avenue"),
]
DEMO_PRODUCTS = ["Everyday Checking", "Cashback Card", "Home Equity Line", "Auto Loan"]
DEMO_TEMPLATES = [
    (
        "Holding: legal check",
        "holding",
        "Thanks {first_name} — a specialist is checking this and will reply here shortly.",
    ),
    (
        "Move to DM: personal data",
        "move_to_dm",
        "Hi {first_name}, please delete your post: it shows personal details. Send us a "
        "direct message and we'll help from there.",
    ),
    (
        "Mortgage rates: see the rate page",
        "answer",
        "Hi {first_name}! Mortgage rates change daily, so we don't quote them here. Today's "
        "rates and the full terms are at {url}, or call {phone}.",
    ),
    (
        "Visit a branch",
        "answer",
        "Hi {first_name}, the {branch} branch can help with this in person — call them on "
        "{phone} to book a time.",
    ),
]


class Command(BaseCommand):
    help = "Create demo users (password = user name) and the simulated channel. DEBUG only."

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError(
                "seed_demo creates users with known passwords: it runs only with DEBUG on."
            )
        User = get_user_model()
        for username, role, full_name in DEMO_USERS:
            first, last = full_name.split(" ", 1)
            user, _ = User.objects.get_or_create(
                username=username, defaults={"first_name": first, "last_name": last}
            )
            user.set_password(username)
            user.is_staff = role in (ADMIN, SUPERVISOR, LEGAL)
            user.is_superuser = role == ADMIN
            user.save()
            user.groups.add(Group.objects.get(name=role))
            token, _ = Token.objects.get_or_create(user=user)
            self.stdout.write(
                f"  {username:<11} role={role:<11} password={username:<11} token={token.key}"
            )
        ChannelAccount.objects.get_or_create(
            name="sim",
            defaults={"platform": "simulated", "display_name": "@NorthwindBank (simulated)"},
        )
        self._seed_templates()
        self.stdout.write(
            self.style.SUCCESS(
                "Demo users, branches, products, approved templates and the simulated "
                "channel 'sim' are ready."
            )
        )

    def _seed_templates(self) -> None:
        """Branches, products and a few templates approved by the second lawyer."""
        from approvals import template_services
        from approvals.models import Branch, Product, ResponseTemplate

        for name, phone, address in DEMO_BRANCHES:
            Branch.objects.get_or_create(name=name, defaults={"phone": phone, "address": address})
        for name in DEMO_PRODUCTS:
            Product.objects.get_or_create(name=name)
        User = get_user_model()
        author, approver = User.objects.get(username="lawyer"), User.objects.get(username="lawyer2")
        for name, purpose, body in DEMO_TEMPLATES:
            if ResponseTemplate.objects.filter(name=name).exists():
                continue
            version = template_services.template_create(
                actor=author, name=name, body=body, purpose=purpose
            )
            template_services.template_approve(template_id=version.template_id, actor=approver)
