#!/usr/bin/env python
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    if "DJANGO_SECRET_KEY" not in os.environ:
        # No secret given: this is the embedded default on a developer's machine, which needs
        # no variable set. Production sets the secret, and DEBUG stays off there.
        os.environ.setdefault("DJANGO_DEBUG", "true")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
