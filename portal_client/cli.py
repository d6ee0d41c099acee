"""The `portal` command: apply for GPU-hours and follow them without writing HTTP.

Exit codes, for scripts:
  0  done (for `watch` and `apply --watch`: approved)
  1  the portal refused the request (invalid fields, an illegal move)
  2  the command line is wrong
  3  not signed in, or not allowed
  4  not found
  5  the portal cannot be reached, or failed
  6  decided, and not approved (rejected or withdrawn)
  7  still undecided when `watch` gave up
  8  in review: a reviewer decides next
  9  waitlisted: it is decided again when capacity frees
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
import yaml
from rich.console import Console
from rich.table import Table

from portal_client import config
from portal_client.api import ApiError, PortalClient, Unreachable

EXIT_CODES = (
    "Exit codes: 0 done (watch: approved), 1 refused by the portal, 2 bad command line, "
    "3 not signed in or not allowed, 4 not found, 5 portal unreachable or failing, "
    "6 rejected or withdrawn, 7 still undecided, 8 in review, 9 waitlisted."
)
app = typer.Typer(
    help="Apply for GPU-hours on the priority-access compute portal.",
    epilog=EXIT_CODES,
    no_args_is_help=True,
    add_completion=False,
)
tokens_app = typer.Typer(help="List, create and revoke your personal access tokens.")
app.add_typer(tokens_app, name="tokens")
scheduler_app = typer.Typer(
    help="Scheduler service accounts and their usage:write tokens (operators)."
)
app.add_typer(scheduler_app, name="scheduler")
invitations_app = typer.Typer(help="Invitations to join organizations: list, accept, decline.")
app.add_typer(invitations_app, name="invitations")
# Piped into a file or another program, tables are laid out 160 columns wide (COLUMNS says
# otherwise), not the 80 of a terminal that is not there; --json is the format for scripts.
out = Console(width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 160)
err = Console(stderr=True)

WATCH_EXIT = {"approved": 0, "rejected": 6, "withdrawn": 6, "in_review": 8, "waitlisted": 9}
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
YesOption = Annotated[bool, typer.Option("--yes", help="Do not ask.")]


class State:
    json = False


def _fail(message: str, code: int) -> NoReturn:
    err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)


def _client() -> PortalClient:
    settings = config.load()
    url = os.environ.get("PORTAL_URL") or settings.get("url")
    token = os.environ.get("PORTAL_TOKEN") or settings.get("token")
    if not url or not token:
        _fail("not signed in: run `portal login` first (or set PORTAL_URL and PORTAL_TOKEN).", 3)
    return PortalClient(url, token)


def _call(function: Any, *args: Any, **kwargs: Any) -> Any:
    """Run one API call; turn its failure into a clear message and an exit code."""
    try:
        return function(*args, **kwargs)
    except ApiError as error:
        code = {401: 3, 403: 3, 404: 4}.get(error.status, 5 if error.status >= 500 else 1)
        _fail(str(error), code)
    except Unreachable as error:
        _fail(f"the portal cannot be reached: {error}", 5)


def _emit(data: Any, shown: Table | str | None, as_json: bool) -> None:
    """The answer: as JSON with --json, else as `shown` (a table or a line), if any."""
    if as_json:
        out.print_json(json.dumps(data, default=str))
    elif shown is not None:
        out.print(shown)


def _shown_once(issued: dict[str, Any]) -> str:
    return f"{issued['token']}\n(shown once; expires {issued['expires_at'][:10]})"


# Columns whose values are identifiers: never wrapped or folded (a split UUID or slug cannot
# be copied back); free texts wrap instead.
UNBROKEN = {"id", "slug", "pool", "program", "status", "start", "end", "day", "prefix", "source",
            "expires", "window"}  # fmt: skip
NUMERIC = {"GPU-hours", "granted", "used", "remaining", "capacity", "committed", "held", "free",
           "auto-approve", "max days", "prio", "days to decide", "envelope MW", "committed MW",
           "place"}  # fmt: skip


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> Table:
    """Identifiers and numbers keep their full width (their column never narrower than its
    longest value); free texts (names, titles) wrap into what is left."""
    cells = [[("" if value is None else str(value)) for value in row] for row in rows]
    table = Table(title=title, title_justify="left")
    for index, column in enumerate(columns):
        widest = max((len(row[index]) for row in cells), default=0)
        header = max((len(word) for word in column.split()), default=0)
        if column in UNBROKEN or column in NUMERIC:
            table.add_column(
                column,
                justify="right" if column in NUMERIC else "left",
                no_wrap=True,
                min_width=max(widest, header),
            )
        else:
            table.add_column(column, overflow="fold", ratio=1, min_width=min(widest, 12))
    for row in cells:
        table.add_row(*row)
    return table


def hours(value: Any) -> str:
    """GPU-hours (or any quantity) the one way: thousands grouped with commas, decimals only
    when there are any (5,000 and 1,234.50, never 5000.00)."""
    if value is None or value == "":
        return ""
    number = Decimal(str(value))
    if number == number.to_integral_value():
        return f"{int(number):,}"
    return f"{number:,.2f}"


def short(identifier: Any) -> str:
    """The first 8 hex digits of a UUID, as tables show it; commands take it back."""
    return str(identifier)[:8]


@app.command()
def login(
    url: Annotated[str, typer.Option(help="The portal, e.g. https://portal.example.org")],
    email: Annotated[str, typer.Option(prompt=True)],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True)],
    name: Annotated[str, typer.Option(help="A name for the token.")] = "portal-cli",
) -> None:
    """Sign in and keep a token in your config directory (readable by you only)."""
    issued = _call(PortalClient(url).token_obtain, email=email, password=password, name=name)
    path = config.save({"url": url, "token": issued["token"]})
    out.print(f"Signed in as {email}; token {issued['prefix']}… saved in {path} "
              f"(expires {issued['expires_at'][:10]}).")  # fmt: skip


@app.command()
def programs(as_json: JsonOption = False) -> None:
    """The open programs and their rules."""
    items = _call(_client().programs)
    rows = [
        [p["priority"], p["slug"], p["name"],
         f"{hours(p['min_gpu_hours'])}–{hours(p['max_gpu_hours'])}",
         hours(p["auto_approve_max_gpu_hours"]), p["max_duration_days"],
         ", ".join(p["eligible_countries"]) or "any", p["turnaround_days"]]
        for p in items
    ]  # fmt: skip
    columns = ["prio", "slug", "name", "GPU-hours", "auto-approve", "max days", "countries",
               "days to decide"]  # fmt: skip
    _emit(items, _table("Programs", columns, rows), as_json)


def _resolve(items: list[dict[str, Any]], value: str, keys: tuple[str, ...], what: str) -> str:
    """The id of the item whose id, slug or name is `value` (names in any case)."""
    for item in items:
        if value in (str(item.get(key)) for key in keys):
            return str(item["id"])
    folded = value.casefold()
    for item in items:
        if folded in (str(item.get(key)).casefold() for key in keys if key != "id"):
            return str(item["id"])
    _fail(f"no {what} called {value!r}", 4)


def _application_id(client: PortalClient, value: str) -> str:
    """A full application id, from the id or its first characters (as tables show them)."""
    text = value.strip().lower()
    if len(text) == 36:
        return text
    if len(text) < 4 or any(c not in "0123456789abcdef-" for c in text):
        _fail(f"{value!r} is not an application id (give at least its first 4 characters)", 2)
    matches = [a["id"] for a in _call(client.applications) if str(a["id"]).startswith(text)]
    if not matches:
        _fail(f"no application of yours has an id starting with {text}", 4)
    if len(matches) > 1:
        _fail(f"{len(matches)} applications have ids starting with {text}: give more of it", 2)
    return str(matches[0])


@app.command()
def capacity(
    pool: Annotated[str, typer.Argument(help="Pool name or id, e.g. narvik-gb300-a.")],
    start: Annotated[str | None, typer.Option(help="First day, YYYY-MM-DD.")] = None,
    end: Annotated[str | None, typer.Option(help="Last day, YYYY-MM-DD.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Free GPU-hours per day in a pool, as a table and a small chart."""
    client = _client()
    pool_id = _resolve(_call(client.pools), pool, ("id", "name"), "pool")
    days = _call(client.capacity, pool=pool_id, start=start, end=end)
    if as_json:
        _emit(days, None, True)
        return
    rows = [
        [d["day"], hours(d["capacity_gpu_hours"]), hours(d["committed_gpu_hours"]),
         hours(d["held_gpu_hours"]), hours(d["free_gpu_hours"]), hours(d["power_envelope_mw"]),
         hours(d["committed_mw"]), "yes" if d["overcommitted"] else ""]
        for d in days
    ]  # fmt: skip
    columns = ["day", "capacity", "committed", "held", "free", "envelope MW", "committed MW",
               "over"]  # fmt: skip
    out.print(_table(f"Capacity of {pool}", columns, rows))
    out.print(chart([d["free_gpu_hours"] for d in days], [d["capacity_gpu_hours"] for d in days]))


def chart(free: list[int], capacity: list[int], height: int = 6) -> str:
    """A bar chart of free capacity per day, in block characters, one column a day."""
    top = max(capacity, default=0) or 1
    blocks = " ▁▂▃▄▅▆▇█"
    lines = []
    for level in range(height, 0, -1):
        line = ""
        for value in free:
            filled = value / top * height - (level - 1)
            line += blocks[max(0, min(8, round(filled * 8)))] if filled > 0 else " "
        lines.append(f"│{line}")
    lines.append("└" + "─" * len(free) + f"  free of {top:,} GPU-hours a day")
    return "\n".join(lines)


def _plain(value: Any) -> Any:
    """YAML reads an unquoted 2026-12-01 as a date: send it as the day it names."""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _load_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as error:
        _fail(f"cannot read {path}: {error}", 2)
    if not isinstance(data, dict):
        _fail(f"{path} holds no application (a mapping of its fields)", 2)
    return dict(_plain(data))


@app.command()
def apply(
    file: Annotated[Path | None, typer.Option("--file", "-f", help="YAML or JSON fields.")] = None,
    organization: Annotated[str | None, typer.Option(help="Name or id (default: yours).")] = None,
    program: Annotated[str | None, typer.Option(help="Slug, name or id.")] = None,
    pool: Annotated[str | None, typer.Option(help="Name or id.")] = None,
    gpu_hours: Annotated[int | None, typer.Option(help="GPU-hours asked for.")] = None,
    start: Annotated[str | None, typer.Option(help="First day, YYYY-MM-DD.")] = None,
    end: Annotated[str | None, typer.Option(help="Last day, YYYY-MM-DD.")] = None,
    title: Annotated[str | None, typer.Option()] = None,
    summary: Annotated[str | None, typer.Option()] = None,
    purpose: Annotated[str | None, typer.Option(help="What the GPU-hours are for.")] = None,
    risk: Annotated[str | None, typer.Option(help="minimal, limited, high or prohibited")] = None,
    lineage: Annotated[str | None, typer.Option(help="The model family trained.")] = None,
    submit: Annotated[bool, typer.Option(help="Submit at once (else keep a draft).")] = True,
    watch: Annotated[bool, typer.Option(help="Follow it until a final decision.")] = False,
    stop_at_review: Annotated[
        bool, typer.Option(help="With --watch: stop once it is in review or waitlisted.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Apply for GPU-hours, from flags or a YAML/JSON file (flags win)."""
    data: dict[str, Any] = _load_file(file) if file else {}
    flags = {"organization": organization, "program": program, "pool": pool,
             "gpu_hours": gpu_hours, "start_date": start, "end_date": end, "title": title,
             "summary": summary, "purpose": purpose, "risk_category": risk,
             "model_lineage": lineage}  # fmt: skip
    data.update({key: value for key, value in flags.items() if value is not None})
    missing = [key for key in ("program", "pool", "gpu_hours", "start_date", "end_date", "title")
               if not data.get(key)]  # fmt: skip
    if missing:
        _fail(f"missing: {', '.join(missing)} (give them as flags or in --file)", 2)
    client = _client()
    memberships = _call(client.me)["memberships"]
    organizations = [m["organization"] for m in memberships]
    if data.get("organization"):
        data["organization"] = _resolve(organizations, data["organization"], ("id", "name"),
                                        "organization of yours")  # fmt: skip
    elif len(organizations) == 1:
        data["organization"] = organizations[0]["id"]
    else:
        _fail("you belong to several organizations: choose one with --organization", 2)
    data["program"] = _resolve(_call(client.programs), str(data["program"]),
                               ("id", "slug", "name"), "program")  # fmt: skip
    data["pool"] = _resolve(_call(client.pools), str(data["pool"]), ("id", "name"), "pool")
    application = _call(client.application_create, data)
    if submit:
        application = _call(client.application_submit, application["id"])
    if watch and submit:
        _follow(
            client,
            application["id"],
            timeout=0 if not stop_at_review else 120,
            stop_at_review=stop_at_review,
            as_json=as_json,
        )
        return
    _show_application(application, as_json)


def _show_application(application: dict[str, Any], as_json: bool) -> None:
    if as_json:
        _emit(application, None, True)
        return
    out.print(f"[bold]{application['title']}[/bold]  {application['id']}")
    out.print(f"  {hours(application['gpu_hours'])} GPU-hours, {application['start_date']} to "
              f"{application['end_date']}: [bold]{application['status']}[/bold]")  # fmt: skip
    for reason in application["reasons"]:
        day = f" (first day: {reason['day']})" if reason.get("day") else ""
        out.print(f"  - {reason['code']}: {reason['message']}{day}")
    if application.get("allocation"):
        out.print(f"  allocation {application['allocation']}")


@app.command()
def status(
    application: Annotated[str, typer.Argument(help="The application's id, or its start.")],
    as_json: JsonOption = False,
) -> None:
    """An application's status and the reasons of its decision."""
    client = _client()
    _show_application(_call(client.application, _application_id(client, application)), as_json)


FINAL = ("approved", "rejected", "withdrawn")
WAITING = {
    "submitted": "a worker is checking quota and capacity",
    "in_review": "a reviewer decides",
    "waitlisted": "waitlisted: checked again when capacity frees",
    "draft": "a draft: submit it first",
}


def _follow(
    client: PortalClient,
    application_id: str,
    *,
    timeout: float,
    stop_at_review: bool = False,
    as_json: bool,
) -> None:
    """Poll until a final decision (or, with `stop_at_review`, until one is in review or
    waitlisted); `timeout` 0 waits for ever. Exit code from the status (see EXIT_CODES)."""
    started = time.monotonic()
    current = _call(client.application, application_id)
    stops = ("submitted", "draft") if stop_at_review else (*WAITING,)
    with err.status("waiting for the decision…") as spinner:
        while current["status"] in stops and current["status"] != "draft":
            waited = time.monotonic() - started
            if timeout and waited > timeout:
                _show_application(current, as_json)
                _fail(f"still {current['status']} after {timeout:.0f} s", 7)
            spinner.update(f"{current['status']} ({waited:.0f} s): "
                           f"{WAITING[current['status']]}…")  # fmt: skip
            # A worker decides in about a second; a reviewer or the waitlist takes longer.
            time.sleep(0.5 if current["status"] == "submitted" else 5)
            current = _call(client.application, application_id)
    _show_application(current, as_json)
    raise typer.Exit(WATCH_EXIT.get(current["status"], 1))


@app.command()
def watch(
    application: Annotated[str, typer.Argument(help="The application's id, or its start.")],
    timeout: Annotated[
        float, typer.Option(help="Seconds before giving up (exit 7); 0 waits for ever.")
    ] = 0,
    stop_at_review: Annotated[
        bool,
        typer.Option(help="Stop once it is in review (exit 8) or waitlisted (exit 9)."),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Follow an application until it is approved, rejected or withdrawn (exit code says
    which); it goes on through review and the waitlist unless --stop-at-review."""
    client = _client()
    _follow(
        client,
        _application_id(client, application),
        timeout=timeout,
        stop_at_review=stop_at_review,
        as_json=as_json,
    )


@app.command()
def applications(
    status: Annotated[
        str | None, typer.Option(help="Only this status, e.g. in_review or waitlisted.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Your organizations' applications, newest first."""
    items = _call(_client().applications, **({"status": status} if status else {}))
    rows = [
        [short(a["id"]), a["status"], hours(a["gpu_hours"]), a["start_date"], a["end_date"],
         a["title"]]
        for a in items
    ]  # fmt: skip
    columns = ["id", "status", "GPU-hours", "start", "end", "title"]
    _emit(items, _table("Applications", columns, rows), as_json)


@app.command()
def withdraw(
    application: Annotated[str, typer.Argument(help="The application's id, or its start.")],
    yes: YesOption = False,
    as_json: JsonOption = False,
) -> None:
    """Withdraw an application before its final decision (its held capacity is freed)."""
    client = _client()
    application_id = _application_id(client, application)
    if not yes and not typer.confirm(f"Withdraw application {application_id}?"):
        raise typer.Exit(1)
    _show_application(_call(client.application_withdraw, application_id), as_json)


@app.command()
def allocations(as_json: JsonOption = False) -> None:
    """Your organizations' allocations, with used and remaining GPU-hours."""
    items = _call(_client().allocations)
    rows = [
        [short(a["id"]), a["status"], a["start_date"], a["end_date"],
         hours(a["granted_gpu_hours"]), hours(a["used_gpu_hours"]),
         hours(a["remaining_gpu_hours"]), "yes" if a["at_risk"] else ""]
        for a in items
    ]  # fmt: skip
    columns = ["id", "status", "start", "end", "granted", "used", "remaining", "at risk"]
    _emit(items, _table("Allocations", columns, rows), as_json)


@app.command()
def usage(
    allocation: Annotated[str | None, typer.Argument(help="An allocation's id.")] = None,
    post: Annotated[
        Path | None,
        typer.Option(help="Post usage records from a JSON file (a scheduler's usage:write token)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """An allocation's usage and energy; or, with --post, a batch of usage records."""
    client = _client()
    if post is not None:
        records = json.loads(post.read_text())
        result = _call(client.usage_post, records["records"] if isinstance(records, dict)
                       else records)  # fmt: skip
        if as_json:
            _emit(result, None, True)
        else:
            out.print(f"accepted {result['accepted']}, duplicates {result['duplicates']}, "
                      f"rejected {len(result['rejected'])}")  # fmt: skip
            for rejection in result["rejected"]:
                out.print(f"  record {rejection['index']}: {rejection['code']}: "
                          f"{rejection['message']}")  # fmt: skip
        raise typer.Exit(1 if result["rejected"] else 0)
    if allocation is None:
        _fail("name an allocation, or --post a file of records", 2)
    item = _call(client.allocation, allocation)
    rows = [["granted GPU-hours", hours(item["granted_gpu_hours"])],
            ["used GPU-hours", hours(item["used_gpu_hours"])],
            ["remaining GPU-hours", hours(item["remaining_gpu_hours"])],
            ["energy estimate MWh", hours(item["energy_estimate_mwh"])],
            ["energy measured MWh", hours(item["energy_measured_mwh"])],
            ["status", item["status"]]]  # fmt: skip
    _emit(item, _table(f"Allocation {allocation}", ["", ""], rows), as_json)


@app.command()
def release(
    allocation: Annotated[str, typer.Argument(help="An allocation's id.")],
    yes: YesOption = False,
    as_json: JsonOption = False,
) -> None:
    """Give an allocation's future days back (organization admins)."""
    if not yes and not typer.confirm("Give back every future day of this allocation?"):
        raise typer.Exit(1)
    item = _call(_client().release, allocation)
    _emit(item, f"Released from {item['released_from']}: {hours(item['granted_gpu_hours'])} "
                f"GPU-hours stay granted, to {item['end_date']}.", as_json)  # fmt: skip


@tokens_app.command("list")
def tokens_list(as_json: JsonOption = False) -> None:
    """Your tokens."""
    items = _call(_client().tokens)
    rows = [[t["id"], t["name"], t["prefix"] + "…", t["scope"], t["expires_at"][:10],
             "yes" if t["is_active"] else "no"] for t in items]  # fmt: skip
    _emit(items, _table("Tokens", ["id", "name", "prefix", "scope", "expires", "active"], rows),
          as_json)  # fmt: skip


@tokens_app.command("create")
def tokens_create(
    name: Annotated[str, typer.Argument()],
    scope: Annotated[
        str, typer.Option(help="full (usage:write tokens are issued to scheduler accounts)")
    ] = "full",
    days: Annotated[int | None, typer.Option(help="Days until it expires.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a token; its secret is shown once."""
    issued = _call(_client().token_create, name=name, scope=scope, days=days)
    _emit(issued, _shown_once(issued), as_json)


@tokens_app.command("revoke")
def tokens_revoke(token: Annotated[str, typer.Argument(help="The token's id.")]) -> None:
    """Revoke a token."""
    _call(_client().token_revoke, token)
    out.print("revoked")


@invitations_app.command("list")
def invitations_list(as_json: JsonOption = False) -> None:
    """Invitations to your email that you can still answer."""
    items = _call(_client().invitations)
    rows = [[i["id"], i["organization"]["name"], i["role"], i["expires_at"][:10]]
            for i in items]  # fmt: skip
    _emit(items, _table("Invitations", ["id", "organization", "role", "expires"], rows), as_json)


@invitations_app.command("accept")
def invitations_accept(
    invitation: Annotated[str, typer.Argument(help="The invitation's id.")],
    as_json: JsonOption = False,
) -> None:
    """Accept an invitation: you join the organization with the invited role."""
    membership = _call(_client().invitation_accept, invitation)
    organization, role = membership["organization"]["name"], membership["role"]
    _emit(membership, f"You joined {organization} as {role}.", as_json)


@invitations_app.command("decline")
def invitations_decline(
    invitation: Annotated[str, typer.Argument(help="The invitation's id.")],
) -> None:
    """Decline an invitation."""
    _call(_client().invitation_decline, invitation)
    out.print("declined")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


__all__ = ["app", "chart", "hours", "main", "short"]


@scheduler_app.command("list")
def scheduler_list(as_json: JsonOption = False) -> None:
    """The scheduler service accounts."""
    items = _call(_client().scheduler_accounts)
    rows = [[a["id"], a["source"], a["name"], "yes" if a["is_active"] else "no"] for a in items]
    _emit(items, _table("Scheduler accounts", ["id", "source", "name", "active"], rows), as_json)


@scheduler_app.command("create")
def scheduler_create(
    source: Annotated[
        str, typer.Argument(help="The usage source (one cluster), e.g. slurm-narvik.")
    ],
    name: Annotated[str, typer.Option(help="A name to recognise it by.")] = "",
    as_json: JsonOption = False,
) -> None:
    """Create the service account of one usage source."""
    item = _call(_client().scheduler_account_create, source=source, name=name)
    _emit(item, f"{item['id']}  {item['source']}", as_json)


@scheduler_app.command("token")
def scheduler_token(
    account: Annotated[str, typer.Argument(help="The scheduler account's id.")],
    name: Annotated[str, typer.Option(help="The token's name.")] = "scheduler",
    days: Annotated[int | None, typer.Option(help="Days until it expires.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Issue a usage:write token to a scheduler account; its secret is shown once."""
    issued = _call(_client().scheduler_token_issue, account, name=name, days=days)
    _emit(issued, _shown_once(issued), as_json)
