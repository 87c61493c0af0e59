"""The API client against the real services: problem+json as ApiProblem, the token refresh
(once, on 401 or before expiry, one at a time per session), and what the browser gets of a
session: an HttpOnly, SameSite cookie, CSRF on every form, never a token."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.db import connection
from django.test import Client

from servicekit.testing import free_port
from web_service.api import TOKENS, Api, ApiProblem, NotSignedIn, store_login
from web_service.tests.stack import PASSWORD, WebStack

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _apis_of_the_stack(settings: Any, stack: WebStack) -> None:
    settings.USERS_API_URL = stack.url("users")
    settings.BOOKING_API_URL = stack.url("booking")
    settings.NOTIFICATIONS_API_URL = stack.url("notifications")


def _session(stack: WebStack, email: str) -> SessionStore:
    session = SessionStore()
    store_login(session, stack.login(email))
    session.save()
    return session


def _spoil_access(session: SessionStore) -> None:
    """An access token the services refuse (401), as an expired one would be."""
    session[TOKENS] = {**session[TOKENS], "access": session[TOKENS]["access"][:-6] + "AAAAAA"}
    session.save()


@pytest.mark.django_db
def test_a_problem_answer_is_an_api_problem_with_its_field_errors(stack: WebStack) -> None:
    with pytest.raises(ApiProblem) as raised:
        Api().post(
            "users",
            "/api/users/register",
            json={"name": "X", "email": "not-an-email", "password": "a-long-Passw0rd-here"},
            auth=False,
        )
    problem = raised.value
    assert problem.status == 400
    assert problem.type.startswith("urn:problem:")
    assert problem.title
    assert set(problem.errors) == {"email"}
    assert any(line.startswith("email: ") for line in problem.messages)


@pytest.mark.django_db
def test_a_service_that_does_not_answer_is_a_503_problem(settings: Any) -> None:
    settings.BOOKING_API_URL = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ApiProblem) as raised:
        Api().get("booking", "/api/events/", auth=False)
    assert raised.value.status == 503
    assert "booking service is not answering" in raised.value.title


@pytest.mark.django_db
def test_a_refused_access_token_is_refreshed_once_and_the_call_retried(stack: WebStack) -> None:
    customer = stack.register()
    session = _session(stack, customer["email"])
    first_refresh = session[TOKENS]["refresh"]
    _spoil_access(session)

    me = Api(session).get("users", "/api/users/me")

    assert me["email"] == customer["email"]
    assert session[TOKENS]["refresh"] != first_refresh
    # The refresh token rotated: the old one is spent.
    status, _ = stack.call("POST", "users", "/api/users/token/refresh", {"refresh": first_refresh})
    assert status == 401


@pytest.mark.django_db
def test_an_access_token_about_to_expire_is_refreshed_before_the_call(stack: WebStack) -> None:
    customer = stack.register()
    session = _session(stack, customer["email"])
    before = dict(session[TOKENS])
    session[TOKENS] = {**before, "expires_at": time.time() + 5}

    Api(session).get("users", "/api/users/me")

    assert session[TOKENS]["access"] != before["access"]
    assert session[TOKENS]["expires_at"] > time.time() + 60


@pytest.mark.django_db
def test_a_refresh_the_users_service_refuses_ends_the_session(stack: WebStack) -> None:
    customer = stack.register()
    session = _session(stack, customer["email"])
    _spoil_access(session)
    session[TOKENS] = {**session[TOKENS], "refresh": "never-issued"}

    with pytest.raises(NotSignedIn):
        Api(session).get("users", "/api/users/me")
    assert TOKENS not in session


@pytest.mark.django_db(transaction=True)
def test_two_requests_of_one_session_refresh_once_and_keep_the_login(stack: WebStack) -> None:
    """Two requests (a page and an htmx poll, say) meet a 401 at once. Presenting the same
    refresh token twice would make the users service revoke the whole login; the advisory
    lock lets one refresh and the other take the new pair from the session."""
    customer = stack.register()
    session = _session(stack, customer["email"])
    _spoil_access(session)
    barrier = threading.Barrier(4)
    answers: list[Any] = []

    def request() -> None:
        own = SessionStore(session_key=session.session_key)
        assert TOKENS in own  # loaded before the race, as each request's middleware does
        barrier.wait()
        try:
            answers.append(Api(own).get("users", "/api/users/me")["email"])
        except (NotSignedIn, ApiProblem) as exc:
            answers.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=request) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert answers == [customer["email"]] * 4
    final = SessionStore(session_key=session.session_key).load()[TOKENS]
    status, _ = stack.call(
        "POST", "users", "/api/users/token/refresh", {"refresh": final["refresh"]}
    )
    assert status == 200, "the login was revoked"


@pytest.mark.django_db
def test_forms_need_the_csrf_token(stack: WebStack) -> None:
    customer = stack.register()
    browser = Client(enforce_csrf_checks=True)
    refused = browser.post("/login", {"email": customer["email"], "password": PASSWORD})
    assert refused.status_code == 403

    page = browser.get("/login")
    token = page.cookies["csrftoken"].value
    answer = browser.post(
        "/login",
        {"email": customer["email"], "password": PASSWORD, "csrfmiddlewaretoken": token},
    )
    assert answer.status_code == 302


@pytest.mark.django_db
def test_the_session_cookie_is_http_only_and_same_site_and_no_token_reaches_the_browser(
    stack: WebStack,
) -> None:
    customer = stack.register()
    browser = Client()
    answer = browser.post("/login", {"email": customer["email"], "password": PASSWORD})
    assert answer.status_code == 302
    cookie = answer.cookies["turnstile_session"]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"

    session = SessionStore(session_key=cookie.value).load()
    tokens = session[TOKENS]
    pages = [browser.get(path) for path in ("/", "/bookings/", "/profile", "/notifications/")]
    assert [p.status_code for p in pages] == [200] * 4
    seen = "".join(p.content.decode() for p in pages) + str(browser.cookies)
    assert tokens["access"] not in seen
    assert tokens["refresh"] not in seen


@pytest.mark.django_db
def test_a_signed_in_page_sends_a_stranger_to_the_login_and_back(stack: WebStack) -> None:
    answer = Client().get("/bookings/?page=2")
    assert answer.status_code == 302
    assert answer["Location"] == "/login?next=%2Fbookings%2F%3Fpage%3D2"


@pytest.mark.django_db
def test_a_service_away_is_a_page_that_says_so(stack: WebStack, settings: Any) -> None:
    customer = stack.register()
    browser = Client()
    assert (
        browser.post("/login", {"email": customer["email"], "password": PASSWORD}).status_code
        == 302
    )
    settings.BOOKING_API_URL = f"http://127.0.0.1:{free_port()}"
    for path in ("/", "/bookings/", "/bookings/1/", "/events/1/"):
        page = browser.get(path)
        assert page.status_code in (502, 503), path
        assert "booking service is not answering" in page.content.decode(), path
