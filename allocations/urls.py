from django.urls import path

from allocations.views import demand, inventory, operators, reports, usage

urlpatterns = [
    path("sites/", inventory.SiteListView.as_view(), name="site-list"),
    path("sites/<uuid:pk>/", inventory.SiteDetailView.as_view(), name="site-detail"),
    path(
        "sites/<uuid:parent_id>/power-phases/",
        inventory.PowerPhaseListView.as_view(),
        name="power-phase-list",
    ),
    path(
        "sites/<uuid:parent_id>/power-phases/<uuid:pk>/",
        inventory.PowerPhaseDetailView.as_view(),
        name="power-phase-detail",
    ),
    path("accelerators/", inventory.AcceleratorListView.as_view(), name="accelerator-list"),
    path(
        "accelerators/<uuid:pk>/",
        inventory.AcceleratorDetailView.as_view(),
        name="accelerator-detail",
    ),
    path("pools/", inventory.PoolListView.as_view(), name="pool-list"),
    path("pools/<uuid:pk>/", inventory.PoolDetailView.as_view(), name="pool-detail"),
    path(
        "pools/<uuid:pk>/availability/",
        inventory.PoolAvailabilityView.as_view(),
        name="pool-availability",
    ),
    path(
        "pools/<uuid:parent_id>/capacity-events/",
        inventory.CapacityEventListView.as_view(),
        name="capacity-event-list",
    ),
    path(
        "pools/<uuid:parent_id>/capacity-events/<uuid:pk>/",
        inventory.CapacityEventDetailView.as_view(),
        name="capacity-event-detail",
    ),
    path("programs/", inventory.ProgramListView.as_view(), name="program-list"),
    path("programs/<uuid:pk>/", inventory.ProgramDetailView.as_view(), name="program-detail"),
]

urlpatterns += [
    path("applications/", demand.ApplicationListView.as_view(), name="application-list"),
    path(
        "applications/<uuid:pk>/",
        demand.ApplicationDetailView.as_view(),
        name="application-detail",
    ),
    path(
        "applications/<uuid:pk>/submit/",
        demand.ApplicationSubmitView.as_view(),
        name="application-submit",
    ),
    path(
        "applications/<uuid:pk>/withdraw/",
        demand.ApplicationWithdrawView.as_view(),
        name="application-withdraw",
    ),
    path(
        "applications/<uuid:pk>/approve/",
        demand.ApplicationApproveView.as_view(),
        name="application-approve",
    ),
    path(
        "applications/<uuid:pk>/reject/",
        demand.ApplicationRejectView.as_view(),
        name="application-reject",
    ),
    path(
        "applications/<uuid:pk>/events/",
        demand.ApplicationEventsView.as_view(),
        name="application-events",
    ),
    path("allocations/", demand.AllocationListView.as_view(), name="allocation-list"),
    path("allocations/<uuid:pk>/", demand.AllocationDetailView.as_view(), name="allocation-detail"),
    path(
        "allocations/<uuid:pk>/release/",
        demand.AllocationReleaseView.as_view(),
        name="allocation-release",
    ),
    path(
        "allocations/<uuid:pk>/suspend/",
        operators.AllocationSuspendView.as_view(),
        name="allocation-suspend",
    ),
    path(
        "allocations/<uuid:pk>/resume/",
        operators.AllocationResumeView.as_view(),
        name="allocation-resume",
    ),
    path(
        "allocations/<uuid:pk>/revoke/",
        operators.AllocationRevokeView.as_view(),
        name="allocation-revoke",
    ),
    path("capacity/", demand.CapacityView.as_view(), name="capacity"),
    path("usage/", usage.UsageView.as_view(), name="usage"),
    path("reports/capacity/", reports.CapacityReportView.as_view(), name="report-capacity"),
    path("reports/shares/", reports.SharesReportView.as_view(), name="report-shares"),
    path("reports/turnaround/", reports.TurnaroundReportView.as_view(), name="report-turnaround"),
]
