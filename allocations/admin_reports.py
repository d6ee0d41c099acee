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
from allocations.selectors.console import overcommitted_days_by_pool
from allocations.selectors.reports import (
    TURNAROUND_DEFAULT_DAYS,
    capacity_timeline,
    shares_report,
    turnaround_report,
)
from portal.serializers import MAX_QUERY_DAYS


def capacity_chart_view(request: HttpRequest) -> HttpResponse:
    sites = list(Site.objects.order_by("name"))
    chosen = request.GET.get("site")
    site = next((s for s in sites if str(s.pk) == chosen), sites[0] if sites else None)
    try:
        days = min(max(int(request.GET.get("days", "365")), 7), MAX_QUERY_DAYS)
        back = min(max(int(request.GET.get("back", "30")), 0), 365)
    except ValueError:
        days, back = 365, 30
    today = timezone.localdate()
    # The chart starts some days back, so that what was used shows beside what is reserved.
    start = today - timedelta(days=back)
    end = today + timedelta(days=days - 1)
    context = {
        **admin.site.each_context(request),
        "sites": sites,
        "selected_site": site,
        "subject": site or "no site",
        "start": start,
        "end": end,
        "days": days,
        "back": back,
        "gpu_chart": "",
        "demand_chart": "",
        "power_chart": "",
        "overcommitted": [],
        "shares": shares_report(),
        "turnaround": turnaround_report(),
        "turnaround_days": TURNAROUND_DEFAULT_DAYS,
    }
    context["share_tables"] = [
        ("by program", context["shares"]["by_program"]),
        ("by country", context["shares"]["by_country"]),
        ("by organization kind", context["shares"]["by_organization_kind"]),
    ]
    if site is not None:
        pools = list(GpuPool.objects.filter(site=site).select_related("site", "accelerator"))
        timeline = capacity_timeline(site=site, pools=pools, start=start, end=end)
        context["gpu_chart"], context["demand_chart"], context["power_chart"] = capacity_charts(
            timeline
        )
        # Per pool: a site's headroom in one pool does not cover another's shortfall.
        context["overcommitted"] = overcommitted_days_by_pool(pools=pools, start=today, end=end)
    return TemplateResponse(request, "admin/allocations/capacity_chart.html", context)
