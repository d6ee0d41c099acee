"""Reports: the capacity timeline for operators; shares and turnaround for everyone."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import DEFAULT_PERMISSIONS, IsOperator
from allocations.models import GpuPool
from allocations.selectors import reports
from allocations.serializers.reports import (
    CapacityReportDaySerializer,
    CapacityReportQuerySerializer,
    SharesQuerySerializer,
    SharesReportSerializer,
    TurnaroundQuerySerializer,
    TurnaroundRowSerializer,
)
from portal.apidocs import tags
from portal.endpoints import validated
from portal.serializers import DAY_SCHEMA


class CapacityReportView(APIView):
    permission_classes = [*DEFAULT_PERMISSIONS, IsOperator]

    @extend_schema(
        tags=[tags.REPORTS],
        summary="Capacity timeline of a site or a pool, per day (operators)",
        parameters=[
            OpenApiParameter("site", str, description="A site: its id or name (or give a pool)."),
            OpenApiParameter("pool", str, description="A pool: its id or name (or give a site)."),
            OpenApiParameter("start", DAY_SCHEMA, description="First day (default today)."),
            OpenApiParameter("end", DAY_SCHEMA, description="Last day (default start + 90)."),
        ],
        responses=CapacityReportDaySerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        window = validated(CapacityReportQuerySerializer, request.query_params)
        pool = window.get("pool")
        site = pool.site if pool else window["site"]
        pools = (
            [pool]
            if pool
            else list(GpuPool.objects.filter(site=site).select_related("site", "accelerator"))
        )
        days = reports.capacity_timeline(
            site=site, pools=pools, start=window["start"], end=window["end"]
        )
        return Response(CapacityReportDaySerializer(days, many=True).data)


class SharesReportView(APIView):
    @extend_schema(
        tags=[tags.REPORTS],
        summary="Granted and used GPU-hours by program, country and organization kind",
        parameters=[SharesQuerySerializer],
        responses=SharesReportSerializer,
    )
    def get(self, request: Request) -> Response:
        query = validated(SharesQuerySerializer, request.query_params)
        return Response(SharesReportSerializer(reports.shares_report(**query)).data)


class TurnaroundReportView(APIView):
    @extend_schema(
        tags=[tags.REPORTS],
        summary="Time from submission to decision per program, against its published target",
        description=(
            "Of the final decisions (approved or rejected) made on the days from `start` to"
            f" `end`, both included: by default the last {reports.TURNAROUND_DEFAULT_DAYS} days"
            f" up to today; at most {reports.TURNAROUND_MAX_DAYS} days at a time (a longer"
            " window is refused with `window_too_long`). A program with no decision in the"
            " window has `decided` 0 and no times."
        ),
        parameters=[TurnaroundQuerySerializer],
        responses=TurnaroundRowSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        query = validated(TurnaroundQuerySerializer, request.query_params)
        rows = reports.turnaround_report(**query)
        return Response(TurnaroundRowSerializer(rows, many=True).data)
