"""Settings of the portal, read from environment variables only.

Every variable is listed in `.env.example`. With none set the portal runs on its embedded
default: SQLite and a filesystem Celery broker under `var/`. Production secrets have no
defaults: with `DJANGO_DEBUG` off, `DJANGO_SECRET_KEY` must be set.
"""

import contextlib
from datetime import timedelta
from pathlib import Path

import django_stubs_ext
import environ
from kombu import Exchange, Queue

from outbox import queues

# Generic classes of Django (ModelAdmin[Model], QuerySet[Model]) subscriptable at run time.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()

VAR_DIR = Path(env.str("PORTAL_VAR_DIR", default=str(BASE_DIR / "var")))

DEBUG = env.bool("DJANGO_DEBUG", default=False)
if DEBUG:
    SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="insecure-embedded-default-only-for-debug")
else:
    SECRET_KEY = env.str("DJANGO_SECRET_KEY")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "rest_framework",
    "django_filters",
    "django_countries",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "accounts",
    "audit",
    "allocations",
    "outbox",
    "pages",
]

MIDDLEWARE = [
    "portal.observability.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The language of pages, emails and API messages: the language cookie, else
    # Accept-Language; a signed-in user's own setting wins (portal.i18n).
    "portal.i18n.NorwegianAcceptLanguageMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "portal.middleware.PortalCommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "portal.i18n.UserLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: turns a locked-out sign-in into its 429.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"
ASGI_APPLICATION = "portal.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "portal" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.oidc",
                "django.template.context_processors.i18n",
            ],
        },
    },
]

# Database: SQLite under var/ by default; PostgreSQL (psycopg 3) in production, e.g.
# DATABASE_URL=postgres://portal:secret@db:5432/portal
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'portal.sqlite3'}"),
}
if env.str("DATABASE_TEST_NAME", default=""):
    # Lets several test runs share one server, each with a database of its own.
    DATABASES["default"]["TEST"] = {"NAME": env.str("DATABASE_TEST_NAME")}
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=0))
# A kept connection is checked before a request reuses it, so that after a database restart
# the first request of each process reconnects instead of failing on the dead connection.
DATABASES["default"].setdefault(
    "CONN_HEALTH_CHECKS", env.bool("DATABASE_CONN_HEALTH_CHECKS", default=True)
)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A database host that drops packets instead of refusing them (a failed node, a network
    # partition) costs a request, `/readyz` or a worker at most this many seconds to find out,
    # not the operating system's minutes of TCP retries.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=5)
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (web, worker) share the file: wait for the write lock instead of
    # failing at once, and take it at the start of each transaction.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
PASSWORD_HASHERS = env.list(
    "DJANGO_PASSWORD_HASHERS",
    default=[
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    ],
)

LANGUAGE_CODE = "en"
# Norwegian bokmål and English. Messages live in each app's `locale/` and in portal/locale/;
# the compiled .mo files are committed (`make messages` compiles them in pure Python, no
# gettext needed), and a test fails when one is older than its .po.
LANGUAGES = [("en", "English"), ("nb", "Norsk bokmål")]
LOCALE_PATHS = [BASE_DIR / "portal" / "locale"]
TIME_ZONE = env.str("DJANGO_TIME_ZONE", default="Europe/Oslo")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("DJANGO_STATIC_ROOT", default=str(VAR_DIR / "static")))
# The embedded default keeps its database, broker and static files under var/.
# A read-only image may refuse: production then points everything elsewhere.
for _directory in (VAR_DIR, STATIC_ROOT):
    with contextlib.suppress(OSError):
        _directory.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# Email: SMTP in production via EMAIL_URL, e.g. smtp+tls://user:password@smtp.example.org:587;
# without it each mail is written to the log at INFO, readable (portal/mail.py).
if env.str("EMAIL_URL", default=""):
    vars().update(env.email_url("EMAIL_URL"))
else:
    EMAIL_BACKEND = "portal.mail.LoggingEmailBackend"
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="GPU portal <noreply@localhost>")
# Where people reach the portal: links in emails start with it.
PORTAL_PUBLIC_URL = env.str("PORTAL_PUBLIC_URL", default="http://127.0.0.1:8000").rstrip("/")

# How many reverse proxies stand in front of the web processes, each appending the address it
# saw to X-Forwarded-For. 0 (the default): the header is ignored and the client is the
# connection's address. Rate limits and the login lockout key on the address found so.
PORTAL_TRUSTED_PROXIES = env.int("PORTAL_TRUSTED_PROXIES", default=0)

# Password sign-ins (the admin's login page and POST auth/token/) lock out a user from one
# address after this many failures within the window (django-axes, counted in the database).
AXES_FAILURE_LIMIT = env.int("PORTAL_LOGIN_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("PORTAL_LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "portal.observability.client_address"
AXES_USERNAME_FORM_FIELD = "username"  # the admin login form's; the API passes it too
AXES_USERNAME_CALLABLE = "portal.observability.sign_in_username"
AXES_LOCKOUT_CALLABLE = "portal.errors.locked_out"
# Successful sign-ins are in the audit trail (tokens) and the session table already.
AXES_DISABLE_ACCESS_LOG = True
AXES_VERBOSE = False  # no banner on every start; lockouts still log a warning

# Security: secure defaults outside DEBUG; behind a TLS-terminating proxy set
# DJANGO_SECURE_PROXY_SSL_HEADER=true.
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
if env.bool("DJANGO_SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Sign-in for people with OpenID Connect (Feide, eduGAIN and other providers speak it), for
# the admin and the browsable docs; off unless PORTAL_OIDC_ENABLED. Tokens stay the way for
# client tools.
PORTAL_OIDC_ENABLED = env.bool("PORTAL_OIDC_ENABLED", default=False)
AUTHENTICATION_BACKENDS = [
    # Refuses password sign-ins (admin and API) while their user and address are locked out.
    "accounts.backends.SignInLockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]
if PORTAL_OIDC_ENABLED:
    INSTALLED_APPS.append("mozilla_django_oidc")
    AUTHENTICATION_BACKENDS.insert(0, "accounts.oidc.PortalOIDCBackend")
    OIDC_RP_CLIENT_ID = env.str("OIDC_RP_CLIENT_ID")
    OIDC_RP_CLIENT_SECRET = env.str("OIDC_RP_CLIENT_SECRET")
    OIDC_RP_SIGN_ALGO = env.str("OIDC_RP_SIGN_ALGO", default="RS256")
    OIDC_RP_SCOPES = env.str("OIDC_RP_SCOPES", default="openid email profile")
    OIDC_OP_AUTHORIZATION_ENDPOINT = env.str("OIDC_OP_AUTHORIZATION_ENDPOINT")
    OIDC_OP_TOKEN_ENDPOINT = env.str("OIDC_OP_TOKEN_ENDPOINT")
    OIDC_OP_USER_ENDPOINT = env.str("OIDC_OP_USER_ENDPOINT")
    OIDC_OP_JWKS_ENDPOINT = env.str("OIDC_OP_JWKS_ENDPOINT", default="")
    PORTAL_OIDC_PROVIDER_NAME = env.str("PORTAL_OIDC_PROVIDER_NAME", default="Feide")
    LOGIN_REDIRECT_URL = "/admin/"
    LOGOUT_REDIRECT_URL = "/"

# REST framework: deny by default; errors rendered by one handler.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "accounts.permissions.TokenScopeAllowed",
    ],
    "DEFAULT_RENDERER_CLASSES": ["portal.renderers.PortalJSONRenderer"]
    + (["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
    "DEFAULT_PARSER_CLASSES": ["portal.parsers.PortalJSONParser"],
    "DEFAULT_FILTER_BACKENDS": ["portal.filters.PortalFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "portal.pagination.PortalPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "portal.schema.PortalAutoSchema",
    "EXCEPTION_HANDLER": "portal.errors.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "portal.observability.UserRateThrottle",
        "portal.observability.AddressRateThrottle",
        "portal.observability.LoginEmailThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "user": env.str("PORTAL_RATE_LIMIT", default="1200/minute"),
        "address": env.str("PORTAL_ADDRESS_RATE_LIMIT", default="3000/minute"),
        "usage": env.str("PORTAL_USAGE_RATE_LIMIT", default="600/minute"),
        "login": env.str("PORTAL_LOGIN_RATE_LIMIT", default="20/minute"),
        "login_email": env.str("PORTAL_LOGIN_EMAIL_RATE_LIMIT", default="10/minute"),
    },
    # The client's address: see PORTAL_TRUSTED_PROXIES below.
    "NUM_PROXIES": env.int("PORTAL_TRUSTED_PROXIES", default=0),
    "DATETIME_FORMAT": "iso-8601",
    "COERCE_DECIMAL_TO_STRING": True,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

from portal.apidocs.tags import TAGS as API_TAGS  # noqa: E402

SPECTACULAR_SETTINGS = {
    "TITLE": "Priority-access compute portal API",
    "DESCRIPTION": (
        "Apply for GPU-hour allocations on a sovereign AI datacenter. Norwegian researchers "
        "and startups first, the EEA next, commercial users last. Authenticate with "
        "`Authorization: Bearer <token>` (get one from `POST /api/v1/auth/token/`). Every "
        "error is JSON with a stable `code`; validation errors carry per-field codes."
    ),
    "VERSION": "1.0.0",
    "CONTACT": {"name": "Narvik site operations", "email": "operator@narvik.example"},
    "SERVERS": [{"url": "/", "description": "This portal"}],
    # The journey's order (portal.apidocs.tags), then each tag's operations in URL order.
    "TAGS": API_TAGS,
    "SORT_OPERATIONS": False,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "portal.apidocs.hooks.postprocess",
    ],
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "OrganizationKindEnum": "accounts.models.OrganizationKind",
        "MembershipRoleEnum": "accounts.models.MembershipRole",
        "TokenScopeEnum": "accounts.models.TokenScope",
        "InvitationStatusEnum": "accounts.models.InvitationStatus",
        "CountryEnum": "django_countries.countries",
        "ApplicationKindEnum": "allocations.models.ApplicationKind",
        "ApplicationStatusEnum": "allocations.models.ApplicationStatus",
        "AllocationStatusEnum": "allocations.models.AllocationStatus",
        "RiskCategoryEnum": "allocations.models.RiskCategory",
    },
}

# Celery: a filesystem broker under var/ by default (no server needed);
# redis://… or amqp://… in production.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://localhost/")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
        "control_folder": str(_broker_dir / "control"),
    }
    for _directory in (_broker_dir / "queue", _broker_dir / "processed", _broker_dir / "control"):
        with contextlib.suppress(OSError):
            _directory.mkdir(parents=True, exist_ok=True)
else:
    # Redis redelivers a message a dead worker held after this many seconds.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600)
    }
# One queue per kind of work (outbox/queues.py), each bound to its own exchange by its own
# routing key, so that a message lands in its queue only. A worker started without -Q takes
# them all (the embedded default); production runs a worker group per queue.
CELERY_TASK_DEFAULT_QUEUE = queues.DEFAULT
CELERY_TASK_QUEUES = tuple(
    Queue(name, Exchange(name, type="direct"), routing_key=name) for name in queues.ALL
)
CELERY_TASK_ROUTES = {
    "allocations.tasks.decide_application": {"queue": queues.DECISIONS},
    "allocations.tasks.recheck_waitlist": {"queue": queues.DECISIONS},
    "allocations.tasks.run_backend_call": {"queue": queues.SCHEDULER},
    "allocations.tasks.notify_*": {"queue": queues.MAIL},
    "accounts.tasks.notify_organization_verified": {"queue": queues.MAIL},
    "accounts.tasks.send_invitation": {"queue": queues.MAIL},
}
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=300)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=240)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A worker whose broker is away keeps trying (every CELERY_BROKER_RECONNECT_SECONDS, see
# portal/celery.py) however long it is away: its relay thread keeps the outbox meanwhile.
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_BROKER_CONNECTION_TIMEOUT = env.float("CELERY_BROKER_CONNECTION_TIMEOUT", default=4.0)
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_TIMEZONE = TIME_ZONE


def _periodic(task: str, **every: int) -> dict[str, object]:
    """A beat entry: `task` run every `timedelta(**every)`."""
    return {"task": task, "schedule": timedelta(**every)}


# Periodic tasks, one schedule; each entry says why it runs.
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    # Expired personal access tokens are useless and only grow the table: purge them daily.
    "purge-expired-tokens": _periodic("accounts.tasks.purge_expired_tokens", hours=24),
    # Idempotency keys are kept PORTAL_IDEMPOTENCY_KEY_HOURS; expired ones only grow the table.
    "purge-expired-idempotency-keys": _periodic(
        "accounts.tasks.purge_expired_idempotency_keys", hours=1
    ),
    # A broker can lose a message and a worker can die: nothing stays `submitted` for long.
    "requeue-stale-applications": _periodic(
        "allocations.tasks.requeue_stale_applications", seconds=60
    ),
    # Capacity also frees without an event we hear of (a hold expiring, a day passing):
    # look at every waitlist now and then.
    "recheck-all-waitlists": _periodic("allocations.tasks.recheck_all_waitlists", minutes=10),
    # Allocations start and expire by the calendar; hourly, so a missed run costs an hour.
    "advance-allocations": _periodic("allocations.tasks.advance_allocations", hours=1),
    # The scheduler's usage, pulled as well as posted (posting twice counts once).
    "pull-usage": _periodic("allocations.tasks.pull_usage", minutes=15),
    # Limits or users changed by hand on the cluster: found and shown on /metrics (drift is
    # mended by an operator with `manage.py scheduler_reconcile --apply`).
    "check-scheduler": _periodic("allocations.tasks.check_scheduler", minutes=15),
    # Finished outbox rows are kept a week for operators to read, then only grow the table.
    "purge-outbox": _periodic("outbox.tasks.purge_effects", hours=1),
    # Holds and waitlist places end when the window starts without a decision.
    "expire-holds": _periodic("allocations.tasks.expire_holds", hours=1),
}
# Seconds an application may wait in `submitted` before the beat queues its decision again.
PORTAL_DECISION_TIMEOUT_SECONDS = env.int("PORTAL_DECISION_TIMEOUT_SECONDS", default=120)

# The transactional outbox (outbox/). Every worker runs a relay thread that publishes pending
# effects every PORTAL_OUTBOX_POLL_SECONDS and writes the worker's heartbeat every
# PORTAL_OUTBOX_HEARTBEAT_SECONDS. An effect claimed by a worker unseen for
# PORTAL_OUTBOX_WORKER_TIMEOUT_SECONDS (a SIGKILL, a lost host), or past its lease, is
# published again; so is one never taken by a worker while its queue is empty (a broker
# that lost its messages), or not taken for PORTAL_OUTBOX_UNCLAIMED_SECONDS at all.
PORTAL_OUTBOX_RELAY_IN_WORKER = env.bool("PORTAL_OUTBOX_RELAY_IN_WORKER", default=True)
PORTAL_OUTBOX_POLL_SECONDS = env.float("PORTAL_OUTBOX_POLL_SECONDS", default=0.5)
PORTAL_OUTBOX_HEARTBEAT_SECONDS = env.float("PORTAL_OUTBOX_HEARTBEAT_SECONDS", default=2)
PORTAL_OUTBOX_WORKER_TIMEOUT_SECONDS = env.int("PORTAL_OUTBOX_WORKER_TIMEOUT_SECONDS", default=10)
PORTAL_OUTBOX_LEASE_SECONDS = env.int(
    "PORTAL_OUTBOX_LEASE_SECONDS", default=CELERY_TASK_TIME_LIMIT + 60
)
PORTAL_OUTBOX_UNCLAIMED_SECONDS = env.int("PORTAL_OUTBOX_UNCLAIMED_SECONDS", default=600)
PORTAL_OUTBOX_BATCH = env.int("PORTAL_OUTBOX_BATCH", default=200)
PORTAL_OUTBOX_KEEP_DAYS = env.int("PORTAL_OUTBOX_KEEP_DAYS", default=7)

# Usage and the scheduler.
# The backend that carries out limits and suspensions: records calls by default;
# allocations.backends.slurm.SlurmBackend runs sacctmgr and sacct on the worker's host.
PORTAL_SCHEDULER_BACKEND = env.str(
    "PORTAL_SCHEDULER_BACKEND", default="allocations.backends.recording.RecordingBackend"
)
PORTAL_SLURM_CLUSTER = env.str("PORTAL_SLURM_CLUSTER", default="narvik")
# The usage source the beat's pull ingests under, as that cluster's scheduler account posts.
PORTAL_SLURM_SOURCE = env.str("PORTAL_SLURM_SOURCE", default="slurm-narvik")
# How long a QOS write waits for slurmctld to register the gres/gpu TRES (it does so when it
# starts) before the call fails and is retried with backoff.
PORTAL_SLURM_TRES_WAIT_SECONDS = env.int("PORTAL_SLURM_TRES_WAIT_SECONDS", default=30)
# Usage may lie this many hours outside its allocation's window (jobs that straddle it).
PORTAL_USAGE_GRACE_HOURS = env.int("PORTAL_USAGE_GRACE_HOURS", default=24)

# Personal access tokens.
PORTAL_TOKEN_DEFAULT_DAYS = env.int("PORTAL_TOKEN_DEFAULT_DAYS", default=90)
PORTAL_TOKEN_MAX_DAYS = env.int("PORTAL_TOKEN_MAX_DAYS", default=366)
# Hours an Idempotency-Key is kept: a retry within them replays the first answer; after them
# the key is forgotten (and deleted by the beat).
PORTAL_IDEMPOTENCY_KEY_HOURS = env.int("PORTAL_IDEMPOTENCY_KEY_HOURS", default=24)
# Invitations to join an organization can be answered for this many days.
PORTAL_INVITATION_DAYS = env.int("PORTAL_INVITATION_DAYS", default=14)

# The cache holds the API's rate-limit counters: shared by all web processes in production
# (CACHE_URL=redis://…/1), per process by default.
CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://")}
if CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
    # A Redis that is away must cost a request a moment, not hang it: the rate limits then
    # let requests through (portal.observability).
    CACHES["default"].setdefault("OPTIONS", {}).update(
        {
            "socket_connect_timeout": env.float("CACHE_TIMEOUT_SECONDS", default=0.5),
            "socket_timeout": env.float("CACHE_TIMEOUT_SECONDS", default=0.5),
        }
    )

# Seconds a client is told to wait (Retry-After) when the database or the broker is away and
# the API answers 503 `unavailable`.
PORTAL_RETRY_AFTER_SECONDS = env.int("PORTAL_RETRY_AFTER_SECONDS", default=5)

# Logs: one JSON object a line with the request id outside DEBUG (DJANGO_LOG_FORMAT=plain
# for people); the request id comes from X-Request-ID or is made, and is answered back.
LOG_FORMAT = env.str("DJANGO_LOG_FORMAT", default="plain" if DEBUG else "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "portal.observability.RequestIdFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("DJANGO_LOG_LEVEL", default="INFO")},
}
# /metrics answers only to `Authorization: Bearer <this>`; unset, it is closed (404) outside
# DEBUG and open under DEBUG (the embedded default).
PORTAL_METRICS_TOKEN = env.str("PORTAL_METRICS_TOKEN", default="")
