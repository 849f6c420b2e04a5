"""Factories with no hidden side effects: each makes exactly the rows it names."""

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from connectors.models import ChannelAccount


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw")

    @factory.post_generation
    def roles(self, create, extracted, **kwargs):
        for name in extracted or ():
            self.groups.add(Group.objects.get(name=name))


class ChannelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ChannelAccount
        django_get_or_create = ("name",)

    name = "sim"
    platform = "simulated"
    display_name = "@NorthwindBank (simulated)"
