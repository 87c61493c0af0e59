"""The README's tour as `dev.py image-test` runs it: taken from README.md, retargeted, split
into its commented steps and run in bash with real curl against a small local HTTP server
that answers what the services would (or, once, a server error)."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from devstack.deploy import image_tour
from devstack.paths import ROOT

README = (ROOT / "README.md").read_text()


class FakeServices(BaseHTTPRequestHandler):
    """One server answering the tour's calls for all three services."""

    answers: ClassVar[dict[tuple[str, str], tuple[int, Any]]] = {
        ("POST", "/api/users/register"): (201, {"id": 5, "email": "ann@example.com"}),
        ("POST", "/api/users/login"): (200, {"access": "token-of-{email}"}),
        ("POST", "/api/events/"): (201, {"id": 7}),
        ("POST", "/api/bookings/"): (201, {"id": 9, "status": "pending"}),
        ("GET", "/api/availability/"): (200, {"available": 98, "held": 2, "sold": 0}),
        ("POST", "/api/payments/"): (201, {"id": 3, "booking": 9, "status": "success"}),
        ("GET", "/api/bookings/9/tickets/"): (200, [{"number": 1, "status": "valid"}]),
        ("GET", "/api/notifications/"): (200, {"count": 0, "results": []}),
    }
    broken: ClassVar[set[str]] = set()

    def answer(self, method: str) -> None:
        path = self.path.split("?")[0]
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, payload = self.answers.get((method, path), (404, {"detail": "no such path"}))
        if path in self.broken:
            status, payload = 500, {"detail": "broken on purpose"}
        if "access" in payload:
            payload = {"access": f"token-of-{json.loads(body)['email']}"}
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self.answer("GET")

    def do_POST(self) -> None:
        self.answer("POST")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def services() -> Iterator[dict[str, int]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeServices)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    try:
        yield {"users": port, "booking": port, "notifications": port}
    finally:
        FakeServices.broken.clear()
        server.shutdown()
        server.server_close()


needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


def test_the_tour_is_taken_from_the_readme_and_split_at_its_comments() -> None:
    steps = image_tour.split_steps(image_tour.tour_block(README))
    assert steps[0].title == "setup"
    assert "json()" in steps[0].code
    titles = " ".join(step.title for step in steps[1:])
    for word in ("registers", "publishes an event", "holds 2 tickets", "pays", "notifications"):
        assert word in titles
    assert all(not line.startswith("#") for step in steps for line in step.code.splitlines())


def test_retargeting_replaces_every_address_and_the_mail_folder() -> None:
    ports = {"users": 18000, "booking": 18001, "notifications": 18002}
    block = image_tour.retarget(image_tour.tour_block(README), ports, "/srv/mail")
    assert "localhost:800" not in block
    assert "U=127.0.0.1:18000 B=127.0.0.1:18001 N=127.0.0.1:18002" in block
    assert "ls /srv/mail/" in block and ".data/mail" not in block


def test_a_tour_that_no_longer_names_an_address_is_refused() -> None:
    readme = README.replace("N=localhost:8002", "N=localhost:9002")
    with pytest.raises(image_tour.TourError, match="localhost:8002"):
        image_tour.retarget(image_tour.tour_block(readme), image_tour.README_PORTS, "/srv")
    with pytest.raises(image_tour.TourError, match="no '## A 60-second tour'"):
        image_tour.tour_block(README.replace("## A 60-second tour", "## A tour"))


@needs_curl
def test_the_tour_runs_and_each_answer_is_checked(services: dict[str, int], tmp_path: Path) -> None:
    (tmp_path / "welcome.eml").write_text("to ann")
    run = image_tour.run_tour(README, services, str(tmp_path))
    calls = [str(call) for result in run.results for call in result.calls]
    assert calls == [
        "POST /api/users/register 201",
        "POST /api/users/login 200",
        "POST /api/users/login 200",
        "POST /api/events/ 201",
        "POST /api/bookings/ 201",
        "GET /api/availability/ 200",
        "POST /api/payments/ 201",
        "GET /api/bookings/9/tickets/ 200",
        "GET /api/notifications/ 200",
    ]
    assert all(result.problems() == [] for result in run.results)
    assert run.variables == {"EVENT": "7", "BOOKING": "9", "ANN": "token-of-ann@example.com"}
    paid = next(result for result in run.results if "pays" in result.step.title)
    assert json.loads(paid.output.strip()) == {"id": 3, "booking": 9, "status": "success"}
    assert "welcome.eml" in run.results[-1].output


@needs_curl
def test_a_wrong_answer_fails_its_own_step(services: dict[str, int], tmp_path: Path) -> None:
    FakeServices.broken.add("/api/payments/")
    run = image_tour.run_tour(README, services, str(tmp_path))
    failing = {result.step.title: result.problems() for result in run.results if result.problems()}
    assert list(failing.values()) == [["POST /api/payments/ answered 500, not 201"]]
    assert "pays" in next(iter(failing))


def test_an_unknown_call_is_a_problem() -> None:
    result = image_tour.StepResult(
        image_tour.Step("x", ""), [image_tour.Call(200, "DELETE", "/api/bookings/1/")]
    )
    assert result.problems() == ["DELETE /api/bookings/1/: a call the check does not know"]
