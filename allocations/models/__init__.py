"""The allocations app's models, split by topic: the supply (inventory and programs), the
demand (applications and allocations) and the per-day capacity ledger between them."""

from allocations.models.demand import (
    Allocation,
    AllocationStatus,
    Application,
    ApplicationKind,
    ApplicationStatus,
    RiskCategory,
)
from allocations.models.inventory import (
    AcceleratorModel,
    CapacityEvent,
    GpuPool,
    PowerPhase,
    Program,
    Site,
)
from allocations.models.ledger import PoolDay, ProgramDay, QuotaUsage, SiteDay
from allocations.models.usage import BackendCall, SchedulerCheck, UsageRecord

__all__ = [
    "AcceleratorModel",
    "Allocation",
    "AllocationStatus",
    "Application",
    "ApplicationKind",
    "ApplicationStatus",
    "BackendCall",
    "CapacityEvent",
    "GpuPool",
    "PoolDay",
    "PowerPhase",
    "Program",
    "ProgramDay",
    "QuotaUsage",
    "RiskCategory",
    "SchedulerCheck",
    "Site",
    "SiteDay",
    "UsageRecord",
]
