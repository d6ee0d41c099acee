"""The applicants' pages: thin views over the same services and selectors as the API.

Every page is server-rendered; the application page polls its status fragment (htmx) while a
decision is pending. What a user may not see answers 404, as in the API.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts import selectors as account_selectors
from accounts import services as account_services
from accounts.authz import signed_in
from allocations.models import Application, ApplicationStatus
from allocations.selectors import demand as allocation_selectors
from allocations.services import applications as application_services
from pages import forms
from pages import selectors as queries
from portal.errors import DomainError

# The pages of signed-in users; anyone else is sent to sign in first.
sign_in_required = login_required(login_url="pages:sign-in")

PENDING = (ApplicationStatus.SUBMITTED, ApplicationStatus.IN_REVIEW, ApplicationStatus.WAITLISTED)


def home(request: HttpRequest) -> HttpResponse:
    """What the site offers and who may apply; a signed-in applicant's overview."""
    context: dict[str, Any] = {"offer": queries.site_offer()}
    if request.user.is_authenticated:
        user = signed_in(request)
        context["organizations"] = queries.memberships(user=user)
        context["invitations"] = list(account_selectors.invitation_list_for_invitee(user=user))
        context["recent"] = list(
            allocation_selectors.application_list_for_user(user=user).filter(
                organization__memberships__user=user
            )[:5]
        )
    return render(request, "pages/home.html", context)


class SignInView(auth_views.LoginView):
    """Password sign-in (the same lockout as the admin's); OpenID Connect where switched on."""

    template_name = "pages/sign_in.html"
    redirect_authenticated_user = True

    def get_success_url(self) -> str:
        return self.get_redirect_url() or "/"


@sign_in_required
def settings_page(request: HttpRequest) -> HttpResponse:
    user = signed_in(request)
    form = forms.SettingsForm(request.POST or None, instance=user)
    if request.method == "POST" and form.is_valid():
        form.save()
        language = user.language or translation.get_language_from_request(request)
        translation.activate(language)
        messages.success(request, _("Your settings are saved."))
        response = redirect("pages:settings")
        if user.language:
            response.set_cookie(settings.LANGUAGE_COOKIE_NAME, user.language)
        else:
            response.delete_cookie(settings.LANGUAGE_COOKIE_NAME)
        return response
    return render(request, "pages/settings.html", {"form": form})


def _rows_page(request: HttpRequest, template: str, rows_of: Callable[..., Any]) -> HttpResponse:
    """A page of the rows the user may see, as `rows_of(user=...)` answers them."""
    return render(request, template, {"rows": rows_of(user=signed_in(request))})


@sign_in_required
def programs(request: HttpRequest) -> HttpResponse:
    """The programs the user's organizations may apply to, with what each can still take."""
    return _rows_page(request, "pages/programs.html", queries.eligible_programs)


@sign_in_required
def apply(request: HttpRequest) -> HttpResponse:
    """A new application: saved as a draft and submitted in one step. What can never pass
    (over the program's maximum, a window too long or in the past, an organization the
    program does not take) is refused here, before anything is written."""
    user = signed_in(request)
    form = forms.ApplicationForm(request.POST or None, user=user, initial=request.GET.dict())
    if request.method == "POST" and form.is_valid():
        try:
            application = application_services.application_create(
                applicant=user, values=form.values()
            )
            if "save_draft" not in request.POST:
                application = application_services.application_submit(
                    application=application, actor=user
                )
        except DomainError as error:
            form.add_domain_error(error)
        else:
            return redirect("pages:application", application_id=application.pk)
    context = {
        "form": form,
        "rules": queries.program_rules(user=user),
        "apply_messages": {
            "over": str(forms.BOUND_MESSAGES["gpu_hours"]),
            "long": str(forms.BOUND_MESSAGES["end_date"]),
            "past": str(forms.BOUND_MESSAGES["start_date"]),
            "order": str(forms.ORDER_MESSAGE),
            "today": timezone.localdate().isoformat(),
        },
    }
    return render(request, "pages/apply.html", context)


@sign_in_required
def applications(request: HttpRequest) -> HttpResponse:
    user = signed_in(request)
    rows = queries.applications(user=user)
    return render(
        request,
        "pages/applications.html",
        {"rows": rows, "pending": any(row.application.status in PENDING for row in rows)},
    )


def _application(request: HttpRequest, application_id: UUID) -> Application:
    user = signed_in(request)
    application = allocation_selectors.application_get_for_user(
        user=user, application_id=application_id
    )
    return application


def _application_context(request: HttpRequest, application: Application) -> dict[str, Any]:
    return {
        "application": application,
        "position": queries.waitlist_position(application=application),
        "pending": application.status in PENDING,
        "can_withdraw": application.status in (ApplicationStatus.DRAFT, *PENDING),
        "can_submit": application.status == ApplicationStatus.DRAFT,
        "reasons": queries.reasons(application),
    }


@sign_in_required
def application(request: HttpRequest, application_id: UUID) -> HttpResponse:
    """An application: status, reasons, waitlist position; updates itself while pending."""
    found = _application(request, application_id)
    return render(request, "pages/application.html", _application_context(request, found))


@sign_in_required
def application_status(request: HttpRequest, application_id: UUID) -> HttpResponse:
    """The status part of the application page, polled by htmx while a decision is pending."""
    found = _application(request, application_id)
    return render(request, "pages/_application_status.html", _application_context(request, found))


@contextmanager
def _reported(request: HttpRequest, done: str | None = None) -> Iterator[None]:
    """Around a service call of a form's POST: its refusal is shown as an error, else `done`
    (if given) as a success; the caller redirects either way."""
    try:
        yield
    except DomainError as error:
        messages.error(request, error.message)
    else:
        if done is not None:
            messages.success(request, done)


@sign_in_required
@require_POST
def application_submit(request: HttpRequest, application_id: UUID) -> HttpResponse:
    found = _application(request, application_id)
    with _reported(request):
        application_services.application_submit(application=found, actor=signed_in(request))
    return redirect("pages:application", application_id=found.pk)


@sign_in_required
@require_POST
def application_withdraw(request: HttpRequest, application_id: UUID) -> HttpResponse:
    found = _application(request, application_id)
    with _reported(request, _("The application is withdrawn.")):
        application_services.application_withdraw(application=found, actor=signed_in(request))
    return redirect("pages:application", application_id=found.pk)


@sign_in_required
def allocations(request: HttpRequest) -> HttpResponse:
    return _rows_page(request, "pages/allocations.html", queries.allocations)


@sign_in_required
def tokens(request: HttpRequest) -> HttpResponse:
    """Personal access tokens for the `portal` tool and scripts: the secret is shown once."""
    user = signed_in(request)
    form = forms.TokenForm(request.POST or None)
    issued = None
    if request.method == "POST" and form.is_valid():
        try:
            issued = account_services.token_create(
                user=user,
                name=form.cleaned_data["name"],
                expires_in_days=form.cleaned_data["expires_in_days"],
            )
        except DomainError as error:
            form.add_error(None, error.message)
        else:
            form = forms.TokenForm()
    return render(
        request,
        "pages/tokens.html",
        {
            "form": form,
            "issued": issued,
            "tokens": account_selectors.token_list_for_user(user=user),
            "now": timezone.now(),
        },
    )


@sign_in_required
@require_POST
def token_revoke(request: HttpRequest, token_id: UUID) -> HttpResponse:
    user = signed_in(request)
    token = account_selectors.token_get_for_user(user=user, token_id=token_id)
    account_services.token_revoke(token=token, actor=user)
    messages.success(request, _("The token “%(name)s” is revoked.") % {"name": token.name})
    return redirect("pages:tokens")


@sign_in_required
def organization(request: HttpRequest, organization_id: UUID) -> HttpResponse:
    """An organization's members; its admins invite and remove them here."""
    user = signed_in(request)
    found = account_selectors.organization_get_for_user(user=user, organization_id=organization_id)
    is_admin = account_selectors.organization_is_admin(user=user, organization=found)
    form = forms.InvitationForm(request.POST or None)
    if request.method == "POST":
        if not is_admin:
            raise Http404
        if form.is_valid():
            try:
                account_services.invitation_create(
                    organization=found,
                    email=form.cleaned_data["email"],
                    role=form.cleaned_data["role"],
                    actor=user,
                )
            except DomainError as error:
                form.add_error("email", error.message)
            else:
                messages.success(
                    request,
                    _("%(email)s is invited; the invitation is mailed.")
                    % {"email": form.cleaned_data["email"]},
                )
                return redirect("pages:organization", organization_id=found.pk)
    context = {
        "organization": found,
        "is_admin": is_admin,
        "members": account_selectors.membership_list(organization=found),
        "invitations": account_selectors.invitation_list(organization=found) if is_admin else [],
        "form": form,
    }
    return render(request, "pages/organization.html", context)


@sign_in_required
@require_POST
def member_remove(request: HttpRequest, organization_id: UUID, user_id: UUID) -> HttpResponse:
    user = signed_in(request)
    found = account_selectors.organization_get_for_user(user=user, organization_id=organization_id)
    membership = account_selectors.membership_get(organization=found, user_id=user_id)
    with _reported(request, _("%(email)s is removed.") % {"email": membership.user.email}):
        account_services.membership_remove(membership=membership, actor=user)
    return redirect("pages:organization", organization_id=found.pk)


@sign_in_required
@require_POST
def invitation_revoke(
    request: HttpRequest, organization_id: UUID, invitation_id: UUID
) -> HttpResponse:
    user = signed_in(request)
    found = account_selectors.organization_get_for_user(user=user, organization_id=organization_id)
    invitation = account_selectors.invitation_get(organization=found, invitation_id=invitation_id)
    with _reported(request):
        account_services.invitation_revoke(invitation=invitation, actor=user)
    return redirect("pages:organization", organization_id=found.pk)


@sign_in_required
def invitations(request: HttpRequest) -> HttpResponse:
    """The invitations sent to the signed-in person's email that they can still answer."""
    user = signed_in(request)
    found = account_selectors.invitation_list_for_invitee(user=user).select_related("invited_by")
    return render(request, "pages/invitations.html", {"invitations": found})


@sign_in_required
@require_POST
def invitation_answer(request: HttpRequest, invitation_id: UUID, answer: str) -> HttpResponse:
    """Accept (the membership is made, with the invited role) or decline an invitation."""
    user = signed_in(request)
    invitation = account_selectors.invitation_get_for_invitee(
        user=user, invitation_id=invitation_id
    )
    name = invitation.organization.name
    try:
        if answer == "accept":
            account_services.invitation_accept(invitation=invitation, actor=user)
        else:
            account_services.invitation_decline(invitation=invitation, actor=user)
    except DomainError as error:
        messages.error(request, error.message)
        return redirect("pages:invitations")
    if answer == "accept":
        messages.success(request, _("You are now a member of %(name)s.") % {"name": name})
        return redirect("pages:organization", organization_id=invitation.organization_id)
    messages.success(request, _("You declined the invitation to %(name)s.") % {"name": name})
    return redirect("pages:invitations")
