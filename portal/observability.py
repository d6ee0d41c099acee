"""Request ids in every log line, Prometheus metrics, and the API's rate limits."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

from django.conf import settings
from django.db.models import Count, Min
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from prometheus_client.core import REGISTRY, GaugeMetricFamily
from prometheus_client.registry import Collector
from rest_framework.exceptions import APIException
from rest_framework.throttling import SimpleRateThrottle

logger = logging.getLogger(__name__)
request_id: ContextVar[str] = ContextVar("request_id", default="-")
_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

REQUESTS = Counter(
    "portal_http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
LATENCY = Histogram(
    "portal_http_request_seconds", "Time to answer an HTTP request", ["method", "route"]
)
RATE_LIMIT_UNAVAILABLE = Counter(
    "portal_rate_limit_unavailable",
    "Requests let through unchecked because the rate-limit store (the cache) was unavailable",
    ["limit"],
)
# During an outage every request fails open: one warning with the error per this many
# seconds per process, the rest only counted.
_FAIL_OPEN_LOG_INTERVAL = 60.0
_fail_open_logged_at: dict[str, float] = {}


class RequestIdFilter(logging.Filter):
    """Puts the current request's id on every log record (`-` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


class RequestIdMiddleware:
    """Takes the caller's `X-Request-ID` (or makes one), logs under it and answers with it;
    counts and times each request for /metrics by its URL pattern, not its path."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        given = request.headers.get("X-Request-ID", "")
        # Not reset afterwards: Django logs the response (a 404, a 500) after the middleware
        # returns, and that line should carry the id too. The next request sets its own.
        request_id.set(given if _VALID_ID.match(given) else uuid.uuid4().hex)
        started = time.perf_counter()
        response = self.get_response(request)
        response["X-Request-ID"] = request_id.get()
        # Labels come from fixed sets only, so that no caller can grow the series: the
        # method among the standard ones, the URL pattern (never the path).
        match = getattr(request, "resolver_match", None)
        route = match.route if match is not None else "unmatched"
        method = request.method if request.method in _METHODS else "other"
        REQUESTS.labels(method, route, str(response.status_code)).inc()
        LATENCY.labels(method, route).observe(time.perf_counter() - started)
        return response


class PortalCollector(Collector):
    """Figures read from the database at scrape time, so that every web process reports
    the same ones: applications by status, the oldest undecided submission, the broker's
    queue, and today's capacity and power."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from allocations.models import Application, ApplicationStatus, PoolDay, SiteDay

        by_status = GaugeMetricFamily(
            "portal_applications", "Applications by status", labels=["status"]
        )
        counts = dict(Application.objects.values_list("status").annotate(n=Count("id")).order_by())
        for status in ApplicationStatus.values:
            by_status.add_metric([status], counts.get(status, 0))
        yield by_status

        oldest = Application.objects.filter(status=ApplicationStatus.SUBMITTED).aggregate(
            oldest=Min("submitted_at")
        )["oldest"]
        waiting = GaugeMetricFamily(
            "portal_oldest_submitted_seconds",
            "Age of the oldest application waiting for a worker's decision",
        )
        waiting.add_metric([], (timezone.now() - oldest).total_seconds() if oldest else 0)
        yield waiting

        yield from _queues_and_outbox()

        today = timezone.localdate()
        free = GaugeMetricFamily(
            "portal_pool_free_gpu_hours", "Free GPU-hours today per pool", labels=["pool"]
        )
        for row in PoolDay.objects.filter(day=today).select_related("pool"):
            free.add_metric([row.pool.name], row.capacity_gpu_hours - row.reserved_gpu_hours)
        yield free
        power = GaugeMetricFamily(
            "portal_site_power_mw", "Today's power per site", labels=["site", "kind"]
        )
        for site_day in SiteDay.objects.filter(day=today).select_related("site"):
            power.add_metric([site_day.site.name, "envelope"], site_day.envelope_wh / 24e6)
            power.add_metric([site_day.site.name, "committed"], float(site_day.committed_wh) / 24e6)
        yield power

        yield from _scheduler_drift()


def _scheduler_drift() -> Iterator[GaugeMetricFamily]:
    """The newest comparison of the scheduler with the portal (none with the recording
    backend, which holds no cluster)."""
    from allocations.models import SchedulerCheck

    check = SchedulerCheck.objects.order_by("-checked_at").first()
    if check is None:
        return
    drift = GaugeMetricFamily(
        "portal_scheduler_drifted_accounts",
        "Scheduler accounts whose limits, users or state differ from the portal's",
    )
    drift.add_metric([], check.drifted_accounts)
    yield drift
    checked = GaugeMetricFamily(
        "portal_scheduler_checked_timestamp_seconds", "When the scheduler was last compared"
    )
    checked.add_metric([], check.checked_at.timestamp())
    yield checked


def _queues_and_outbox() -> Iterator[GaugeMetricFamily]:
    """Messages waiting per queue, and the outbox: effects by state, and the age of the
    oldest not yet published (it grows while the broker is away)."""
    from outbox import queues
    from outbox.models import Effect
    from outbox.services import queue_sizes

    sizes = queue_sizes(queues.ALL)
    queue = GaugeMetricFamily(
        "portal_queue_messages", "Messages waiting in each task queue", labels=["queue"]
    )
    for name in queues.ALL:
        queue.add_metric([name], sizes.get(name, float("nan")))
    yield queue
    counts = dict(
        Effect.objects.filter(
            state__in=[Effect.State.PENDING, Effect.State.PUBLISHED, Effect.State.FAILED]
        )
        .values_list("state")
        .annotate(n=Count("id"))
        .order_by()
    )
    effects = GaugeMetricFamily(
        "portal_outbox_effects", "Outbox effects not done, by state", labels=["state"]
    )
    for state in (Effect.State.PENDING, Effect.State.PUBLISHED, Effect.State.FAILED):
        effects.add_metric([state], counts.get(state, 0))
    yield effects
    oldest = Effect.objects.filter(state=Effect.State.PENDING).aggregate(oldest=Min("created_at"))[
        "oldest"
    ]
    pending = GaugeMetricFamily(
        "portal_outbox_oldest_pending_seconds",
        "Age of the oldest side effect not yet published to the broker",
    )
    pending.add_metric([], (timezone.now() - oldest).total_seconds() if oldest else 0)
    yield pending


_collector = PortalCollector()


def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format, to scrapers that send PORTAL_METRICS_TOKEN as Bearer.

    Closed by default: without a token configured it answers 404, except under DEBUG (the
    embedded default), where it is open.
    """
    expected = settings.PORTAL_METRICS_TOKEN
    if not expected:
        if not settings.DEBUG:
            return HttpResponse(status=404)
    else:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), expected.encode()
        ):
            response = HttpResponse(status=401)
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    if _collector not in getattr(REGISTRY, "_collector_to_names", {}):
        REGISTRY.register(_collector)
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)


def client_address(request: Any) -> str:
    """The address of the client, trusting `X-Forwarded-For` only as far as there are
    proxies in front (PORTAL_TRUSTED_PROXIES, DRF's NUM_PROXIES logic): each trusted proxy
    appends the address it saw, so the client is the N-th from the end; anything before it
    the client may have forged. With no proxy (the default) the header is ignored."""
    meta = request.META
    remote = str(meta.get("REMOTE_ADDR") or "")
    proxies = settings.PORTAL_TRUSTED_PROXIES
    forwarded = meta.get("HTTP_X_FORWARDED_FOR")
    if proxies <= 0 or not forwarded:
        return remote
    addresses = [part.strip() for part in str(forwarded).split(",")]
    return addresses[-min(proxies, len(addresses))] or remote


def sign_in_username(request: Any, credentials: dict[str, Any] | None) -> str:
    """The account a sign-in attempt names, in one case, for the lockout's key."""
    given = (credentials or {}).get("username") or (credentials or {}).get("email")
    if not given and request.method == "POST" and request.content_type != "application/json":
        given = request.POST.get("username")
    return str(given or "").strip().lower()


class _PortalThrottle(SimpleRateThrottle):
    """A DRF rate limit whose store failing lets the request through, with a log line: the
    limits protect the portal, an outage of their cache must not take it down."""

    def get_ident(self, request: Any) -> str:
        return client_address(request)

    def allow_request(self, request: Any, view: Any) -> bool:
        try:
            return super().allow_request(request, view)
        except APIException:
            raise  # the request's own fault (a malformed body read for the login's email)
        except Exception as error:
            _fail_open(type(self).__name__, error)
            return True


def _fail_open(limit: str, error: Exception) -> None:
    """Count a request let through because the rate-limit store failed; log it, at most
    once a minute per limit and process."""
    RATE_LIMIT_UNAVAILABLE.labels(limit).inc()
    now = time.monotonic()
    last = _fail_open_logged_at.get(limit)
    if last is None or now - last >= _FAIL_OPEN_LOG_INTERVAL:
        _fail_open_logged_at[limit] = now
        logger.warning(
            "rate limit store unavailable; requests let through unchecked (%s: %s: %s); "
            "counted in portal_rate_limit_unavailable_total",
            limit,
            type(error).__name__,
            error,
        )


class UserRateThrottle(_PortalThrottle):
    """A rate per user, whichever of its tokens or its session it uses (minting tokens does
    not multiply it), per address for anyone signed out; a view may name a scope of its own
    (`usage`, `login`)."""

    scope = "user"

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        if getattr(view, "throttle_scope", None):
            self.scope = view.throttle_scope
            self.rate = self.get_rate()
            self.num_requests, self.duration = self.parse_rate(self.rate)
        if request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"address:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class AddressRateThrottle(_PortalThrottle):
    """A rate per client address, whoever is signed in: many accounts from one address
    share it. Generous, as a university's users may share one address."""

    scope = "address"

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class LoginEmailThrottle(_PortalThrottle):
    """On the password login (a view with `throttle_scope = "login"`), a rate per target
    email, whatever address the attempts come from."""

    scope = "login_email"

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        if getattr(view, "throttle_scope", None) != "login":
            return None
        data = request.data
        email = data.get("email") if isinstance(data, dict) else None
        if not isinstance(email, str) or not email.strip():
            return None
        digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()
        return self.cache_format % {"scope": self.scope, "ident": digest}


THROTTLES = (UserRateThrottle, AddressRateThrottle, LoginEmailThrottle)
