"""Reads of the allocations app, split by topic: the inventory's arithmetic, the demand
(applications and allocations scoped to who asks) and the capacity ledger."""

from allocations.selectors.inventory import (
    HOURS_PER_DAY,
    PoolCapacityDay,
    SitePowerDay,
    accelerator_list,
    capacity_event_list,
    days_between,
    deliverable_gpu_hours,
    energy_kwh_per_gpu_hour,
    facility_mw_for_gpus,
    pool_capacity_days,
    pool_list,
    power_phase_list,
    program_list,
    site_list,
    site_power_days,
)

__all__ = [
    "HOURS_PER_DAY",
    "PoolCapacityDay",
    "SitePowerDay",
    "accelerator_list",
    "capacity_event_list",
    "days_between",
    "deliverable_gpu_hours",
    "energy_kwh_per_gpu_hour",
    "facility_mw_for_gpus",
    "pool_capacity_days",
    "pool_list",
    "power_phase_list",
    "program_list",
    "site_list",
    "site_power_days",
]
