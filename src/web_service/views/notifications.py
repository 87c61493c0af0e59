"""The notifications inbox."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from web_service.api import ApiProblem
from web_service.views.common import api, flash_problem, page_links, signed_in


@require_GET
@signed_in
def inbox(request: HttpRequest) -> HttpResponse:
    page = request.GET.get("page", "1")
    answer = api(request).get("notifications", "/api/notifications/", params={"page": page})
    return render(
        request,
        "web/notifications.html",
        {
            "notifications": answer["results"],
            "unread": sum(1 for n in answer["results"] if not n.get("read_at")),
            "page": page_links(answer, page),
            "nav": "notifications",
        },
    )


@require_POST
@signed_in
def read_all(request: HttpRequest) -> HttpResponse:
    try:
        answer = api(request).post("notifications", "/api/notifications/read-all")
    except ApiProblem as problem:
        flash_problem(request, problem)
    else:
        messages.success(request, f"Marked {answer['marked']} as read.")
    return HttpResponseRedirect("/notifications/")
