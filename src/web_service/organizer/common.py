"""What the organizer's pages share: who may open them, and an event read as its organizer."""

from __future__ import annotations

import functools
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from web_service.api import Api, ApiProblem
from web_service.views.common import View, current_user, problem_page, signed_in

ORGANIZER_ROLES = ("organizer", "admin")


def organizer_only(view: View) -> View:
    """A signed-in organizer or admin; anyone else is told the page is not for them (the
    APIs behind it would refuse them anyway)."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = current_user(request) or {}
        if user.get("role") not in ORGANIZER_ROLES:
            return problem_page(
                request,
                ApiProblem(
                    403,
                    "These pages are for organizers.",
                    detail="Register as an organizer to publish events and resources.",
                ),
            )
        return view(request, *args, **kwargs)

    return signed_in(wrapper)  # type: ignore[return-value]


def form_status(problem: ApiProblem) -> int:
    """A form shown again with the refusal: the API's 4xx, or 502 when it failed."""
    return problem.status if 400 <= problem.status < 500 else 502


def form_page(
    request: HttpRequest,
    template: str,
    context: dict[str, Any],
    problem: ApiProblem | None = None,
) -> HttpResponse:
    """A create or edit form; after a refusal, again with the refusal and its status."""
    if problem is None:
        return render(request, template, context)
    return render(request, template, {**context, "problem": problem}, status=form_status(problem))


def changed(body: dict[str, Any], current: dict[str, str]) -> dict[str, Any]:
    """Only what the form changed: a PATCH of the rest could be refused for no reason (an
    event that has begun can still get a new name)."""
    return {k: v for k, v in body.items() if str(v) != current[k]}


def event_of(client: Api, event_id: int) -> dict[str, Any]:
    event: dict[str, Any] = client.get("booking", f"/api/events/{event_id}/", auth=False)
    return event


def own(request: HttpRequest, thing: dict[str, Any]) -> dict[str, Any]:
    """The thing, when the signed-in person may manage it; another's is not found (a refusal
    organizer_only shows as a page of its own)."""
    if not owns(request, thing):
        raise ApiProblem(404, "Not found.")
    return thing


def owns(request: HttpRequest, thing: dict[str, Any]) -> bool:
    """Whether the signed-in person may manage it: its organizer, or an admin."""
    user = current_user(request) or {}
    return user.get("role") == "admin" or str(thing.get("organizer_id")) == str(user.get("id"))
