"""Forms of the applicants' pages. The apply form asks the service's own rules
(`request_refusals`, `eligibility_refusal`), so the page refuses exactly what a decision
would refuse for the request's bounds, before anything is written."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext_lazy as _

from accounts.models import MembershipRole, Organization, User
from allocations.models import GpuPool, Program, RiskCategory
from allocations.reasons import message_of
from allocations.services.applications import eligibility_refusal, request_refusals
from portal.errors import DomainError

# The reason codes of request bounds, in the reader's language (the service's messages are
# English and carry the figures; the form's own messages say the same with the figures).
BOUND_MESSAGES = {
    "gpu_hours": _("%(program)s takes %(min)s to %(max)s GPU-hours per application."),
    "end_date": _("%(program)s allows windows of at most %(days)s days."),
    "start_date": _("The window starts in the past."),
    "pool": _("The pool %(pool)s takes no applications."),
}


ORDER_MESSAGE = _("The last day comes before the first.")


class DateInput(forms.DateInput):
    input_type = "date"


class ApplicationForm(forms.Form):
    organization = forms.ModelChoiceField(
        queryset=Organization.objects.none(), label=_("Organization")
    )
    program = forms.ModelChoiceField(queryset=Program.objects.none(), label=_("Program"))
    pool = forms.ModelChoiceField(queryset=GpuPool.objects.none(), label=_("GPU pool"))
    title = forms.CharField(max_length=200, label=_("Title"))
    summary = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        max_length=10_000,
        label=_("Summary"),
    )
    gpu_hours = forms.IntegerField(min_value=1, label=_("GPU-hours"))
    start_date = forms.DateField(widget=DateInput, label=_("First day"))
    end_date = forms.DateField(widget=DateInput, label=_("Last day"))
    purpose = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        max_length=10_000,
        label=_("What the GPU-hours are for"),
    )
    risk_category = forms.ChoiceField(
        choices=RiskCategory.choices, initial=RiskCategory.MINIMAL, label=_("AI Act risk category")
    )
    data_stays_in_eea = forms.BooleanField(
        required=False, initial=True, label=_("The data stays in the EEA")
    )
    model_lineage = forms.CharField(
        max_length=100, required=False, label=_("Model lineage (optional)")
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        organizations = Organization.objects.filter(memberships__user=user).order_by("name")
        self.fields["organization"].queryset = organizations  # type: ignore[attr-defined]
        self.fields["program"].queryset = Program.objects.filter(  # type: ignore[attr-defined]
            is_open=True
        ).order_by("priority", "name")
        self.fields["pool"].queryset = GpuPool.objects.filter(  # type: ignore[attr-defined]
            is_open=True
        ).order_by("name")
        today = timezone.localdate()
        self.fields["start_date"].widget.attrs["min"] = today.isoformat()
        self.fields["end_date"].widget.attrs["min"] = today.isoformat()
        self.fields["gpu_hours"].widget.attrs["min"] = "1"
        if organizations.count() == 1 and not self.is_bound:
            self.initial.setdefault("organization", organizations.first())

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        organization, program, pool = (
            cleaned.get("organization"),
            cleaned.get("program"),
            cleaned.get("pool"),
        )
        start, end, gpu_hours = (
            cleaned.get("start_date"),
            cleaned.get("end_date"),
            cleaned.get("gpu_hours"),
        )
        if start and end and end < start:
            self.add_error("end_date", ORDER_MESSAGE)
            return cleaned
        if organization and program:
            refusal = eligibility_refusal(program=program, organization=organization)
            if refusal is not None:
                self.add_error(
                    "program",
                    _("%(organization)s may not apply to %(program)s: %(reason)s")
                    % {
                        "organization": organization.name,
                        "program": program.name,
                        "reason": message_of(refusal),
                    },
                )
        if program and pool and start and end and gpu_hours:
            refusals = request_refusals(
                program=program,
                pool=pool,
                gpu_hours=gpu_hours,
                start_date=start,
                end_date=end,
                today=timezone.localdate(),
            )
            for name in refusals:
                self.add_error(
                    name,
                    BOUND_MESSAGES[name]
                    % {
                        "program": program.name,
                        "min": number_format(program.min_gpu_hours, force_grouping=True),
                        "max": number_format(program.max_gpu_hours, force_grouping=True),
                        "days": program.max_duration_days,
                        "pool": pool.name,
                    },
                )
        return cleaned

    def values(self) -> dict[str, Any]:
        return {name: self.cleaned_data[name] for name in self.fields}

    def add_domain_error(self, error: DomainError) -> None:
        fields = error.extra.get("fields") or {}
        for name, entries in fields.items():
            for entry in entries:
                self.add_error(name if name in self.fields else None, entry["message"])
        if not fields:
            self.add_error(None, error.message)


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, label=_("Name"), help_text=_("Where you use it."))
    expires_in_days = forms.IntegerField(
        min_value=1,
        max_value=settings.PORTAL_TOKEN_MAX_DAYS,
        initial=settings.PORTAL_TOKEN_DEFAULT_DAYS,
        label=_("Valid for (days)"),
    )


class InvitationForm(forms.Form):
    email = forms.EmailField(label=_("Email"))
    role = forms.ChoiceField(
        choices=MembershipRole.choices, initial=MembershipRole.MEMBER, label=_("Role")
    )


class SettingsForm(forms.ModelForm):
    class Meta:
        model = User
        fields = ["full_name", "language"]
        labels = {"full_name": _("Your name"), "language": _("Language")}
        help_texts = {"language": _("Empty: the language your browser asks for.")}
