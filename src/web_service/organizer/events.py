"""The organizer's home (their events and resources) and an event's create, edit and cancel
forms, over the booking service's events API."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_http_methods

from web_service.api import Api, ApiProblem
from web_service.organizer.common import (
    changed,
    event_of,
    form_page,
    organizer_only,
    own,
)
from web_service.views.common import api, current_user, flash_problem, page_links

EVENT_FORM = "web/organizer/event_form.html"
EVENT_FIELDS = ("name", "description", "date", "time", "location", "total_tickets")
# Enough of one's own resources for one page; the booking service lists them 100 at a time.
RESOURCE_PAGES = 5


@require_GET
@organizer_only
def home(request: HttpRequest) -> HttpResponse:
    client = api(request)
    page = request.GET.get("page", "1")
    events = client.get("booking", "/api/events/mine/", params={"page": page})
    resources = _own_resources(client, str((current_user(request) or {}).get("id")))
    return render(
        request,
        "web/organizer/home.html",
        {
            "events": events["results"],
            "page": page_links(events, page),
            "resources": resources,
            "nav": "organizer",
        },
    )


def _own_resources(client: Api, organizer_id: str) -> list[dict[str, Any]]:
    """The caller's active resources: the public list, read whole, kept to their own."""
    own: list[dict[str, Any]] = []
    for number in range(1, RESOURCE_PAGES + 1):
        answer = client.get(
            "booking", "/api/resources/", params={"page": number, "page_size": 100}, auth=False
        )
        own += [r for r in answer["results"] if str(r["organizer_id"]) == organizer_id]
        if not answer.get("next"):
            break
    return own


def _event_form(request: HttpRequest) -> dict[str, str]:
    form = {name: request.POST.get(name, "").strip() for name in EVENT_FIELDS}
    form["price_per_ticket"] = request.POST.get("price_per_ticket", "").strip()
    return form


def _event_body(form: dict[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = dict(form)
    if form["total_tickets"].isdigit():
        body["total_tickets"] = int(form["total_tickets"])
    return body


@require_http_methods(["GET", "POST"])
@organizer_only
def event_new(request: HttpRequest) -> HttpResponse:
    context: dict[str, Any] = {
        "form": {"time": "20:00", "total_tickets": "100", "price_per_ticket": "25.00"},
        "nav": "organizer",
        "creating": True,
    }
    if request.method == "POST":
        context["form"] = form = _event_form(request)
        try:
            event = api(request).post("booking", "/api/events/", json=_event_body(form))
        except ApiProblem as problem:
            return form_page(request, EVENT_FORM, context, problem)
        messages.success(request, f"“{event['name']}” is published.")
        return HttpResponseRedirect(f"/organizer/events/{event['id']}/")
    return form_page(request, EVENT_FORM, context)


@require_http_methods(["GET", "POST"])
@organizer_only
def event_edit(request: HttpRequest, event_id: int) -> HttpResponse:
    client = api(request)
    event = own(request, event_of(client, event_id))
    current = {name: str(event[name] or "") for name in EVENT_FIELDS}
    current["time"] = current["time"][:5]
    current["price_per_ticket"] = str(event["price_per_ticket"])
    context: dict[str, Any] = {"form": current, "event": event, "nav": "organizer"}
    if request.method == "POST":
        context["form"] = form = _event_form(request)
        if changes := changed(_event_body(form), current):
            try:
                client.patch("booking", f"/api/events/{event_id}/", json=changes)
            except ApiProblem as problem:
                return form_page(request, EVENT_FORM, context, problem)
            messages.success(request, "The event is saved.")
        return HttpResponseRedirect(f"/organizer/events/{event_id}/")
    return form_page(request, EVENT_FORM, context)


@require_http_methods(["GET", "POST"])
@organizer_only
def event_cancel(request: HttpRequest, event_id: int) -> HttpResponse:
    """Ask first (every booking is canceled and paid ones refunded), then cancel."""
    client = api(request)
    event = own(request, event_of(client, event_id))
    if request.method == "POST":
        try:
            client.delete("booking", f"/api/events/{event_id}/")
        except ApiProblem as problem:
            flash_problem(request, problem)
        else:
            messages.success(request, f"“{event['name']}” is canceled; its buyers are refunded.")
        return HttpResponseRedirect(f"/organizer/events/{event_id}/")
    return render(request, "web/organizer/event_cancel.html", {"event": event, "nav": "organizer"})
