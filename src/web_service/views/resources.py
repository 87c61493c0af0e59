"""Resources and the slot picker: the free intervals of a day from /api/availability, cut
into the resource's slots; picking one holds it and goes to checkout."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any
from zoneinfo import ZoneInfo

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from web_service.api import Api, ApiProblem
from web_service.views.common import api, flash_problem, page_links, problem_page, signed_in


@require_GET
def resource_list(request: HttpRequest) -> HttpResponse:
    page = request.GET.get("page", "1")
    try:
        answer = api(request, signed_in=False).get(
            "booking", "/api/resources/", params={"page": page}, auth=False
        )
    except ApiProblem as problem:
        return problem_page(request, problem)
    return render(
        request,
        "web/resources.html",
        {
            "resources": answer["results"],
            "page": page_links(answer, page),
            "nav": "resources",
        },
    )


@require_GET
def resource_detail(request: HttpRequest, resource_id: str) -> HttpResponse:
    client = api(request, signed_in=False)
    try:
        resource = client.get("booking", f"/api/resources/{resource_id}/", auth=False)
    except ApiProblem as missing:
        return problem_page(request, missing)
    zone = ZoneInfo(resource["timezone"])
    today = timezone.now().astimezone(zone).date()
    day = _parse_day(request.GET.get("date", "")) or today
    slots: list[dict[str, Any]] = []
    problem: ApiProblem | None = None
    if day < today:
        problem = ApiProblem(422, "Pick today or a later day.")
    else:
        try:
            slots = _slots(client, resource, day, zone)
        except ApiProblem as refused:
            problem = refused
    return render(
        request,
        "web/resource.html",
        {
            "resource": resource,
            "day": day,
            "today": today,
            "previous_day": day - dt.timedelta(days=1) if day > today else None,
            "next_day": day + dt.timedelta(days=1),
            "slots": slots,
            "problem": problem,
            "idempotency_key": uuid.uuid4(),
            "nav": "resources",
        },
    )


def _parse_day(value: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return None


def _slots(
    client: Api, resource: dict[str, Any], day: dt.date, zone: ZoneInfo
) -> list[dict[str, Any]]:
    """The day's bookable slots, in the resource's local time, still in the future."""
    start = dt.datetime.combine(day, dt.time(0), tzinfo=zone)
    end = start + dt.timedelta(days=1)
    answer = client.get(
        "booking",
        "/api/availability/",
        params={
            "resource": resource["id"],
            "start": start.astimezone(dt.UTC).isoformat(),
            "end": end.astimezone(dt.UTC).isoformat(),
        },
        auth=False,
    )
    length = dt.timedelta(minutes=int(answer["slot_minutes"]))
    now = timezone.now()
    slots: list[dict[str, Any]] = []
    for interval in answer["free"]:
        slot_start = dt.datetime.fromisoformat(interval["start"])
        free_until = dt.datetime.fromisoformat(interval["end"])
        while slot_start + length <= free_until:
            if slot_start > now:
                local = slot_start.astimezone(zone)
                slots.append(
                    {
                        "start": slot_start.astimezone(dt.UTC).isoformat(),
                        "end": (slot_start + length).astimezone(dt.UTC).isoformat(),
                        "label": f"{local:%H:%M} to {(local + length):%H:%M}",
                    }
                )
            slot_start += length
    return slots


@require_POST
@signed_in
def resource_book(request: HttpRequest, resource_id: str) -> HttpResponse:
    key = request.POST.get("idempotency_key") or str(uuid.uuid4())
    start = request.POST.get("start", "")
    try:
        booking = api(request).post(
            "booking",
            "/api/bookings/",
            json={
                "resource": int(resource_id),
                "start_time": start,
                "end_time": request.POST.get("end", ""),
            },
            headers={"Idempotency-Key": f"web-slot-{key}-{start}"[:255]},
        )
    except ApiProblem as problem:
        flash_problem(request, problem)
        day = request.POST.get("date", "")
        return HttpResponseRedirect(f"/resources/{resource_id}/" + (f"?date={day}" if day else ""))
    return HttpResponseRedirect(f"/checkout/{booking['id']}/")
