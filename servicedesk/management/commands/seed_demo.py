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
            user.is_staff = role in (ADMIN, SUPERVISOR)
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
        self.stdout.write(
            self.style.SUCCESS("Demo users and the simulated channel 'sim' are ready.")
        )
