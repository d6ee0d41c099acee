"""Compare what the portal intends with what the scheduler holds; mend it with --apply.

    manage.py scheduler_reconcile           # print the drift, change nothing
    manage.py scheduler_reconcile --apply   # and bring each drifted account to the intent

Accounts, their QOS limit (the grant in GPU-minutes), whether GPU jobs may start, and their
users are compared. Accounts on the cluster that the portal does not know are reported and
never touched. Exits 0 when nothing drifted or all was mended, 1 when drift remains (for
scripts), and 2 when the backend holds no cluster (the recording backend).
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from allocations.backends import BackendError
from allocations.services.scheduler import scheduler_reconcile


class Command(BaseCommand):
    help = "Compare the scheduler's accounts, limits and users with the portal's; --apply mends."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--apply", action="store_true", help="Mend the drift found.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            result = scheduler_reconcile(apply=options["apply"])
        except BackendError as error:
            raise CommandError(f"The scheduler failed: {error}") from error
        if not result.compared:
            raise CommandError(
                "The scheduler backend holds no cluster to compare with.", returncode=2
            )
        for item in result.drift:
            self.stdout.write(
                f"{item['account']} {item['field']}: intended {json.dumps(item['intended'])}, "
                f"held {json.dumps(item['held'])}"
            )
        for account in result.mended:
            self.stdout.write(f"{account}: mended")
        left = len(result.drifted_accounts) - len(result.mended)
        if not result.drift:
            self.stdout.write("No drift.")
        elif left:
            self.stdout.write(
                f"{left} account(s) drifted"
                + ("" if options["apply"] else "; run with --apply to mend them.")
            )
            raise SystemExit(1)
