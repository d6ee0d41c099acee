"""Inventory and programs: read by every user, written by operators (inventory as code)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar
from uuid import UUID

from django.db import models
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authz import signed_in
from accounts.permissions import DEFAULT_PERMISSIONS, IsOperatorOrReadOnly
from allocations import selectors, services
from allocations.models import AcceleratorModel, CapacityEvent, GpuPool, PowerPhase, Program, Site
from allocations.serializers.inventory import (
    AcceleratorSerializer,
    AcceleratorWriteSerializer,
    CapacityEventSerializer,
    CapacityEventWriteSerializer,
    PoolDaySerializer,
    PoolSerializer,
    PoolWriteSerializer,
    PowerPhaseSerializer,
    PowerPhaseWriteSerializer,
    ProgramSerializer,
    ProgramWriteSerializer,
    SiteSerializer,
    SiteWriteSerializer,
    WindowQuerySerializer,
)
from portal.apidocs import tags
from portal.endpoints import PagedListView, created, paged_list, validated
from portal.serializers import DAY_SCHEMA

INVENTORY_PERMISSIONS: list[type[BasePermission]] = [*DEFAULT_PERMISSIONS, IsOperatorOrReadOnly]


class InventoryCollectionView(PagedListView[Any]):
    """GET a page of rows; POST one (operators). Subclasses name the rows and serializers.

    A nested collection (a site's power phases) names its parent in `parent_model`.
    """

    permission_classes = INVENTORY_PERMISSIONS
    model: ClassVar[type[models.Model]]
    write_serializer_class: ClassVar[type[serializers.Serializer]]
    parent_model: ClassVar[type[models.Model] | None] = None
    parent_field: ClassVar[str] = ""

    def parent(self) -> models.Model | None:
        if self.parent_model is None:
            return None
        return get_object_or_404(self.parent_model, pk=self.kwargs["parent_id"])

    def rows(self) -> QuerySet[Any]:
        return self.rows_of(self.parent())

    def rows_of(self, parent: Any) -> QuerySet[Any]:
        raise NotImplementedError

    def post(self, request: Request, **kwargs: Any) -> Response:
        parent = self.parent()
        context = {"request": request, self.parent_field or "parent": parent}
        values = validated(self.write_serializer_class, request.data, context=context)
        if parent is not None:
            values[self.parent_field] = parent
        instance = services.inventory_create(
            model=self.model, values=values, actor=signed_in(request)
        )
        return created(self.get_serializer_class(), instance)


class InventoryItemView(APIView):
    """GET one row; PATCH or DELETE it (operators)."""

    permission_classes = INVENTORY_PERMISSIONS
    model: ClassVar[type[models.Model]]
    serializer_class: ClassVar[type[serializers.Serializer]]
    write_serializer_class: ClassVar[type[serializers.Serializer]]
    parent_field: ClassVar[str] = ""

    def get_object(self, **kwargs: Any) -> models.Model:
        lookup = {"pk": kwargs["pk"]}
        if self.parent_field:
            lookup[f"{self.parent_field}_id"] = kwargs["parent_id"]
        return get_object_or_404(self.model, **lookup)

    def get(self, request: Request, **kwargs: Any) -> Response:
        return Response(self.serializer_class(self.get_object(**kwargs)).data)

    def patch(self, request: Request, **kwargs: Any) -> Response:
        instance = self.get_object(**kwargs)
        context = {
            "request": request,
            self.parent_field or "parent": getattr(instance, self.parent_field, None),
        }
        values = validated(
            self.write_serializer_class,
            request.data,
            instance=instance,
            partial=True,
            context=context,
        )
        instance = services.inventory_update(
            instance=instance, values=values, actor=signed_in(request)
        )
        return Response(self.serializer_class(instance).data)

    def delete(self, request: Request, **kwargs: Any) -> Response:
        services.inventory_delete(instance=self.get_object(**kwargs), actor=signed_in(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


def _article(noun: str) -> str:
    return "an" if noun[0].lower() in "aeiou" else "a"


View = TypeVar("View", bound=type[InventoryCollectionView] | type[InventoryItemView])


@dataclass(frozen=True)
class Inventory:
    """One kind of inventory row as the API serves it: its model, its serializers, its name
    in the documentation and, for a nested kind (a site's power phases), its parent.

    Everyone reads, operators write; the reads of what an applicant needs (GPU pools) are
    shown with programs and capacity (`read_tag`), the writes with the operators' inventory.
    """

    noun: str
    model: type[models.Model]
    read: type[serializers.Serializer]
    write: type[serializers.Serializer]
    read_tag: str = tags.INVENTORY
    parent_model: type[models.Model] | None = None
    parent_field: str = ""

    def _serve(self, view: View) -> View:
        view.model, view.parent_field = self.model, self.parent_field
        view.serializer_class, view.write_serializer_class = self.read, self.write
        return view

    def collection(self, view: type[InventoryCollectionView]) -> type[InventoryCollectionView]:
        """Class decorator: `view` lists this kind's rows and creates one."""
        view.parent_model = self.parent_model
        noun, article = self.noun, _article(self.noun)
        return extend_schema_view(
            get=extend_schema(
                tags=[self.read_tag], summary=f"List {noun}s", responses=self.read(many=True)
            ),
            post=extend_schema(
                tags=[tags.INVENTORY],
                summary=f"Create {article} {noun} (operators)",
                request=self.write,
                responses={201: self.read},
            ),
        )(self._serve(view))

    def item(self, view: type[InventoryItemView]) -> type[InventoryItemView]:
        """Class decorator: `view` reads, changes and deletes one row of this kind."""
        noun, article = self.noun, _article(self.noun)
        return extend_schema_view(
            get=extend_schema(tags=[self.read_tag], summary=f"One {noun}", responses=self.read),
            patch=extend_schema(
                tags=[tags.INVENTORY],
                summary=f"Change {article} {noun} (operators)",
                request=self.write,
                responses=self.read,
            ),
            delete=extend_schema(
                tags=[tags.INVENTORY],
                summary=f"Delete {article} {noun} (operators)",
                responses={204: None},
            ),
        )(self._serve(view))


SITES = Inventory("site", Site, SiteSerializer, SiteWriteSerializer)
POWER_PHASES = Inventory(
    "power phase",
    PowerPhase,
    PowerPhaseSerializer,
    PowerPhaseWriteSerializer,
    parent_model=Site,
    parent_field="site",
)
ACCELERATORS = Inventory(
    "accelerator model", AcceleratorModel, AcceleratorSerializer, AcceleratorWriteSerializer
)
POOLS = Inventory(
    "GPU pool", GpuPool, PoolSerializer, PoolWriteSerializer, tags.PROGRAMS_AND_CAPACITY
)
CAPACITY_EVENTS = Inventory(
    "capacity event",
    CapacityEvent,
    CapacityEventSerializer,
    CapacityEventWriteSerializer,
    parent_model=GpuPool,
    parent_field="pool",
)


@SITES.collection
class SiteListView(InventoryCollectionView):
    def rows_of(self, parent: None) -> QuerySet[Site]:
        return selectors.site_list()


@SITES.item
class SiteDetailView(InventoryItemView):
    pass


@POWER_PHASES.collection
class PowerPhaseListView(InventoryCollectionView):
    def rows_of(self, parent: Site) -> QuerySet[PowerPhase]:
        return selectors.power_phase_list(site=parent)


@POWER_PHASES.item
class PowerPhaseDetailView(InventoryItemView):
    pass


@ACCELERATORS.collection
class AcceleratorListView(InventoryCollectionView):
    def rows_of(self, parent: None) -> QuerySet[AcceleratorModel]:
        return selectors.accelerator_list()


@ACCELERATORS.item
class AcceleratorDetailView(InventoryItemView):
    pass


@POOLS.collection
class PoolListView(InventoryCollectionView):
    filterset_fields = ["site", "accelerator", "is_open"]

    def rows_of(self, parent: None) -> QuerySet[GpuPool]:
        return selectors.pool_list()


@POOLS.item
class PoolDetailView(InventoryItemView):
    pass


@CAPACITY_EVENTS.collection
class CapacityEventListView(InventoryCollectionView):
    def rows_of(self, parent: GpuPool) -> QuerySet[CapacityEvent]:
        return selectors.capacity_event_list(pool=parent)


@CAPACITY_EVENTS.item
class CapacityEventDetailView(InventoryItemView):
    pass


class PoolAvailabilityView(APIView):
    @extend_schema(
        tags=[tags.PROGRAMS_AND_CAPACITY],
        summary="GPUs in service, deliverable GPU-hours and the site's power, day by day",
        parameters=[
            OpenApiParameter(
                "start", DAY_SCHEMA, description="First day, YYYY-MM-DD (default today)."
            ),
            OpenApiParameter(
                "end", DAY_SCHEMA, description="Last day, included (default start + 30)."
            ),
        ],
        responses=PoolDaySerializer(many=True),
    )
    def get(self, request: Request, pk: UUID) -> Response:
        pool = get_object_or_404(GpuPool.objects.select_related("site", "accelerator"), pk=pk)
        window = validated(WindowQuerySerializer, request.query_params)
        pool_days = selectors.pool_capacity_days(pool=pool, **window)
        site_days = selectors.site_power_days(site=pool.site, **window)
        rows = [
            {**vars(pool_day), "power_envelope_mw": site_day.power_envelope_mw}
            for pool_day, site_day in zip(pool_days, site_days, strict=True)
        ]
        return Response(PoolDaySerializer(rows, many=True).data)


@paged_list(tags.PROGRAMS_AND_CAPACITY, "Open programs and their rules (all, for operators)")
class ProgramListView(PagedListView[Program]):
    permission_classes = INVENTORY_PERMISSIONS
    serializer_class = ProgramSerializer

    def rows(self) -> QuerySet[Program]:
        return selectors.program_list(include_closed=bool(self.request.user.is_staff))

    @extend_schema(
        tags=[tags.INVENTORY],
        summary="Create a program (operators)",
        request=ProgramWriteSerializer,
        responses={201: ProgramSerializer},
    )
    def post(self, request: Request) -> Response:
        values = validated(ProgramWriteSerializer, request.data)
        reviewers = values.pop("reviewers", [])
        program = services.program_create(
            values=values, reviewers=reviewers, actor=signed_in(request)
        )
        return created(ProgramSerializer, program)


class ProgramDetailView(APIView):
    permission_classes = INVENTORY_PERMISSIONS

    def get_object(self, request: Request, pk: UUID) -> Program:
        programs = selectors.program_list(include_closed=bool(request.user.is_staff))
        return get_object_or_404(programs, pk=pk)

    @extend_schema(
        tags=[tags.PROGRAMS_AND_CAPACITY], summary="One program", responses=ProgramSerializer
    )
    def get(self, request: Request, pk: UUID) -> Response:
        return Response(ProgramSerializer(self.get_object(request, pk)).data)

    @extend_schema(
        tags=[tags.INVENTORY],
        summary="Change a program's rules or reviewers (operators)",
        request=ProgramWriteSerializer,
        responses=ProgramSerializer,
    )
    def patch(self, request: Request, pk: UUID) -> Response:
        program = self.get_object(request, pk)
        values = validated(ProgramWriteSerializer, request.data, instance=program, partial=True)
        reviewers = values.pop("reviewers", None)
        program = services.program_update(
            program=program, values=values, reviewers=reviewers, actor=signed_in(request)
        )
        return Response(ProgramSerializer(program).data)

    @extend_schema(
        tags=[tags.INVENTORY], summary="Delete a program (operators)", responses={204: None}
    )
    def delete(self, request: Request, pk: UUID) -> Response:
        services.inventory_delete(instance=self.get_object(request, pk), actor=signed_in(request))
        return Response(status=status.HTTP_204_NO_CONTENT)
