"""Seed a fault test's database: `python -m tests.faults.seed '<json spec>'` prints JSON.

Runs in a process of its own against the portal's DATABASE_URL (the private cluster), so
that the test process never connects Django to it. The spec:
`{"organizations": 2, "pools": 1, "gpus_per_pool": 1000, "power_mw": "50",
"scheduler_source": "slurm-faults"}`; every key is optional. The answer names each member
with their organization and a `full` token, the pools and programs (ids), and the scheduler
account's `usage:write` token when a source was asked for.
"""

from __future__ import annotations

import json
import sys
from decimal import Decimal
from typing import Any


def seed(spec: dict[str, Any]) -> dict[str, Any]:
    from accounts.authz import SYSTEM
    from accounts.services import scheduler_account_create, scheduler_token_issue, token_create
    from tests.factories import OperatorFactory
    from tests.workers.harness import build_cluster

    cluster = build_cluster(
        pools=int(spec.get("pools", 1)),
        gpus_per_pool=int(spec.get("gpus_per_pool", 1000)),
        power_mw=Decimal(str(spec.get("power_mw", "50"))),
        organizations=int(spec.get("organizations", 2)),
    )
    members = [
        {
            "email": user.email,
            "user": str(user.pk),
            "organization": str(organization.pk),
            "token": token_create(user=user, name="faults").secret,
        }
        for organization, user in cluster.members
    ]
    answer: dict[str, Any] = {
        "members": members,
        "pools": [str(pool.pk) for pool in cluster.pools],
        "programs": [str(program.pk) for program in cluster.programs],
    }
    source = spec.get("scheduler_source")
    if source:
        operator = OperatorFactory()
        account = scheduler_account_create(source=source, actor=SYSTEM)
        answer["scheduler_token"] = scheduler_token_issue(
            account=account, actor=operator, name="faults"
        ).secret
        answer["source"] = source
    return answer


def main() -> None:
    import django

    django.setup()
    spec = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    print(json.dumps(seed(spec)))


if __name__ == "__main__":
    main()
