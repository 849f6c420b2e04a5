from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from servicedesk import observability, two_factor, views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", observability.metrics, name="metrics"),
    path("account/2fa/", two_factor.two_factor, name="two-factor"),
    path("api/v1/", include("tickets.urls")),
    path("api/v1/", include("approvals.urls")),
    path("connectors/", include("connectors.urls")),
    path("legal/", include("approvals.web_urls")),
    path("", include("tickets.supervision_urls")),
    path("", include("tickets.web_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
]

handler404 = "servicedesk.views.not_found"
handler500 = "servicedesk.views.error"
