"""Register, log in, log out and the profile: forms over the users service's API."""

from __future__ import annotations

import contextlib
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.http import require_http_methods, require_POST

from web_service.api import TOKENS, USER, ApiProblem, store_login
from web_service.views.common import api, current_user, safe_next, signed_in


@require_http_methods(["GET", "POST"])
def login_page(request: HttpRequest) -> HttpResponse:
    context: dict[str, Any] = {
        "next": safe_next(request, ""),
        "email": request.GET.get("email", ""),
    }
    if request.method == "POST":
        email = request.POST.get("email", "").strip()
        context["email"] = email
        try:
            tokens = api(request, signed_in=False).post(
                "users",
                "/api/users/login",
                json={"email": email, "password": request.POST.get("password", "")},
                auth=False,
            )
        except ApiProblem as problem:
            context["problem"] = problem
            return render(request, "web/login.html", context, status=_form_status(problem))
        # A new session id at login, so a session id planted before it is worth nothing.
        request.session.cycle_key()
        store_login(request.session, tokens)
        messages.success(request, f"Welcome, {tokens['user']['name']}.")
        return HttpResponseRedirect(safe_next(request, "/"))
    return render(request, "web/login.html", context)


@require_http_methods(["GET", "POST"])
def register_page(request: HttpRequest) -> HttpResponse:
    context: dict[str, Any] = {"form": {"role": "customer"}}
    if request.method == "POST":
        form = {
            "name": request.POST.get("name", "").strip(),
            "email": request.POST.get("email", "").strip(),
            "role": "organizer" if request.POST.get("role") == "organizer" else "customer",
        }
        context["form"] = form
        try:
            api(request, signed_in=False).post(
                "users",
                "/api/users/register",
                json={**form, "password": request.POST.get("password", "")},
                auth=False,
            )
        except ApiProblem as problem:
            context["problem"] = problem
            return render(request, "web/register.html", context, status=_form_status(problem))
        messages.success(request, "Your account is ready. Log in to continue.")
        return HttpResponseRedirect("/login?" + _query(email=form["email"]))
    return render(request, "web/register.html", context)


@require_POST
def logout_page(request: HttpRequest) -> HttpResponse:
    tokens = request.session.get(TOKENS)
    if isinstance(tokens, dict):
        # The session ends here whatever the users service says.
        with contextlib.suppress(ApiProblem):
            api(request, signed_in=False).post(
                "users", "/api/users/logout", json={"refresh": tokens["refresh"]}, auth=False
            )
    request.session.flush()
    messages.info(request, "You are logged out.")
    return HttpResponseRedirect("/")


@signed_in
@require_http_methods(["GET", "POST"])
def profile_page(request: HttpRequest) -> HttpResponse:
    client = api(request)
    me = client.get("users", "/api/users/me")
    context: dict[str, Any] = {"me": me, "form": {"name": me["name"], "email": me["email"]}}
    if request.method == "POST":
        form = {
            "name": request.POST.get("name", "").strip(),
            "email": request.POST.get("email", "").strip(),
        }
        context["form"] = form
        changes: dict[str, Any] = {k: v for k, v in form.items() if v != me[k]}
        if request.POST.get("new_password"):
            changes["password"] = request.POST["new_password"]
        if request.POST.get("current_password"):
            changes["current_password"] = request.POST["current_password"]
        if changes:
            try:
                updated = client.patch("users", f"/api/users/{me['id']}", json=changes)
            except ApiProblem as problem:
                context["problem"] = problem
                return render(request, "web/profile.html", context, status=_form_status(problem))
            user = current_user(request) or {}
            request.session[USER] = {**user, **{k: updated[k] for k in ("name", "email", "role")}}
            messages.success(request, "Your profile is saved.")
        return HttpResponseRedirect("/profile")
    return render(request, "web/profile.html", context)


def _form_status(problem: ApiProblem) -> int:
    return problem.status if 400 <= problem.status < 500 else 502


def _query(**params: str) -> str:
    return urlencode(params)
