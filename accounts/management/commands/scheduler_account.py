"""Create the scheduler service account of a usage source, and issue it a token.

    manage.py scheduler_account slurm-narvik --issue-token > slurm-narvik.token

The account is created if it does not exist (an existing one is kept); with
`--issue-token` a new `usage:write` token is issued and only its secret is written to
standard output (shown once), so a deployment script can store it where the scheduler's
usage exporter reads it.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts import services
from accounts.authz import SYSTEM
from accounts.models import User, validate_scheduler_source


class Command(BaseCommand):
    help = "Create a scheduler service account for one usage source; optionally issue a token."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("source", help="The usage source (one cluster), e.g. slurm-narvik.")
        parser.add_argument("--name", default="", help="A name to recognise the account by.")
        parser.add_argument(
            "--issue-token",
            action="store_true",
            help="Issue a usage:write token and print its secret (shown once).",
        )
        parser.add_argument("--token-name", default="scheduler", help="The token's name.")
        parser.add_argument(
            "--expires-in-days",
            type=int,
            default=None,
            help=f"Days until the token expires (at most {settings.PORTAL_TOKEN_MAX_DAYS}).",
        )

    def handle(self, *args: Any, source: str, name: str, issue_token: bool, token_name: str,
               expires_in_days: int | None, **options: Any) -> None:  # fmt: skip
        try:
            validate_scheduler_source(source)
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from error
        days = expires_in_days
        if days is not None and not 1 <= days <= settings.PORTAL_TOKEN_MAX_DAYS:
            raise CommandError(f"--expires-in-days is 1 to {settings.PORTAL_TOKEN_MAX_DAYS}.")
        account = User.objects.filter(scheduler_source=source).first()
        if account is None:
            account = services.scheduler_account_create(source=source, name=name, actor=SYSTEM)
            self.stderr.write(f"Created the scheduler account {account.email} for {source}.")
        else:
            self.stderr.write(f"The scheduler account {account.email} for {source} exists.")
        if issue_token:
            issued = services.scheduler_token_issue(
                account=account, actor=SYSTEM, name=token_name, expires_in_days=days
            )
            self.stderr.write(
                f"Issued token {issued.token.prefix}… expiring "
                f"{issued.token.expires_at:%Y-%m-%d}; store it now, it is shown once."
            )
            self.stdout.write(issued.secret)
