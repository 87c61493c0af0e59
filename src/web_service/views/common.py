"""What every page view shares: the API client of the request's session, the signed-in
guard, and showing an API's refusal as a readable message."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme

from web_service.api import USER, Api, ApiProblem, NotSignedIn

View = TypeVar("View", bound=Callable[..., HttpResponse])


def api(request: HttpRequest, *, signed_in: bool = True) -> Api:
    """The client for this request: as its person (their session's tokens), or as nobody."""
    return Api(request.session if signed_in else None, forwarded_for=forwarded_for(request))


def forwarded_for(request: HttpRequest) -> str:
    """X-Forwarded-For as a proxy passes it on: what came in, then the address we saw."""
    seen = str(request.META.get("REMOTE_ADDR") or "")
    earlier = str(request.META.get("HTTP_X_FORWARDED_FOR") or "").strip()
    return f"{earlier}, {seen}" if earlier else seen


def current_user(request: HttpRequest) -> dict[str, Any] | None:
    user = request.session.get(USER)
    return user if isinstance(user, dict) else None


def login_redirect(request: HttpRequest) -> HttpResponse:
    """To the login page, and back afterwards: to this page, or after a form's POST to the
    page that held the form."""
    if request.method == "GET":
        target = request.get_full_path()
    else:
        referer = urlsplit(request.headers.get("Referer", ""))
        same_site = referer.netloc == request.get_host()
        target = (
            (referer.path + (f"?{referer.query}" if referer.query else "")) if same_site else "/"
        )
    url = "/login?" + urlencode({"next": target})
    if request.headers.get("HX-Request"):
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return HttpResponseRedirect(url)


def signed_in(view: View) -> View:
    """The page needs a signed-in person; a session the users service has ended sends them to
    the login page, and back here after it. A refusal the view lets through (its event is
    missing, its service away) is shown as a page of its own, so views read without a
    try of their own where that page is all they would show."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if current_user(request) is None:
            return login_redirect(request)
        try:
            return view(request, *args, **kwargs)
        except NotSignedIn:
            messages.info(request, "Your session has ended. Please log in again.")
            return login_redirect(request)
        except ApiProblem as problem:
            return problem_page(request, problem)

    return wrapper  # type: ignore[return-value]


def safe_next(request: HttpRequest, default: str = "/") -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


def problem_page(
    request: HttpRequest, problem: ApiProblem, *, status: int | None = None
) -> HttpResponse:
    """A page of its own for a refusal that leaves nothing else to show (a missing event)."""
    return render(
        request,
        "web/problem.html",
        {"problem": problem},
        status=status or (problem.status if 400 <= problem.status < 600 else 502),
    )


def page_links(answer: dict[str, Any], page: str) -> dict[str, Any]:
    """A list page's number and its links to the pages either side, from an API's page."""
    number = int(page) if page.isdigit() else 1
    return {
        "number": number,
        "count": answer.get("count", 0),
        "previous": f"?page={number - 1}" if answer.get("previous") else None,
        "next": f"?page={number + 1}" if answer.get("next") else None,
    }


def flash_problem(request: HttpRequest, problem: ApiProblem) -> None:
    """The refusal as messages at the top of the next page."""
    for line in problem.messages:
        messages.error(request, line)
