"""A small typed client of the portal's REST API (v1), on httpx.

Hand-written rather than generated: the API is small and stable, and a page of plain code
reads better than a generated package; every call maps one operation of /api/schema/.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

API = "/api/v1"
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Answers worth another try, after Retry-After: the database or broker away for a moment
# (503 `unavailable`), or the first try of this very write still being answered.
RETRIED_CODES = frozenset({"unavailable", "idempotency_key_in_use"})
MAX_WAIT_SECONDS = 30.0


@dataclass
class ApiError(Exception):
    """An error answer of the portal: its HTTP status, stable code and message."""

    status: int
    code: str
    message: str
    fields: dict[str, list[dict[str, str]]] = field(default_factory=dict)

    def __str__(self) -> str:
        lines = [f"{self.message} ({self.code})"]
        for name, errors in self.fields.items():
            lines += [f"  {name}: {error['message']} ({error['code']})" for error in errors]
        return "\n".join(lines)


class Unreachable(Exception):
    """The portal did not answer."""


def _retried(response: httpx.Response) -> bool:
    if response.status_code not in (409, 503):
        return False
    try:
        return response.json().get("code") in RETRIED_CODES
    except ValueError:
        return response.status_code == 503


def _retry_after(response: httpx.Response, *, default: float) -> float:
    try:
        return min(max(float(response.headers.get("Retry-After", default)), 0.0), MAX_WAIT_SECONDS)
    except ValueError:
        return default


def _expiring(body: dict[str, Any], days: int | None) -> dict[str, Any]:
    """A token's body, with its lifetime when one is asked for (else the portal's default)."""
    return {**body, "expires_in_days": days} if days else body


class PortalClient:
    """`retries`: how many more times a request is sent after a dropped connection, a
    timeout, or a 503; every write carries an Idempotency-Key that its retries repeat, so
    that a write the portal did receive takes effect once and its retry gets its answer."""

    def __init__(
        self, url: str, token: str | None = None, *, timeout: float = 30, retries: int = 3
    ) -> None:
        headers = {"Accept": "application/json", "User-Agent": "portal-cli/1"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout)
        self.retries = retries

    def request(self, method: str, path: str, *, retry: bool = True, **kwargs: Any) -> Any:
        """One call; a write gets a fresh Idempotency-Key, the same for all its tries."""
        headers = dict(kwargs.pop("headers", None) or {})
        if method in WRITES:
            headers.setdefault("Idempotency-Key", str(uuid.uuid4()))
        tries = 1 + (self.retries if retry else 0)
        for attempt in range(1, tries + 1):
            wait = min(0.25 * 2 ** (attempt - 1), MAX_WAIT_SECONDS)
            try:
                response = self.http.request(method, f"{API}/{path}", headers=headers, **kwargs)
            except httpx.TransportError as error:
                # Refused, reset, cut or timed out: whether a write arrived is unknown, and its
                # key makes the retry safe.
                if attempt < tries:
                    time.sleep(wait)
                    continue
                raise Unreachable(f"{self.http.base_url}: {error}") from error
            except httpx.HTTPError as error:
                raise Unreachable(f"{self.http.base_url}: {error}") from error
            if attempt < tries and _retried(response):
                time.sleep(_retry_after(response, default=wait))
                continue
            break
        if response.status_code == 204:
            return None
        try:
            body = response.json()
        except ValueError:
            # Never a page of HTML on the terminal: say what answered instead.
            kind = response.headers.get("content-type", "no content type").split(";")[0]
            body = {
                "code": "not_found" if response.status_code == 404 else "server_error",
                "message": f"the portal answered HTTP {response.status_code} with {kind}, "
                "not the API's JSON (is the URL the portal's?)",
            }
        if response.status_code >= 400:
            raise ApiError(
                response.status_code,
                body.get("code", "error"),
                body.get("message", ""),
                body.get("fields", {}),
            )
        return body

    def pages(self, path: str, **params: Any) -> list[dict[str, Any]]:
        """Every item of a paginated list, following each page's `next` link (its query: a
        page number on the small lists, a cursor on the large ones)."""
        items: list[dict[str, Any]] = []
        query: dict[str, Any] = {**params, "page_size": 500}
        while True:
            body = self.request("GET", path, params=query)
            items += body["results"]
            if not body["next"]:
                return items
            query = dict(parse_qsl(urlsplit(body["next"]).query))

    # --- auth and tokens
    def token_obtain(self, *, email: str, password: str, name: str, scope: str = "full") -> Any:
        # Not retried: a sign-in has no user to scope a key to, and a retry would make a
        # second token.
        return self.request(
            "POST",
            "auth/token/",
            retry=False,
            json={"email": email, "password": password, "name": name, "scope": scope},
        )

    def me(self) -> Any:
        return self.request("GET", "me/")

    def tokens(self) -> list[dict[str, Any]]:
        return self.pages("tokens/")

    def token_create(self, *, name: str, scope: str, days: int | None) -> Any:
        return self.request("POST", "tokens/", json=_expiring({"name": name, "scope": scope}, days))

    def token_revoke(self, token_id: str) -> None:
        self.request("DELETE", f"tokens/{token_id}/")

    def invitations(self) -> list[dict[str, Any]]:
        return self.pages("invitations/")

    def invitation_accept(self, invitation_id: str) -> Any:
        return self.request("POST", f"invitations/{invitation_id}/accept/")

    def invitation_decline(self, invitation_id: str) -> Any:
        return self.request("POST", f"invitations/{invitation_id}/decline/")

    # --- scheduler service accounts (operators)
    def scheduler_accounts(self) -> list[dict[str, Any]]:
        return self.pages("scheduler-accounts/")

    def scheduler_account_create(self, *, source: str, name: str = "") -> Any:
        return self.request("POST", "scheduler-accounts/", json={"source": source, "name": name})

    def scheduler_token_issue(
        self, account_id: str, *, name: str = "scheduler", days: int | None = None
    ) -> Any:
        path = f"scheduler-accounts/{account_id}/tokens/"
        return self.request("POST", path, json=_expiring({"name": name}, days))

    # --- the supply
    def programs(self) -> list[dict[str, Any]]:
        return self.pages("programs/")

    def pools(self) -> list[dict[str, Any]]:
        return self.pages("pools/")

    def capacity(self, *, pool: str, start: str | None, end: str | None) -> Any:
        params = {
            "pool": pool,
            **({"start": start} if start else {}),
            **({"end": end} if end else {}),
        }
        return self.request("GET", "capacity/", params=params)

    # --- the demand
    def application_create(self, data: dict[str, Any]) -> Any:
        return self.request("POST", "applications/", json=data)

    def application_submit(self, application_id: str) -> Any:
        return self.request("POST", f"applications/{application_id}/submit/")

    def application(self, application_id: str) -> Any:
        return self.request("GET", f"applications/{application_id}/")

    def applications(self, **filters: str) -> list[dict[str, Any]]:
        return self.pages("applications/", **filters)

    def application_withdraw(self, application_id: str) -> Any:
        return self.request("POST", f"applications/{application_id}/withdraw/")

    def allocations(self) -> list[dict[str, Any]]:
        return self.pages("allocations/")

    def allocation(self, allocation_id: str) -> Any:
        return self.request("GET", f"allocations/{allocation_id}/")

    def release(self, allocation_id: str) -> Any:
        return self.request("POST", f"allocations/{allocation_id}/release/")

    def usage_post(self, records: list[dict[str, Any]]) -> Any:
        return self.request("POST", "usage/", json={"records": records})
