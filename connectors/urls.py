from django.urls import path

from connectors import views

urlpatterns = [
    path("x/webhook/", views.x_webhook, name="x-webhook"),
    path("meta/webhook/", views.meta_webhook, name="meta-webhook"),
    path("generic/webhook/", views.generic_webhook, name="generic-webhook"),
]
