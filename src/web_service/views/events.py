"""The events list (search, dates, live availability), an event's page and the hold."""

from __future__ import annotations

import uuid
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from web_service.api import Api, ApiProblem
from web_service.views.common import api, flash_problem, problem_page, signed_in

MAX_TICKETS = 10


@require_GET
def event_list(request: HttpRequest) -> HttpResponse:
    filters = {
        "q": request.GET.get("q", "").strip(),
        "from": request.GET.get("from", ""),
        "to": request.GET.get("to", ""),
    }
    page = request.GET.get("page", "1")
    context: dict[str, Any] = {"filters": filters, "nav": "events", "events": [], "page": None}
    try:
        answer = api(request, signed_in=False).get(
            "booking",
            "/api/events/",
            params={
                "q": filters["q"],
                "date_from": filters["from"],
                "date_to": filters["to"],
                "page": page,
            },
            auth=False,
        )
    except ApiProblem as problem:
        context["problem"] = problem
        status = problem.status if 400 <= problem.status < 500 else 502
        return render(request, _list_template(request), context, status=status)
    context["events"] = answer["results"]
    context["page"] = _page_links(request, answer, page)
    return render(request, _list_template(request), context)


def _list_template(request: HttpRequest) -> str:
    """An htmx poll gets the rows alone, to swap in place."""
    return "web/_event_rows.html" if request.headers.get("HX-Request") else "web/events.html"


def _page_links(request: HttpRequest, answer: dict[str, Any], page: str) -> dict[str, Any]:
    number = int(page) if page.isdigit() else 1
    query = request.GET.copy()

    def link(to: int) -> str:
        query["page"] = str(to)
        return "?" + query.urlencode()

    return {
        "number": number,
        "count": answer["count"],
        "previous": link(number - 1) if answer.get("previous") else None,
        "next": link(number + 1) if answer.get("next") else None,
    }


@require_GET
def event_detail(request: HttpRequest, event_id: str) -> HttpResponse:
    client = api(request, signed_in=False)
    try:
        event = client.get("booking", f"/api/events/{event_id}/", auth=False)
        availability = _availability(client, event_id)
    except ApiProblem as problem:
        return problem_page(request, problem)
    return render(
        request,
        "web/event.html",
        {
            "event": event,
            "availability": availability,
            "nav": "events",
            "counts": range(1, MAX_TICKETS + 1),
            "idempotency_key": uuid.uuid4(),
        },
    )


@require_GET
def event_availability(request: HttpRequest, event_id: str) -> HttpResponse:
    """The live numbers of an event's page, polled by htmx."""
    try:
        availability = _availability(api(request, signed_in=False), event_id)
    except ApiProblem:
        availability = None
    return render(request, "web/_availability.html", {"availability": availability})


def _availability(client: Api, event_id: str) -> dict[str, Any]:
    answer: dict[str, Any] = client.get(
        "booking", "/api/availability/", params={"event": event_id}, auth=False
    )
    return answer


@require_POST
@signed_in
def event_hold(request: HttpRequest, event_id: str) -> HttpResponse:
    """Hold tickets: a pending booking, then its checkout with the countdown."""
    count = request.POST.get("tickets", "")
    key = request.POST.get("idempotency_key") or str(uuid.uuid4())
    try:
        booking = api(request).post(
            "booking",
            "/api/bookings/",
            json={
                "event": int(event_id),
                "tickets_booked": int(count) if count.isdigit() else count,
            },
            headers={"Idempotency-Key": f"web-hold-{key}"[:255]},
        )
    except ApiProblem as problem:
        flash_problem(request, problem)
        return HttpResponseRedirect(f"/events/{event_id}/")
    return HttpResponseRedirect(f"/checkout/{booking['id']}/")
