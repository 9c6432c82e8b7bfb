"""``shenava webhooks``: the server's delivery log (``/shenava/v1``) as tables, and replays."""

from __future__ import annotations

from typing import Any

from rich.table import Table


def _when(value: str | None) -> str:
    return value[5:19].replace("T", " ") if value else ""


def _status(attempt: dict[str, Any]) -> str:
    if attempt.get("status_code") is not None:
        return str(attempt["status_code"])
    return attempt.get("outcome") or "no answer"


def _latency(attempt: dict[str, Any]) -> str:
    return f"{attempt['latency_ms']:.0f} ms" if attempt.get("latency_ms") is not None else ""


def attempts_table(found: dict[str, Any]) -> Table:
    """The tenant's attempts, newest first: time, job, event, URL, status, latency, error, next retry."""
    table = Table(caption=f"{found['total']} attempts in all (page {found['page']})")
    for name in ("time (UTC)", "job", "event", "url", "status", "latency", "error", "next retry"):
        table.add_column(name, overflow="fold")
    for a in found["attempts"]:
        event = a["event"] + (" (replay)" if a.get("replay") else "")
        row = [a["job_id"], event, a["url"], _status(a), _latency(a), a.get("error") or ""]
        table.add_row(_when(a["at"]), *row, _when(a.get("next_retry_at")))
    return table


def deliveries_table(found: dict[str, Any]) -> Table:
    """One job's deliveries: each attempt under its delivery (the id is what ``replay`` takes)."""
    table = Table(caption=f"job {found['job_id']}")
    for name in ("delivery", "event", "url", "state", "time (UTC)", "status", "latency", "error"):
        table.add_column(name, overflow="fold")
    for d in found["deliveries"]:
        state = "delivered" if d["delivered"] else "given up" if d["given_up"] else "retrying"
        for n, a in enumerate(d["attempts"]):
            head = [d["id"], d["event"], d["url"], state] if n == 0 else ["", "", "", ""]
            table.add_row(*head, _when(a["at"]), _status(a), _latency(a), a.get("error") or "")
    return table


def dead_letters_table(found: dict[str, Any]) -> Table:
    table = Table(
        caption=f"{found['total']} deliveries gave up (replay them with: shenava webhooks replay JOB)"
    )
    for name in ("job", "delivery", "event", "url", "attempts", "last error", "given up (UTC)"):
        table.add_column(name, overflow="fold")
    for d in found["dead_letters"]:
        row = [d["job_id"], d["delivery_id"], d["event"], d["url"], str(d["attempts"]), d["last_error"]]
        table.add_row(*row, _when(d["given_up_at"]))
    return table
