"""Checkout (the hold's countdown and the card form), my bookings, one booking with its
tickets: change the count while pending, cancel, pay."""

from __future__ import annotations

import uuid
from typing import Any

import segno
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_GET, require_POST

from web_service.api import Api, ApiProblem
from web_service.views.common import api, flash_problem, page_links, signed_in

# What the booking service's payment failures mean to the person paying.
DECLINES = {
    "card_declined": "Your card was declined. Try another card.",
    "insufficient_funds": "Your card was declined: insufficient funds. Try another card.",
    "invalid_token": (
        "This card is not one the sandbox knows. Use a test card, e.g. 4242 4242 4242 4242."
    ),
    "processing_error": "The card could not be charged just now. Please try again.",
}


def _booking_with_subject(client: Api, booking_id: str) -> dict[str, Any]:
    """The booking and what it is for (its event or resource), as one mapping."""
    booking: dict[str, Any] = client.get("booking", f"/api/bookings/{booking_id}/")
    if booking.get("event"):
        booking["subject"] = client.get("booking", f"/api/events/{booking['event']}/", auth=False)
    elif booking.get("resource"):
        booking["subject"] = client.get(
            "booking", f"/api/resources/{booking['resource']}/", auth=False
        )
    return booking


@require_GET
@signed_in
def checkout(request: HttpRequest, booking_id: str) -> HttpResponse:
    booking = _booking_with_subject(api(request), booking_id)
    if booking["status"] != "pending":
        return HttpResponseRedirect(f"/bookings/{booking_id}/")
    return render(
        request,
        "web/checkout.html",
        {
            "booking": booking,
            "server_now": timezone.now().isoformat(),
            "idempotency_key": uuid.uuid4(),
            "counts": range(1, 11),
            "nav": "bookings",
        },
    )


@require_GET
@signed_in
def hold_state(request: HttpRequest, booking_id: str) -> HttpResponse:
    """After the countdown: whether the booking service has released the hold yet. Polled by
    htmx until it has (status 286 tells htmx to stop)."""
    booking = api(request).get("booking", f"/api/bookings/{booking_id}/")
    released = booking["status"] == "canceled"
    return render(
        request,
        "web/_hold_state.html",
        {"booking": booking, "released": released},
        status=286 if released or booking["status"] == "confirmed" else 200,
    )


@require_POST
@signed_in
def pay(request: HttpRequest, booking_id: str) -> HttpResponse:
    """Pay with the token the page's script chose for the card; the card itself never
    reaches this service."""
    token = request.POST.get("payment_token", "")
    if not token:
        messages.error(
            request, "Enter a card number to pay (scripts must be on for the card form)."
        )
        return HttpResponseRedirect(f"/checkout/{booking_id}/")
    key = request.POST.get("idempotency_key") or str(uuid.uuid4())
    response = api(request).send(
        "POST",
        "booking",
        "/api/payments/",
        json={"booking": int(booking_id), "payment_token": token},
        headers={"Idempotency-Key": f"web-pay-{key}"[:255]},
    )
    if response.status_code == 201:
        messages.success(request, "Payment received: your booking is confirmed.")
        return HttpResponseRedirect(f"/bookings/{booking_id}/")
    if response.status_code == 202:
        messages.info(request, "Your payment is being processed; this page shows when it is done.")
        return HttpResponseRedirect(f"/bookings/{booking_id}/")
    problem = ApiProblem.from_response(response)
    payment = problem.body.get("payment")
    reason = str(payment.get("failure_reason") or "") if isinstance(payment, dict) else ""
    if problem.status == 402 and reason in DECLINES:
        messages.error(request, DECLINES[reason])
    else:
        flash_problem(request, problem)
    return HttpResponseRedirect(f"/checkout/{booking_id}/")


@require_GET
@signed_in
def booking_list(request: HttpRequest) -> HttpResponse:
    page = request.GET.get("page", "1")
    client = api(request)
    answer = client.get("booking", "/api/bookings/", params={"page": page})
    names = _subject_names(client, answer["results"])
    for booking in answer["results"]:
        booking["subject_name"] = names.get(
            ("event", booking["event"]) if booking["event"] else ("resource", booking["resource"]),
            "",
        )
    return render(
        request,
        "web/bookings.html",
        {
            "bookings": answer["results"],
            "count": answer["count"],
            "page": page_links(answer, page),
            "nav": "bookings",
        },
    )


def _subject_names(client: Api, bookings: list[dict[str, Any]]) -> dict[tuple[str, int], str]:
    names: dict[tuple[str, int], str] = {}
    for booking in bookings:
        kind, pk = (
            ("event", booking["event"]) if booking["event"] else ("resource", booking["resource"])
        )
        if pk is None or (kind, pk) in names:
            continue
        try:
            names[(kind, pk)] = client.get("booking", f"/api/{kind}s/{pk}/", auth=False)["name"]
        except ApiProblem:
            names[(kind, pk)] = f"{kind} {pk}"
    return names


@require_GET
@signed_in
def booking_detail(request: HttpRequest, booking_id: str) -> HttpResponse:
    client = api(request)
    booking = _booking_with_subject(client, booking_id)
    tickets, tickets_note = _tickets(client, booking)
    return render(
        request,
        "web/booking.html",
        {
            "booking": booking,
            "tickets": tickets,
            "tickets_note": tickets_note,
            "counts": range(1, 11),
            "nav": "bookings",
        },
    )


def _tickets(client: Api, booking: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    """A confirmed ticket booking's tickets, each with its QR code as inline SVG."""
    if booking["kind"] != "tickets" and not booking.get("event"):
        return [], ""
    if booking["status"] == "pending":
        return [], "Your tickets appear here once the booking is paid."
    try:
        tickets = client.get("booking", f"/api/bookings/{booking['id']}/tickets/")
    except ApiProblem as problem:
        if problem.status == 404:
            return [], "Tickets are not available from the booking service yet."
        return [], problem.messages[0]
    for ticket in tickets:
        ticket["qr_svg"] = qr_svg(ticket["code"], label=f"QR code of ticket {ticket['number']}")
    return tickets, ""


def qr_svg(code: str, *, label: str) -> SafeString:
    """The code as an inline SVG QR image (error correction M), labelled for screen readers."""
    svg = segno.make(code, error="m", micro=False).svg_inline(
        scale=4, border=4, dark="#000", light="#fff", title=label, svgclass="qr", omitsize=True
    )
    svg = svg.replace("<svg ", f'<svg role="img" aria-label="{label}" ', 1)
    return mark_safe(svg)  # noqa: S308  (segno's SVG of our own code; the label is ours)


@require_POST
@signed_in
def booking_change(request: HttpRequest, booking_id: str) -> HttpResponse:
    count = request.POST.get("tickets", "")
    try:
        api(request).patch(
            "booking",
            f"/api/bookings/{booking_id}/",
            json={"tickets_booked": int(count) if count.isdigit() else count},
        )
    except ApiProblem as problem:
        flash_problem(request, problem)
    else:
        messages.success(
            request, f"Your booking now holds {count} ticket{'s' if count != '1' else ''}."
        )
    back = "checkout" if request.POST.get("back") == "checkout" else "bookings"
    return HttpResponseRedirect(f"/{back}/{booking_id}/")


@require_POST
@signed_in
def booking_cancel(request: HttpRequest, booking_id: str) -> HttpResponse:
    try:
        api(request).delete("booking", f"/api/bookings/{booking_id}/")
    except ApiProblem as problem:
        flash_problem(request, problem)
    else:
        messages.success(request, "Your booking is canceled.")
    return HttpResponseRedirect(f"/bookings/{booking_id}/")
