"""An event's sales dashboard (numbers, the chart's series, recent bookings; refreshed by
htmx) and its attendees, as a page and as the booking service's CSV file."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from web_service.api import ApiProblem
from web_service.organizer.common import event_of, organizer_only
from web_service.views.common import api, page_links, problem_page

SALES_REFRESH_SECONDS = 5


def _sales(request: HttpRequest, event_id: int) -> dict[str, Any]:
    sales: dict[str, Any] = api(request).get("booking", f"/api/events/{event_id}/sales/")
    sales["chart"] = {
        "at": [point["at"] for point in sales["series"]],
        "sold": [point["sold"] for point in sales["series"]],
        "held": [point["held"] for point in sales["series"]],
        "available": [point["available"] for point in sales["series"]],
    }
    sales["table"] = sales["series"][-12:]
    return sales


@require_GET
@organizer_only
def dashboard(request: HttpRequest, event_id: int) -> HttpResponse:
    client = api(request)
    event = event_of(client, event_id)
    sales = _sales(request, event_id)
    return render(
        request,
        "web/organizer/dashboard.html",
        {
            "event": event,
            "sales": sales,
            "refresh": SALES_REFRESH_SECONDS,
            "nav": "organizer",
        },
    )


@require_GET
@organizer_only
def sales_numbers(request: HttpRequest, event_id: int) -> HttpResponse:
    """The dashboard's live part, polled by htmx."""
    try:
        sales = _sales(request, event_id)
    except ApiProblem as problem:
        return render(request, "web/_problem.html", {"problem": problem})
    return render(request, "web/organizer/_sales.html", {"sales": sales, "event": {"id": event_id}})


@require_GET
@organizer_only
def attendees(request: HttpRequest, event_id: int) -> HttpResponse:
    client = api(request)
    page = request.GET.get("page", "1")
    event = event_of(client, event_id)
    answer = client.get("booking", f"/api/events/{event_id}/attendees/", params={"page": page})
    return render(
        request,
        "web/organizer/attendees.html",
        {
            "event": event,
            "attendees": answer["results"],
            "page": page_links(answer, page),
            "nav": "organizer",
        },
    )


@require_GET
@organizer_only
def attendees_csv(request: HttpRequest, event_id: int) -> HttpResponse:
    """The booking service's CSV file, passed on as it came (its name included)."""
    response = api(request).send("GET", "booking", f"/api/events/{event_id}/attendees.csv")
    if response.status_code != 200:
        return problem_page(request, ApiProblem.from_response(response))
    passed = HttpResponse(response.content, content_type="text/csv; charset=utf-8")
    passed["Content-Disposition"] = response.headers.get(
        "Content-Disposition", f'attachment; filename="event-{event_id}-attendees.csv"'
    )
    passed["Cache-Control"] = "no-store"
    return passed
