"""The allocations API, split by topic: inventory and programs; applications, allocations
and capacity."""
