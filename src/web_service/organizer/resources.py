"""A resource's create, edit and retire forms, over the booking service's resources API."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from web_service.api import Api, ApiProblem
from web_service.organizer.common import changed, form_page, organizer_only, own
from web_service.views.common import api, flash_problem

RESOURCE_FIELDS = (
    "name",
    "description",
    "location",
    "timezone",
    "opening_time",
    "closing_time",
    "slot_minutes",
    "price_per_slot",
)
RESOURCE_FORM = "web/organizer/resource_form.html"
TIMES = ("opening_time", "closing_time")


def _resource_form(request: HttpRequest) -> dict[str, str]:
    return {name: request.POST.get(name, "").strip() for name in RESOURCE_FIELDS}


def _resource_body(form: dict[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = dict(form)
    if form["slot_minutes"].isdigit():
        body["slot_minutes"] = int(form["slot_minutes"])
    return body


@require_http_methods(["GET", "POST"])
@organizer_only
def resource_new(request: HttpRequest) -> HttpResponse:
    context: dict[str, Any] = {
        "form": {
            "timezone": "UTC",
            "opening_time": "09:00",
            "closing_time": "18:00",
            "slot_minutes": "60",
            "price_per_slot": "20.00",
        },
        "creating": True,
        "nav": "organizer",
    }
    if request.method == "POST":
        context["form"] = form = _resource_form(request)
        try:
            resource = api(request).post("booking", "/api/resources/", json=_resource_body(form))
        except ApiProblem as problem:
            return form_page(request, RESOURCE_FORM, context, problem)
        messages.success(request, f"“{resource['name']}” can be booked now.")
        return HttpResponseRedirect("/organizer/")
    return form_page(request, RESOURCE_FORM, context)


def _own_resource(request: HttpRequest, client: Api, resource_id: int) -> dict[str, Any]:
    return own(request, client.get("booking", f"/api/resources/{resource_id}/", auth=False))


@require_http_methods(["GET", "POST"])
@organizer_only
def resource_edit(request: HttpRequest, resource_id: int) -> HttpResponse:
    client = api(request)
    resource = _own_resource(request, client, resource_id)
    current = {name: str(resource[name] or "") for name in RESOURCE_FIELDS}
    for name in TIMES:
        current[name] = current[name][:5]
    context: dict[str, Any] = {"form": current, "resource": resource, "nav": "organizer"}
    if request.method == "POST":
        context["form"] = form = _resource_form(request)
        if changes := changed(_resource_body(form), current):
            try:
                client.patch("booking", f"/api/resources/{resource_id}/", json=changes)
            except ApiProblem as problem:
                return form_page(request, RESOURCE_FORM, context, problem)
            messages.success(request, "The resource is saved.")
        return HttpResponseRedirect("/organizer/")
    return form_page(request, RESOURCE_FORM, context)


@require_http_methods(["GET", "POST"])
@organizer_only
def resource_retire(request: HttpRequest, resource_id: int) -> HttpResponse:
    """Ask first, then retire it (no new bookings; the ones made stay)."""
    client = api(request)
    resource = _own_resource(request, client, resource_id)
    if request.method == "POST":
        try:
            client.delete("booking", f"/api/resources/{resource_id}/")
        except ApiProblem as problem:
            flash_problem(request, problem)
            return HttpResponseRedirect(f"/organizer/resources/{resource_id}/edit")
        messages.success(request, f"“{resource['name']}” is retired.")
        return HttpResponseRedirect("/organizer/")
    return render(
        request, "web/organizer/resource_retire.html", {"resource": resource, "nav": "organizer"}
    )
