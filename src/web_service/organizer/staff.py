"""An event's door staff: the people, named by their user id, who may scan its tickets."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.http import require_http_methods, require_POST

from web_service.api import ApiProblem
from web_service.organizer.common import event_of, form_status, organizer_only
from web_service.views.common import api, flash_problem


@require_http_methods(["GET", "POST"])
@organizer_only
def staff(request: HttpRequest, event_id: int) -> HttpResponse:
    client = api(request)
    problem: ApiProblem | None = None
    user_id = ""
    if request.method == "POST":
        user_id = request.POST.get("user_id", "").strip()
        try:
            client.post("booking", f"/api/events/{event_id}/staff/", json={"user_id": user_id})
        except ApiProblem as refused:
            problem = refused
        else:
            messages.success(request, f"{user_id} may now scan this event's tickets.")
            return HttpResponseRedirect(f"/organizer/events/{event_id}/staff")
    event = event_of(client, event_id)
    members = client.get("booking", f"/api/events/{event_id}/staff/")
    return render(
        request,
        "web/organizer/staff.html",
        {
            "event": event,
            "members": members,
            "problem": problem,
            "user_id": user_id,
            "nav": "organizer",
        },
        status=form_status(problem) if problem else 200,
    )


@require_POST
@organizer_only
def staff_remove(request: HttpRequest, event_id: int, user_id: str) -> HttpResponse:
    try:
        member = uuid.UUID(user_id)
        api(request).delete("booking", f"/api/events/{event_id}/staff/{member}/")
    except ValueError:
        messages.error(request, "That is not a user id.")
    except ApiProblem as problem:
        flash_problem(request, problem)
    else:
        messages.success(request, f"{member} may no longer scan this event's tickets.")
    return HttpResponseRedirect(f"/organizer/events/{event_id}/staff")
