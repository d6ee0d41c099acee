"""The admin's reports page: a site's GPU-hours and megawatts per day as SVG charts, the
shares that show the local-priority promise kept, and the turnaround of decisions."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from allocations.charts import capacity_charts
from allocations.models import GpuPool, Site
from allocations.selectors.reports import capacity_timeline, shares_report, turnaround_report


def capacity_chart_view(request: HttpRequest) -> HttpResponse:
    sites = list(Site.objects.order_by("name"))
    chosen = request.GET.get("site")
    site = next((s for s in sites if str(s.pk) == chosen), sites[0] if sites else None)
    try:
        days = min(max(int(request.GET.get("days", "365")), 7), 731)
    except ValueError:
        days = 365
    start = timezone.localdate()
    end = start + timedelta(days=days - 1)
    context = {
        **admin.site.each_context(request),
        "sites": sites,
        "selected_site": site,
        "subject": site or "no site",
        "start": start,
        "end": end,
        "days": days,
        "gpu_chart": "",
        "power_chart": "",
        "overcommitted": [],
        "shares": shares_report(),
        "turnaround": turnaround_report(),
    }
    context["share_tables"] = [
        ("by program", context["shares"]["by_program"]),
        ("by country", context["shares"]["by_country"]),
        ("by organization kind", context["shares"]["by_organization_kind"]),
    ]
    if site is not None:
        pools = list(GpuPool.objects.filter(site=site).select_related("site", "accelerator"))
        timeline = capacity_timeline(site=site, pools=pools, start=start, end=end)
        context["gpu_chart"], context["power_chart"] = capacity_charts(timeline)
        context["overcommitted"] = [
            row["day"]
            for row in timeline
            if row["committed_gpu_hours"] + row["held_gpu_hours"] > row["capacity_gpu_hours"]
            or row["committed_mw"] > row["power_envelope_mw"]
        ]
    return TemplateResponse(request, "admin/allocations/capacity_chart.html", context)
