"""The admin of applications: the list, the review queue, the waitlist, and the page of one
application where a reviewer approves or rejects it beside the figures the decision depends
on (its days against what its program and pool can still take, its organization's quota).

Rows are read-only here; decisions go through the services (`application_approve`,
`application_reject`), which refuse anyone but a reviewer of the program who is no member of
the applying organization."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from accounts import authz
from accounts.authz import signed_in
from accounts.models import User
from allocations.charts import request_chart
from allocations.models import Application, ApplicationStatus
from allocations.models.demand import ReviewQueueItem, WaitlistItem
from allocations.reasons import message_of
from allocations.selectors.console import application_decision_context
from allocations.services import applications as services
from audit.models import AuditEvent
from portal.admin import ActionReport, ActionsOnlyAdmin, every_field
from portal.errors import DomainError

EVENTS_SHOWN = 10


def humanize_code(code: str) -> str:
    return code.replace("_", " ")


def reasons_html(reasons: list[dict[str, Any]]) -> SafeString:
    """Decision reasons as people read them: the message, its code, the day it concerns."""
    if not reasons:
        return format_html("<span>{}</span>", "–")
    items = format_html_join(
        "",
        '<li>{} <span class="quiet">({}{})</span></li>',
        (
            (
                message_of(reason),
                humanize_code(str(reason.get("code", ""))),
                f", {reason['day']}" if reason.get("day") else "",
            )
            for reason in reasons
        ),
    )
    return format_html('<ul class="reasons" style="margin:0;padding-left:1.2em">{}</ul>', items)


def age_against_target(application: Application) -> SafeString:
    """How long the application has waited since submission, against its program's target:
    red once past it."""
    if application.submitted_at is None:
        return format_html("{}", "–")
    waited = timezone.now() - application.submitted_at
    days = waited.total_seconds() / 86400
    target = application.program.turnaround_days
    late = waited > timedelta(days=target)
    return format_html(
        '<span title="submitted {}" style="white-space:nowrap;{}">{} of {} days</span>',
        f"{timezone.localtime(application.submitted_at):%Y-%m-%d %H:%M}",
        "color:#ba2121;font-weight:bold" if late else "",
        f"{days:.1f}",
        target,
    )


class DecisionForm(ActionForm):
    reason = forms.CharField(
        required=False, max_length=2000, help_text="Shown to the applicant with the decision."
    )


def _decide(
    admin_view: admin.ModelAdmin[Any],
    request: HttpRequest,
    queryset: QuerySet[Application],
    approve: bool,
) -> None:
    """Decide each selected application through the service."""
    if not request.user.has_perm("allocations.change_application"):
        raise PermissionDenied
    reason = (request.POST.get("reason") or "").strip()
    if not reason:
        admin_view.message_user(request, "Give a reason with the decision.", messages.ERROR)
        return
    decide = services.application_approve if approve else services.application_reject
    actor = signed_in(request)

    verb = "Approved" if approve else "Rejected"
    with ActionReport(admin_view, request, f"application(s) {verb.lower()}") as report:
        for application in queryset.select_related("program"):
            with report.row(application):
                decide(application=application, actor=actor, note=reason)
                admin_view.log_change(request, application, f"{verb}: {reason}")


@admin.action(description="Approve the selected applications (reviewers)", permissions=["change"])
def approve_selected(
    admin_view: admin.ModelAdmin[Any], request: HttpRequest, queryset: QuerySet[Application]
) -> None:
    _decide(admin_view, request, queryset, approve=True)


@admin.action(description="Reject the selected applications (reviewers)", permissions=["change"])
def reject_selected(
    admin_view: admin.ModelAdmin[Any], request: HttpRequest, queryset: QuerySet[Application]
) -> None:
    _decide(admin_view, request, queryset, approve=False)


class DecideForm(forms.Form):
    decision = forms.ChoiceField(choices=[("approve", "Approve"), ("reject", "Reject")])
    reason = forms.CharField(required=False, max_length=2000, strip=True)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("decision") == "reject" and not data.get("reason"):
            self.add_error("reason", "Say why: the applicant reads the reason.")
        return data


@admin.register(Application)
class ApplicationAdmin(ActionsOnlyAdmin):
    list_display = [
        "title",
        "organization",
        "program",
        "pool",
        "gpu_hours_shown",
        "start_date",
        "end_date",
        "status",
        "risk_category",
        "submitted_at",
        "decided_at",
    ]
    list_filter = ["status", "program", "pool", "kind", "risk_category", "data_stays_in_eea"]
    search_fields = ["title", "organization__name", "applicant__email", "model_lineage"]
    date_hierarchy = "submitted_at"
    list_select_related = ["organization", "program", "pool"]
    action_form = DecisionForm
    actions = [approve_selected, reject_selected]
    change_form_template = "admin/allocations/application/change_form.html"
    fieldsets = [
        (
            "Request",
            {
                "fields": [
                    "title",
                    "organization",
                    "applicant",
                    "program",
                    "pool",
                    "kind",
                    "allocation",
                    "gpu_hours_shown",
                    "start_date",
                    "end_date",
                    "summary",
                ]
            },
        ),
        (
            "AI use",
            {"fields": ["purpose", "risk_category", "data_stays_in_eea", "model_lineage"]},
        ),
        (
            "Decision",
            {
                "fields": [
                    "status",
                    "reasons_shown",
                    "failed_day",
                    "submitted_at",
                    "waiting",
                    "decided_at",
                    "decided_by",
                ]
            },
        ),
        (
            "Bookkeeping",
            {
                "classes": ["collapse"],
                "fields": [
                    "submission",
                    "holds_capacity",
                    "reserved_wh_per_gpu_hour",
                    "created_at",
                    "updated_at",
                ],
            },
        ),
    ]

    readonly_fields = every_field(Application, "gpu_hours_shown", "reasons_shown", "waiting")

    @admin.display(description="GPU-hours", ordering="gpu_hours")
    def gpu_hours_shown(self, application: Application) -> str:
        return f"{application.gpu_hours:,}"

    @admin.display(description="reasons")
    def reasons_shown(self, application: Application) -> SafeString:
        return reasons_html(application.reasons)

    @admin.display(description="waiting (against the program's target)")
    def waiting(self, application: Application) -> SafeString:
        if application.status not in (ApplicationStatus.IN_REVIEW, ApplicationStatus.WAITLISTED):
            return format_html("{}", "–")
        return age_against_target(application)

    # --- the decision on the application's page ---------------------------------------------

    def get_urls(self) -> list[Any]:
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "<path:object_id>/decide/",
                self.admin_site.admin_view(self.decide_view),
                name=f"{info[0]}_{info[1]}_decide",
            ),
            *super().get_urls(),
        ]

    def _may_decide(self, request: HttpRequest, application: Application) -> str | None:
        """None if the user may decide this application now, else why not."""
        if not request.user.has_perm("allocations.change_application"):
            return "Deciding needs the permission to change applications."
        try:
            authz.require_decider(actor=request.user, application=application)  # type: ignore[arg-type]
        except DomainError as error:
            return error.message
        return None

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        application = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if application is not None:
            application = Application.objects.select_related("program", "pool", "organization").get(
                pk=application.pk
            )
            decidable = application.status in (
                ApplicationStatus.IN_REVIEW,
                ApplicationStatus.WAITLISTED,
            )
            figures = application_decision_context(application=application)
            events = AuditEvent.objects.filter(target_id=application.pk).select_related("actor")
            context.update(
                decidable=decidable,
                may_approve=application.status == ApplicationStatus.IN_REVIEW,
                refusal=self._may_decide(request, application) if decidable else None,
                decide_url=reverse("admin:allocations_application_decide", args=[application.pk]),
                decide_form=DecideForm(),
                figures=figures,
                request_chart=request_chart(figures["days"]),
                events=[
                    (event, reasons_html(event.reasons))
                    for event in events.order_by("-created_at")[:EVENTS_SHOWN]
                ],
                event_count=events.count(),
                events_url=reverse("admin:audit_auditevent_changelist")
                + f"?target_id={application.pk}",
            )
        return super().change_view(request, object_id, form_url, context)

    def decide_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Approve or reject from the application's page, with a reason; back to the page
        with the outcome, or the service's refusal, as a message."""
        application = get_object_or_404(Application.objects.select_related("program"), pk=object_id)
        page = reverse("admin:allocations_application_change", args=[application.pk])
        if request.method != "POST":
            return HttpResponseRedirect(page)
        if not self.has_view_permission(request, application):
            raise PermissionDenied
        form = DecideForm(request.POST)
        if not form.is_valid():
            errors = "; ".join(str(error) for field in form.errors.values() for error in field)
            self.message_user(request, errors, messages.ERROR)
            return HttpResponseRedirect(page)
        refusal = self._may_decide(request, application)
        if refusal:
            self.message_user(request, refusal, messages.ERROR)
            return HttpResponseRedirect(page)
        approve = form.cleaned_data["decision"] == "approve"
        reason = form.cleaned_data["reason"] or "Approved by the program's reviewer."
        actor = request.user
        assert isinstance(actor, User)
        try:
            if approve:
                services.application_approve(application=application, actor=actor, note=reason)
            else:
                services.application_reject(application=application, actor=actor, note=reason)
        except DomainError as error:
            self.message_user(request, error.message, messages.ERROR)
            return HttpResponseRedirect(page)
        verb = "Approved" if approve else "Rejected"
        self.log_change(request, application, f"{verb}: {reason}")
        self.message_user(request, f"{verb} “{application.title}”.", messages.SUCCESS)
        return HttpResponseRedirect(page)


@admin.register(ReviewQueueItem)
class ReviewQueueAdmin(ApplicationAdmin):
    """Applications in review, oldest first: what reviewers decide next. Narrow columns, so
    the list reads whole at 1,400 px beside its filters."""

    list_display = [
        "title_and_organization",
        "program",
        "gpu_hours_shown",
        "window",
        "why_review",
        "waiting",
    ]
    list_display_links = ["title_and_organization"]
    list_filter = ["program", "risk_category"]
    date_hierarchy = None  # type: ignore[assignment]  # the queue is short: no date bar

    def get_queryset(self, request: HttpRequest) -> QuerySet[Application]:
        return (
            super()
            .get_queryset(request)
            .filter(status=ApplicationStatus.IN_REVIEW)
            .order_by("submitted_at")
        )

    def change_view(
        self, request: HttpRequest, object_id: str, *args: Any, **kwargs: Any
    ) -> HttpResponse:
        # One page per application, whichever list it was reached from.
        return HttpResponseRedirect(
            reverse("admin:allocations_application_change", args=[object_id])
        )

    @admin.display(description="application", ordering="title")
    def title_and_organization(self, application: Application) -> SafeString:
        return format_html(
            '{}<br><span class="quiet">{}</span>', application.title, application.organization.name
        )

    @admin.display(description="window", ordering="start_date")
    def window(self, application: Application) -> SafeString:
        return format_html(
            '<span style="white-space:nowrap">{} –</span> <span style="white-space:nowrap">'
            '{}</span><br><span class="quiet">{} days</span>',
            application.start_date,
            application.end_date,
            application.days,
        )

    @admin.display(description="why review")
    def why_review(self, application: Application) -> SafeString:
        return format_html_join(
            ", ",
            '<span title="{}">{}</span>',
            (
                (message_of(reason), humanize_code(str(reason.get("code", ""))))
                for reason in application.reasons
            ),
        )

    @admin.display(description="waiting", ordering="submitted_at")
    def waiting(self, application: Application) -> SafeString:
        return age_against_target(application)


@admin.register(WaitlistItem)
class WaitlistAdmin(ReviewQueueAdmin):
    """Waitlisted applications in the order the worker re-checks them."""

    list_display = [
        "title_and_organization",
        "program",
        "pool",
        "gpu_hours_shown",
        "window",
        "constraint",
        "waiting",
    ]
    actions = [reject_selected]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Application]:
        return (
            ApplicationAdmin.get_queryset(self, request)
            .filter(status=ApplicationStatus.WAITLISTED)
            .order_by("program__priority", "submitted_at")
        )

    @admin.display(description="first day short, and why")
    def constraint(self, application: Application) -> SafeString:
        if not application.reasons:
            return format_html("{}", "–")
        first = application.reasons[0]
        return format_html(
            '<span title="{}">{}: {}</span>',
            message_of(first),
            application.failed_day or first.get("day", ""),
            humanize_code(str(first.get("code", ""))),
        )


def application_list_url(status: str) -> str:
    return reverse("admin:allocations_application_changelist") + f"?status__exact={status}"
