"""Idempotency keys on the API's writes, the Stripe kind.

A client sends `Idempotency-Key: <a fresh UUID>` with a write it may have to retry (a dropped
connection, a 503). The first request with that key acts and its answer is kept; a retry
with the same key, by the same user, on the same path with the same body is answered with
that answer again (and `Idempotent-Replayed: true`) without acting again. The same key with
another path or body is refused (422 `idempotency_key_reused`); a retry while the first is
still being answered gets 409 `idempotency_key_in_use` with Retry-After. Keys are per user
and expire after PORTAL_IDEMPOTENCY_KEY_HOURS (24 by default); a beat task deletes them.

Exactly one effect, whatever fails: the key's row is written in the same transaction as the
write's effect. A request that dies before its commit (a killed process, a database that
went away) leaves neither, and its retry acts afresh; one that committed left both, and its
retry replays. Only successful answers (2xx) are kept: a refused write changed nothing, so
a retry with its key is simply tried again.

Concurrency: on PostgreSQL a transaction-scoped advisory lock on (user, key) is tried first,
so that a concurrent retry is answered 409 at once instead of queueing behind the first; on
SQLite writes are serialized already (the retry waits, then replays).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.cache import patch_cache_control
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from portal.errors import IdempotencyKeyInUse, IdempotencyKeyInvalid, IdempotencyKeyReused

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
_VALID_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
# Answer headers that a replay repeats.
_KEPT_HEADERS = ("Cache-Control", "Location")

Handler = TypeVar("Handler", bound=Callable[..., Response])


def idempotent(handler: Handler) -> Handler:
    """Mark a view's write method as accepting an Idempotency-Key (and document it in the
    schema). Runs after authentication, permissions and rate limits: a key is per user."""

    @functools.wraps(handler)
    def wrapper(view: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
        key = request.headers.get(HEADER)
        if key is None:
            return handler(view, request, *args, **kwargs)
        if not _VALID_KEY.match(key):
            raise IdempotencyKeyInvalid()
        return _answer_once(view, request, key, lambda: handler(view, request, *args, **kwargs))

    wrapper.idempotent = True  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


def accepts_idempotency_key(handler: Any) -> bool:
    return bool(getattr(handler, "idempotent", False))


def _answer_once(view: Any, request: Request, key: str, act: Callable[[], Response]) -> Response:
    from accounts.models import IdempotencyKey, User

    user = request.user
    assert isinstance(user, User), "keys are per user: the view requires authentication"
    digest = hashlib.sha256(key.encode()).hexdigest()
    fingerprint = _fingerprint(request)

    with transaction.atomic():
        _lock(user_id=str(user.pk), digest=digest)
        now = timezone.now()
        kept = IdempotencyKey.objects.filter(user_id=user.pk, key_digest=digest).first()
        if kept is not None and kept.expires_at <= now:
            kept.delete()
            kept = None
        if kept is not None:
            if not hmac.compare_digest(kept.fingerprint, fingerprint):
                raise IdempotencyKeyReused()
            return _replay(kept, user_id=str(user.pk), key=key)
        response = act()
        if not 200 <= response.status_code < 300:
            # Not kept, and nothing of it either: a refusal is tried afresh when retried.
            transaction.set_rollback(True)
            return response
        IdempotencyKey.objects.create(
            user_id=user.pk,
            key_digest=digest,
            fingerprint=fingerprint,
            status_code=response.status_code,
            answer=_seal(_kept_answer(response), user_id=str(user.pk), key=key),
            created_at=now,
            expires_at=now + timedelta(hours=settings.PORTAL_IDEMPOTENCY_KEY_HOURS),
        )
    return response


def lock_number(*, user_id: str, digest: str) -> int:
    """The PostgreSQL advisory lock of one user's key (64 bits of a hash)."""
    return int.from_bytes(
        hashlib.sha256(f"idempotency:{user_id}:{digest}".encode()).digest()[:8],
        "big",
        signed=True,
    )


def _lock(*, user_id: str, digest: str) -> None:
    """Take the (user, key) advisory lock for this transaction, or refuse at once."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_try_advisory_xact_lock(%s)", [lock_number(user_id=user_id, digest=digest)]
        )
        (taken,) = cursor.fetchone()
    if not taken:
        raise IdempotencyKeyInUse()


def _fingerprint(request: Request) -> str:
    """What makes two requests the same: method, path (with the object's id) and body, the
    body as parsed (so that spacing and key order do not matter)."""
    data = request.data
    body = data.dict() if hasattr(data, "dict") else data
    canonical = json.dumps(
        {"method": request.method, "path": request.path, "body": body},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _kept_answer(response: Response) -> bytes:
    headers = {name: response[name] for name in _KEPT_HEADERS if response.has_header(name)}
    body = JSONRenderer().render(response.data).decode() if response.data is not None else None
    return json.dumps({"headers": headers, "body": body}).encode()


def _replay(kept: Any, *, user_id: str, key: str) -> Response:
    answer = json.loads(_open(bytes(kept.answer), user_id=user_id, key=key))
    body = json.loads(answer["body"]) if answer["body"] is not None else None
    response = Response(body, status=kept.status_code)
    for name, value in answer["headers"].items():
        response[name] = value
    response[REPLAYED_HEADER] = "true"
    if "Cache-Control" not in answer["headers"]:
        patch_cache_control(response, no_store=True)
    return response


def _fernet(*, user_id: str, key: str) -> Any:
    """Fernet keys derived from SECRET_KEY (and its fallbacks, so that a rotation within a
    key's lifetime still replays) and the client's key: the database alone cannot open an
    answer."""
    from cryptography.fernet import Fernet, MultiFernet

    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return MultiFernet(
        [
            Fernet(
                base64.urlsafe_b64encode(
                    hmac.new(
                        str(secret).encode(),
                        f"idempotency:{user_id}:{key}".encode(),
                        hashlib.sha256,
                    ).digest()
                )
            )
            for secret in secrets
        ]
    )


def _seal(plain: bytes, *, user_id: str, key: str) -> bytes:
    return bytes(_fernet(user_id=user_id, key=key).encrypt(plain))


def _open(sealed: bytes, *, user_id: str, key: str) -> bytes:
    return bytes(_fernet(user_id=user_id, key=key).decrypt(sealed))
