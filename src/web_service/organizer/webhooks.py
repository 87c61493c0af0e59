"""Webhooks: register an endpoint, rotate its secret, read its delivery log, through the
notifications service's API. A secret is shown once, on the page right after it is made:
it waits in the session for that page and is gone once shown."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from servicekit.messages import ORGANIZER_MESSAGE_TYPES
from web_service.api import ApiProblem
from web_service.organizer.common import form_status, organizer_only
from web_service.views.common import api, flash_problem, page_links

SHOWN_ONCE = "organizer_webhook_shown_once"


def _keep_secret(request: HttpRequest, endpoint: dict[str, Any]) -> None:
    request.session[SHOWN_ONCE] = {"id": endpoint["id"], "secret": endpoint["secret"]}


def _take_secret(request: HttpRequest, endpoint_id: int) -> str:
    kept = request.session.get(SHOWN_ONCE)
    if isinstance(kept, dict) and kept.get("id") == endpoint_id:
        del request.session[SHOWN_ONCE]
        return str(kept["secret"])
    return ""


@require_http_methods(["GET", "POST"])
@organizer_only
def webhook_list(request: HttpRequest) -> HttpResponse:
    client = api(request)
    form: dict[str, Any] = {"url": "", "description": "", "event_types": []}
    problem: ApiProblem | None = None
    if request.method == "POST":
        form = {
            "url": request.POST.get("url", "").strip(),
            "description": request.POST.get("description", "").strip(),
            "event_types": request.POST.getlist("event_types"),
        }
        try:
            endpoint = client.post("notifications", "/api/webhooks/", json=form)
        except ApiProblem as refused:
            problem = refused
        else:
            _keep_secret(request, endpoint)
            messages.success(request, "The webhook is registered.")
            return HttpResponseRedirect(f"/organizer/webhooks/{endpoint['id']}")
    page = request.GET.get("page", "1")
    answer = client.get("notifications", "/api/webhooks/", params={"page": page})
    return render(
        request,
        "web/organizer/webhooks.html",
        {
            "endpoints": answer["results"],
            "page": page_links(answer, page),
            "form": form,
            "types": ORGANIZER_MESSAGE_TYPES,
            "problem": problem,
            "nav": "organizer",
        },
        status=form_status(problem) if problem else 200,
    )


@require_GET
@organizer_only
def webhook_detail(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    client = api(request)
    page = request.GET.get("page", "1")
    endpoint = client.get("notifications", f"/api/webhooks/{endpoint_id}")
    deliveries = client.get(
        "notifications", f"/api/webhooks/{endpoint_id}/deliveries", params={"page": page}
    )
    return render(
        request,
        "web/organizer/webhook.html",
        {
            "endpoint": endpoint,
            "secret": _take_secret(request, endpoint_id),
            "deliveries": deliveries["results"],
            "page": page_links(deliveries, page),
            "nav": "organizer",
        },
    )


@require_POST
@organizer_only
def webhook_rotate(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    try:
        endpoint = api(request).post("notifications", f"/api/webhooks/{endpoint_id}/rotate-secret")
    except ApiProblem as problem:
        flash_problem(request, problem)
    else:
        _keep_secret(request, endpoint)
        messages.success(request, "A new secret is made; the old one no longer signs.")
    return HttpResponseRedirect(f"/organizer/webhooks/{endpoint_id}")


@require_POST
@organizer_only
def webhook_delete(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    try:
        api(request).delete("notifications", f"/api/webhooks/{endpoint_id}")
    except ApiProblem as problem:
        flash_problem(request, problem)
        return HttpResponseRedirect(f"/organizer/webhooks/{endpoint_id}")
    messages.success(request, "The webhook is removed.")
    return HttpResponseRedirect("/organizer/webhooks")
