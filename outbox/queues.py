"""The Celery queues, one per kind of work, so that a slow kind never delays another:
decisions (and waitlist re-checks), scheduler calls, mail, and `celery` for the rest (the
beat's periodic tasks). Imported by the settings: no Django here."""

DEFAULT = "celery"
DECISIONS = "decisions"
SCHEDULER = "scheduler"
MAIL = "mail"
ALL = (DEFAULT, DECISIONS, SCHEDULER, MAIL)
