"""The applicants' pages. `pages:application` is an application's page: emails link to it."""

from django.contrib.auth import views as auth_views
from django.urls import path

from pages import views

app_name = "pages"

urlpatterns = [
    path("", views.home, name="home"),
    path("sign-in/", views.SignInView.as_view(), name="sign-in"),
    path("sign-out/", auth_views.LogoutView.as_view(next_page="pages:home"), name="sign-out"),
    path("settings/", views.settings_page, name="settings"),
    path("programs/", views.programs, name="programs"),
    path("apply/", views.apply, name="apply"),
    path("applications/", views.applications, name="applications"),
    path("applications/<uuid:application_id>/", views.application, name="application"),
    path(
        "applications/<uuid:application_id>/status/",
        views.application_status,
        name="application-status",
    ),
    path(
        "applications/<uuid:application_id>/submit/",
        views.application_submit,
        name="application-submit",
    ),
    path(
        "applications/<uuid:application_id>/withdraw/",
        views.application_withdraw,
        name="application-withdraw",
    ),
    path("allocations/", views.allocations, name="allocations"),
    path("tokens/", views.tokens, name="tokens"),
    path("tokens/<uuid:token_id>/revoke/", views.token_revoke, name="token-revoke"),
    path("invitations/", views.invitations, name="invitations"),
    path(
        "invitations/<uuid:invitation_id>/accept/",
        views.invitation_answer,
        {"answer": "accept"},
        name="invitation-accept",
    ),
    path(
        "invitations/<uuid:invitation_id>/decline/",
        views.invitation_answer,
        {"answer": "decline"},
        name="invitation-decline",
    ),
    path("organizations/<uuid:organization_id>/", views.organization, name="organization"),
    path(
        "organizations/<uuid:organization_id>/members/<uuid:user_id>/remove/",
        views.member_remove,
        name="member-remove",
    ),
    path(
        "organizations/<uuid:organization_id>/invitations/<uuid:invitation_id>/revoke/",
        views.invitation_revoke,
        name="invitation-revoke",
    ),
]
