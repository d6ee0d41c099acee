from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.permissions import AllowAny

from allocations.admin_reports import capacity_chart_view
from portal import errors, observability, views

docs = {"permission_classes": [AllowAny], "authentication_classes": []}

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", observability.metrics, name="metrics"),
    path(
        "admin/capacity/",
        admin.site.admin_view(capacity_chart_view),
        name="admin-capacity-chart",
    ),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(**docs), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema", **docs), name="swagger-ui"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema", **docs), name="redoc"),
    path("api/v1/", views.ApiRootView.as_view(), name="api-root"),
    path("api/v1/", include("accounts.urls")),
    path("api/v1/", include("allocations.urls")),
    # Any other path under /api/ is the API's JSON 404, in DEBUG too.
    re_path(r"^api/", errors.api_not_found, name="api-not-found"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("pages.urls")),
]

if settings.PORTAL_OIDC_ENABLED:
    urlpatterns.insert(0, path("oidc/", include("mozilla_django_oidc.urls")))

handler400 = "portal.errors.handler400"
handler404 = "portal.errors.handler404"
handler500 = "portal.errors.handler500"
