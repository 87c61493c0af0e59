"""A resource's create, edit and retire forms, over the booking service's resources API."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from web_service.api import ApiProblem
from web_service.organizer.common import form_status, organizer_only, owns
from web_service.views.common import api, problem_page

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
        form = _resource_form(request)
        context["form"] = form
        try:
            resource = api(request).post("booking", "/api/resources/", json=_resource_body(form))
        except ApiProblem as problem:
            context["problem"] = problem
            return render(
                request, "web/organizer/resource_form.html", context, status=form_status(problem)
            )
        messages.success(request, f"“{resource['name']}” can be booked now.")
        return HttpResponseRedirect("/organizer/")
    return render(request, "web/organizer/resource_form.html", context)


@require_http_methods(["GET", "POST"])
@organizer_only
def resource_edit(request: HttpRequest, resource_id: int) -> HttpResponse:
    client = api(request)
    try:
        resource = client.get("booking", f"/api/resources/{resource_id}/", auth=False)
    except ApiProblem as problem:
        return problem_page(request, problem)
    if not owns(request, resource):
        return problem_page(request, ApiProblem(404, "Not found."))
    current = {name: str(resource[name] or "") for name in RESOURCE_FIELDS}
    for name in TIMES:
        current[name] = current[name][:5]
    context: dict[str, Any] = {"form": current, "resource": resource, "nav": "organizer"}
    if request.method == "POST":
        form = _resource_form(request)
        context["form"] = form
        changes = {k: v for k, v in _resource_body(form).items() if str(v) != current[k]}
        if changes:
            try:
                client.patch("booking", f"/api/resources/{resource_id}/", json=changes)
            except ApiProblem as problem:
                context["problem"] = problem
                return render(
                    request,
                    "web/organizer/resource_form.html",
                    context,
                    status=form_status(problem),
                )
            messages.success(request, "The resource is saved.")
        return HttpResponseRedirect("/organizer/")
    return render(request, "web/organizer/resource_form.html", context)


@require_http_methods(["GET", "POST"])
@organizer_only
def resource_retire(request: HttpRequest, resource_id: int) -> HttpResponse:
    """Ask first, then retire it (no new bookings; the ones made stay)."""
    client = api(request)
    try:
        resource = client.get("booking", f"/api/resources/{resource_id}/", auth=False)
    except ApiProblem as problem:
        return problem_page(request, problem)
    if not owns(request, resource):
        return problem_page(request, ApiProblem(404, "Not found."))
    if request.method == "POST":
        try:
            client.delete("booking", f"/api/resources/{resource_id}/")
        except ApiProblem as problem:
            for line in problem.messages:
                messages.error(request, line)
            return HttpResponseRedirect(f"/organizer/resources/{resource_id}/edit")
        messages.success(request, f"“{resource['name']}” is retired.")
        return HttpResponseRedirect("/organizer/")
    return render(
        request, "web/organizer/resource_retire.html", {"resource": resource, "nav": "organizer"}
    )
