"""The allocations app's models, split by topic: the supply (inventory and programs), the
demand (applications and allocations) and the per-day capacity ledger between them."""

from allocations.models.inventory import (
    AcceleratorModel,
    CapacityEvent,
    GpuPool,
    PowerPhase,
    Program,
    Site,
)

__all__ = [
    "AcceleratorModel",
    "CapacityEvent",
    "GpuPool",
    "PowerPhase",
    "Program",
    "Site",
]
