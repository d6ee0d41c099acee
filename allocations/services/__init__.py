"""Writes of the allocations app, split by topic. Callers import the module they need
(`from allocations.services import inventory`) or the names re-exported here."""

from allocations.services.inventory import (
    inventory_create,
    inventory_delete,
    inventory_update,
    program_create,
    program_set_reviewers,
    program_update,
)

__all__ = [
    "inventory_create",
    "inventory_delete",
    "inventory_update",
    "program_create",
    "program_set_reviewers",
    "program_update",
]
