"""The door's check-in scanner: the event's organizer and the door staff they name.

The page decodes a QR code in the browser (the camera through BarcodeDetector, else jsQR on
its frames or on a photo) or takes a typed code, and posts each scan here with a nonce of its
own; this view passes it to `POST /api/checkins/` and answers the outcome as a fragment to
show big. A scan re-sent after a lost answer carries the same nonce, so it counts once.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from web_service.api import ApiProblem
from web_service.organizer.common import event_of
from web_service.templatetags.web import when
from web_service.views.common import api, current_user, problem_page, signed_in

COUNT_REFRESH_SECONDS = 5


def fresh_nonce() -> str:
    return secrets.token_hex(12)


@require_GET
@signed_in
def scan_home(request: HttpRequest) -> HttpResponse:
    """Where door staff start: their user id (to give the organizer) and an event's scanner."""
    event_id = request.GET.get("event", "").strip()
    if event_id.isdigit():
        return HttpResponseRedirect(f"/scan/{int(event_id)}/")
    return render(
        request, "web/organizer/scan_home.html", {"me": current_user(request), "nav": "scan"}
    )


@require_GET
@signed_in
def scanner(request: HttpRequest, event_id: int) -> HttpResponse:
    client = api(request)
    try:
        event = event_of(client, event_id)
        summary = client.get("booking", f"/api/events/{event_id}/checkins/summary")
    except ApiProblem as problem:
        if problem.status == 404:
            problem = ApiProblem(
                404,
                "This scanner is not yours.",
                detail="Only the event's organizer and the door staff they name can scan its "
                "tickets. Give the organizer your user id (on the Scan page).",
            )
        return problem_page(request, problem)
    return render(
        request,
        "web/organizer/scanner.html",
        {
            "event": event,
            "summary": summary,
            "nonce": fresh_nonce(),
            "refresh": COUNT_REFRESH_SECONDS,
            "nav": "scan",
        },
    )


@require_GET
@signed_in
def scan_count(request: HttpRequest, event_id: int) -> HttpResponse:
    try:
        summary = api(request).get("booking", f"/api/events/{event_id}/checkins/summary")
    except ApiProblem:
        summary = None
    return render(request, "web/organizer/_scan_count.html", {"summary": summary})


def code_event(code: str) -> int | None:
    """The event a ticket code names, read without verifying it (the booking service does
    that): only to say "another event" before anything is sent."""
    parts = code.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error):
        return None
    event = claims.get("eid") if isinstance(claims, dict) else None
    return event if isinstance(event, int) and not isinstance(event, bool) else None


def checked_in(answer: dict[str, Any]) -> dict[str, Any]:
    """What the scanner shows: a kind (ok, again, void, invalid, error), a headline big
    enough to read at arm's length, and a line under it."""
    return {
        "kind": "ok",
        "headline": "Checked in",
        "line": f"Ticket {answer['number']} of booking #{answer['booking']}",
        "at": answer["checked_in_at"],
    }


def refused(code: str, problem: ApiProblem) -> dict[str, Any]:
    """A refused scan, as `checked_in` shows a recorded one; a failure that may have recorded
    nothing offers a retry with the same nonce."""
    if problem.type == "urn:problem:already-checked-in":
        at = str(problem.body.get("checked_in_at") or "")
        return {
            "kind": "again",
            "headline": f"Already checked in at {_clock(at)}",
            "line": f"First scanned {when(at)}. Do not let this ticket in again.",
            "at": at,
        }
    if problem.type == "urn:problem:ticket-void":
        return {
            "kind": "void",
            "headline": "Void ticket",
            "line": "Its booking was canceled: this ticket admits no one.",
        }
    if problem.type == "urn:problem:invalid-ticket-code" or (
        problem.status == 422 and "code" in problem.errors
    ):
        return {
            "kind": "invalid",
            "headline": "Invalid code",
            "line": "This is not a Turnstile ticket, or it was altered.",
        }
    if problem.status == 404:
        other = code_event(code)
        return {
            "kind": "invalid",
            "headline": "Not for this event",
            "line": f"This ticket is for event #{other}." if other else "Not a ticket here.",
        }
    return {
        "kind": "error",
        "headline": "Not recorded: try again",
        "line": problem.messages[0],
        "retry": True,
    }


def _clock(iso: str) -> str:
    """`2031-06-01T20:04:09Z` → `20:04` (UTC, as the event's times are)."""
    return iso[11:16] if len(iso) >= 16 else iso


@require_POST
@signed_in
def scan_checkin(request: HttpRequest, event_id: int) -> HttpResponse:
    code = request.POST.get("code", "").strip()
    nonce = request.POST.get("nonce", "").strip() or fresh_nonce()
    other = code_event(code)
    if not code:
        result = {"kind": "invalid", "headline": "No code", "line": "Scan or type a code."}
    elif other is not None and other != event_id:
        result = {
            "kind": "invalid",
            "headline": "Not for this event",
            "line": f"This ticket is for event #{other}; nothing was recorded.",
        }
    else:
        try:
            answer = api(request).post(
                "booking", "/api/checkins/", json={"code": code, "nonce": nonce}
            )
        except ApiProblem as problem:
            result = refused(code, problem)
        else:
            result = checked_in(answer)
    context = {"result": result, "nonce": nonce, "code": code}
    if request.headers.get("X-Scanner"):
        return render(request, "web/organizer/_scan_result.html", context)
    event = event_of(api(request), event_id)
    summary = api(request).get("booking", f"/api/events/{event_id}/checkins/summary")
    return render(
        request,
        "web/organizer/scanner.html",
        {
            **context,
            "event": event,
            "summary": summary,
            "nonce": fresh_nonce() if not result.get("retry") else nonce,
            "refresh": COUNT_REFRESH_SECONDS,
            "nav": "scan",
        },
    )
