from django.urls import path

from allocations import views

urlpatterns = [
    path("sites/", views.SiteListView.as_view(), name="site-list"),
    path("sites/<uuid:pk>/", views.SiteDetailView.as_view(), name="site-detail"),
    path(
        "sites/<uuid:parent_id>/power-phases/",
        views.PowerPhaseListView.as_view(),
        name="power-phase-list",
    ),
    path(
        "sites/<uuid:parent_id>/power-phases/<uuid:pk>/",
        views.PowerPhaseDetailView.as_view(),
        name="power-phase-detail",
    ),
    path("accelerators/", views.AcceleratorListView.as_view(), name="accelerator-list"),
    path(
        "accelerators/<uuid:pk>/", views.AcceleratorDetailView.as_view(), name="accelerator-detail"
    ),
    path("pools/", views.PoolListView.as_view(), name="pool-list"),
    path("pools/<uuid:pk>/", views.PoolDetailView.as_view(), name="pool-detail"),
    path(
        "pools/<uuid:pk>/availability/",
        views.PoolAvailabilityView.as_view(),
        name="pool-availability",
    ),
    path(
        "pools/<uuid:parent_id>/capacity-events/",
        views.CapacityEventListView.as_view(),
        name="capacity-event-list",
    ),
    path(
        "pools/<uuid:parent_id>/capacity-events/<uuid:pk>/",
        views.CapacityEventDetailView.as_view(),
        name="capacity-event-detail",
    ),
    path("programs/", views.ProgramListView.as_view(), name="program-list"),
    path("programs/<uuid:pk>/", views.ProgramDetailView.as_view(), name="program-detail"),
]
