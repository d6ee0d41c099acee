#!/bin/sh
# Run once per release, before the new web and workers start.
set -eu
python manage.py migrate --noinput
python manage.py check --deploy  # warnings are printed; errors stop the release
