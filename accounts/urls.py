from django.urls import path

from accounts import views

urlpatterns = [
    path("auth/token/", views.TokenObtainView.as_view(), name="auth-token"),
    path("me/", views.MeView.as_view(), name="me"),
    path("tokens/", views.TokenListView.as_view(), name="token-list"),
    path("tokens/<uuid:token_id>/", views.TokenDetailView.as_view(), name="token-detail"),
    path("organizations/", views.OrganizationListView.as_view(), name="organization-list"),
    path(
        "organizations/<uuid:organization_id>/",
        views.OrganizationDetailView.as_view(),
        name="organization-detail",
    ),
    path(
        "organizations/<uuid:organization_id>/verify/",
        views.OrganizationVerifyView.as_view(),
        name="organization-verify",
    ),
    path(
        "organizations/<uuid:organization_id>/members/",
        views.OrganizationMembersView.as_view(),
        name="organization-members",
    ),
    path(
        "organizations/<uuid:organization_id>/invitations/",
        views.OrganizationInvitationsView.as_view(),
        name="organization-invitations",
    ),
    path(
        "organizations/<uuid:organization_id>/invitations/<uuid:invitation_id>/revoke/",
        views.OrganizationInvitationRevokeView.as_view(),
        name="organization-invitation-revoke",
    ),
    path("invitations/", views.InvitationListView.as_view(), name="invitation-list"),
    path(
        "invitations/<uuid:invitation_id>/accept/",
        views.InvitationAcceptView.as_view(),
        name="invitation-accept",
    ),
    path(
        "invitations/<uuid:invitation_id>/decline/",
        views.InvitationDeclineView.as_view(),
        name="invitation-decline",
    ),
    path(
        "organizations/<uuid:organization_id>/members/<uuid:user_id>/",
        views.OrganizationMemberView.as_view(),
        name="organization-member",
    ),
    path(
        "scheduler-accounts/",
        views.SchedulerAccountListView.as_view(),
        name="scheduler-account-list",
    ),
    path(
        "scheduler-accounts/<uuid:account_id>/tokens/",
        views.SchedulerAccountTokenView.as_view(),
        name="scheduler-account-tokens",
    ),
]
