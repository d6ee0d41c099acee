"""Run the outbox relay alone, in the foreground (workers run one each already)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from outbox.relay import Relay


class Command(BaseCommand):
    help = (
        "Publish pending outbox rows and re-drive overdue ones until stopped; --once makes "
        "one pass and prints how many rows were published."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--once", action="store_true", help="one pass, then exit")

    def handle(self, *args: Any, once: bool = False, **options: Any) -> None:
        relay = Relay()
        if once:
            self.stdout.write(str(relay.once()))
            return
        try:
            relay.run()
        except KeyboardInterrupt:
            relay.stop()
