"""Writes of the inventory and the programs, each audited in its own transaction.

The same services serve the API and the admin, so that nothing bypasses them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, TypeVar

from django.db import models, transaction
from django.db.models import ProtectedError, Sum
from django.utils.translation import gettext as _

from accounts import authz
from accounts.authz import Actor
from accounts.models import User
from allocations import locks
from allocations.models import (
    AcceleratorModel,
    CapacityEvent,
    GpuPool,
    PowerPhase,
    Program,
    Site,
)
from audit.services import audit_record, snapshot
from portal.errors import InUse, SharesExceeded

M = TypeVar("M", bound=models.Model)


def _verb(instance: models.Model, action: str) -> str:
    return f"{instance._meta.model_name}.{action}"


def inventory_create(*, model: type[M], values: Mapping[str, Any], actor: Actor) -> M:
    """Create an inventory row (site, power phase, accelerator, pool, capacity event).

    Operators only. Validates the row and its constraints first; on error nothing is written.
    """
    authz.require_operator(actor=actor)
    instance = model(**values)
    instance.full_clean()
    with transaction.atomic():
        instance.save(force_insert=True)
        audit_record(
            actor=actor, verb=_verb(instance, "create"), target=instance, after=snapshot(instance)
        )
        _rewrite_ledger(instance)
    return instance


def inventory_update(*, instance: M, values: Mapping[str, Any], actor: Actor) -> M:
    """Change fields of an inventory row under its row lock; audited with before and after.
    Operators only."""
    authz.require_operator(actor=actor)
    with transaction.atomic():
        # No key is ever changed: `FOR NO KEY UPDATE` leaves the foreign-key checks of
        # decisions committing meanwhile free to pass (allocations/locks.py, step 2).
        current = type(instance)._default_manager.select_for_update(no_key=True).get(pk=instance.pk)
        fields = [name for name, value in values.items() if getattr(current, name) != value]
        if not fields:
            return current
        before = snapshot(current, _attnames(current, fields))
        previous_site_id = getattr(current, "site_id", None)
        for name in fields:
            setattr(current, name, values[name])
        current.full_clean()
        current.save(update_fields=fields)
        audit_record(
            actor=actor,
            verb=_verb(current, "update"),
            target=current,
            before=before,
            after=snapshot(current, _attnames(current, fields)),
        )
        _rewrite_ledger(current)
        _reprice_energy(current, set(_attnames(current, fields)), previous_site_id)
    return current


def inventory_delete(*, instance: models.Model, actor: Actor) -> None:
    """Delete an inventory row; a row still referenced (a pool with history) is refused.
    Operators only."""
    authz.require_operator(actor=actor)
    try:
        with transaction.atomic():
            audit_record(
                actor=actor,
                verb=_verb(instance, "delete"),
                target=instance,
                before=snapshot(instance),
            )
            instance.delete()
            _rewrite_ledger(instance)
    except ProtectedError as error:
        raise InUse(
            _("This %(kind)s is still referenced and cannot be deleted.")
            % {"kind": instance._meta.verbose_name}
        ) from error


def _rewrite_ledger(instance: models.Model) -> None:
    """Capacity events, availability and power phases change what the ledger may promise:
    rewrite its rows in the same transaction (the rewrite flags what became overcommitted
    and queues the waitlists when capacity grew)."""
    from allocations.services import ledger

    if isinstance(instance, CapacityEvent):
        ledger.ledger_rewrite_pool(pool_id=instance.pool_id)
    elif isinstance(instance, GpuPool) and GpuPool.objects.filter(pk=instance.pk).exists():
        ledger.ledger_rewrite_pool(pool_id=instance.pk)
    elif isinstance(instance, PowerPhase):
        ledger.ledger_rewrite_site_power(site_id=instance.site_id)


def _reprice_energy(
    instance: models.Model, changed: set[str], previous_site_id: Any | None
) -> None:
    """What a GPU-hour costs in energy changed (a site's PUE, an accelerator's IT power, a
    pool's site or accelerator): re-price the reservations concerned and re-derive the energy
    ledger of their sites, in the same transaction."""
    from allocations.services import ledger

    if isinstance(instance, Site) and "pue" in changed:
        ledger.ledger_reprice(site_ids=[instance.pk])
    elif isinstance(instance, AcceleratorModel) and "it_power_w" in changed:
        ledger.ledger_reprice(accelerator_ids=[instance.pk])
    elif isinstance(instance, GpuPool) and changed & {"site_id", "accelerator_id"}:
        sites = [site for site in (previous_site_id, instance.site_id) if site is not None]
        ledger.ledger_reprice(pool_ids=[instance.pk], site_ids=sites)


def _attnames(instance: models.Model, names: Iterable[str]) -> list[str]:
    """Column names (`site_id`) of model fields (`site`), so snapshots hold plain ids."""
    return [getattr(instance._meta.get_field(name), "attname", name) for name in names]


def _check_shares(*, program: Program | None, nominal_share: Decimal) -> None:
    """Shares of all programs sum to at most 1. Takes the shares lock (allocations/locks.py)
    before it reads them, so that writers of programs are checked one after the other."""
    locks.lock_program_shares()
    others = Program.objects.all()
    if program is not None:
        others = others.exclude(pk=program.pk)
    total = others.aggregate(total=Sum("nominal_share"))["total"] or Decimal(0)
    taken = Decimal(total).quantize(Decimal("0.0001"))  # SQLite sums decimals loosely
    if taken + nominal_share > 1:
        raise SharesExceeded(
            _("Other programs hold %(taken)s of the pools; %(share)s more would pass 1.")
            % {"taken": taken, "share": nominal_share}
        )


def program_create(
    *, values: Mapping[str, Any], reviewers: Iterable[User] = (), actor: Actor
) -> Program:
    """Create a program; refused if the shares of all programs would pass 1. Operators only."""
    authz.require_operator(actor=actor)
    with transaction.atomic():
        _check_shares(program=None, nominal_share=Decimal(values.get("nominal_share", 0)))
        program = inventory_create(model=Program, values=values, actor=actor)
        program_set_reviewers(program=program, reviewers=reviewers, actor=actor)
    return program


def program_update(
    *,
    program: Program,
    values: Mapping[str, Any],
    reviewers: Iterable[User] | None = None,
    actor: Actor,
) -> Program:
    """Change a program's rules or reviewers; refused if the shares would pass 1. Operators
    only."""
    authz.require_operator(actor=actor)
    with transaction.atomic():
        if "nominal_share" in values:
            _check_shares(program=program, nominal_share=Decimal(values["nominal_share"]))
        program = inventory_update(instance=program, values=values, actor=actor)
        if reviewers is not None:
            program_set_reviewers(program=program, reviewers=reviewers, actor=actor)
    return program


def program_set_reviewers(*, program: Program, reviewers: Iterable[User], actor: Actor) -> None:
    """Replace the program's reviewers; audited when they change. Operators only."""
    authz.require_operator(actor=actor)
    with transaction.atomic():
        users = list(reviewers)
        wanted = {user.pk for user in users}
        current = set(program.reviewers.values_list("pk", flat=True))
        if wanted == current:
            return
        program.reviewers.set(users)
        audit_record(
            actor=actor,
            verb="program.reviewers",
            target=program,
            before={"reviewers": sorted(str(pk) for pk in current)},
            after={"reviewers": sorted(str(pk) for pk in wanted)},
        )
