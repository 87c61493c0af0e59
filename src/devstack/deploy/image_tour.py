"""The README's 60-second tour, run as written against a stack on other ports.

The bash block under "## A 60-second tour" is taken from README.md, its addresses and mail
folder replaced, and run in one bash. `curl` is wrapped to report each answer's status on
stderr (the block's own output and `$(...)` captures are untouched), and a marker before each
commented step tells which step an answer belongs to. So the README cannot drift from what
is tested: a changed address, a removed step or a new call shows here.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from urllib.parse import urlsplit

TOUR_HEADING = "## A 60-second tour"
README_PORTS = {"users": 8000, "booking": 8001, "notifications": 8002}
README_MAIL_DIR = ".data/mail/"
STEP_MARK = "@@step"
HTTP_MARK = "@@http"
VARS_MARK = "@@vars"
# `%{stderr}` switches the rest of -w's output to stderr (curl >= 7.63, %{method} >= 7.72).
CURL_WRAPPER = (
    "curl() { command curl -w "
    f"'%{{stderr}}{HTTP_MARK} %{{http_code}} %{{method}} %{{url_effective}}\\n' \"$@\"; }}"
)
# What every call of the tour must answer, by method and path.
EXPECTED_STATUS = {
    ("POST", "/api/users/register"): 201,
    ("POST", "/api/users/login"): 200,
    ("POST", "/api/events/"): 201,
    ("POST", "/api/bookings/"): 201,
    ("GET", "/api/availability/"): 200,
    ("POST", "/api/payments/"): 201,
    ("GET", "/api/bookings/{id}/tickets/"): 200,
    ("GET", "/api/notifications/"): 200,
}
# Shell variables the tour sets, printed at its end for the checks that follow it.
TOUR_VARIABLES = ("EVENT", "BOOKING", "ANN")


class TourError(ValueError):
    """The README's tour is not the shape this command can run."""


@dataclass(frozen=True)
class Step:
    title: str
    code: str


@dataclass(frozen=True)
class Call:
    status: int
    method: str
    path: str

    @property
    def expected(self) -> int | None:
        return EXPECTED_STATUS.get((self.method, re.sub(r"/[0-9]+/", "/{id}/", self.path)))

    def __str__(self) -> str:
        return f"{self.method} {self.path} {self.status}"


@dataclass
class StepResult:
    step: Step
    calls: list[Call] = field(default_factory=list)
    output: str = ""

    def problems(self) -> list[str]:
        found = []
        for call in self.calls:
            if call.expected is None:
                found.append(f"{call.method} {call.path}: a call the check does not know")
            elif call.status != call.expected:
                found.append(
                    f"{call.method} {call.path} answered {call.status}, not {call.expected}"
                )
        return found


def tour_block(readme: str) -> str:
    """The first bash block after the tour's heading."""
    start = readme.find(f"\n{TOUR_HEADING}\n")
    if start < 0:
        raise TourError(f"README.md has no '{TOUR_HEADING}' section")
    match = re.search(r"^```bash\n(.*?)^```", readme[start:], flags=re.MULTILINE | re.DOTALL)
    if match is None:
        raise TourError("the tour has no ```bash block")
    return match.group(1)


def retarget(block: str, ports: dict[str, int], mail_dir: str) -> str:
    """The block with the stack's addresses and mail folder instead of the README's."""
    for service, readme_port in README_PORTS.items():
        address = f"localhost:{readme_port}"
        if address not in block:
            raise TourError(f"the tour no longer names {address} ({service})")
        block = block.replace(address, f"127.0.0.1:{ports[service]}")
    if README_MAIL_DIR not in block:
        raise TourError(f"the tour no longer names {README_MAIL_DIR}")
    return block.replace(README_MAIL_DIR, mail_dir.rstrip("/") + "/")


def split_steps(block: str) -> list[Step]:
    """Steps as the README comments them: a run of comment lines opens a step and is its title;
    what comes before the first comment is the setup."""
    steps: list[Step] = []
    title, in_comment = "setup", False
    code: list[str] = []
    for line in block.splitlines():
        is_comment = line.startswith("#")
        if is_comment and not in_comment:
            if any(text.strip() for text in code):
                steps.append(Step(title, "\n".join(code)))
            title, code = "", []
        if is_comment:
            title = f"{title} {line.lstrip('#').strip()}".strip()
        else:
            code.append(line)
        in_comment = is_comment
    if any(text.strip() for text in code):
        steps.append(Step(title, "\n".join(code)))
    return steps


def script(steps: list[Step]) -> str:
    """One bash script: the curl wrapper, each step after its marker, the variables last."""
    parts = [CURL_WRAPPER]
    for number, step in enumerate(steps):
        # After a step whose last answer had no final newline, the marker still opens a line.
        parts.append(
            f"printf '\\n{STEP_MARK} {number}\\n'; printf '\\n{STEP_MARK} {number}\\n' >&2"
        )
        parts.append(step.code)
    names = " ".join(f"{name}=${{{name}:-}}" for name in TOUR_VARIABLES)
    parts.append(f"echo; echo '{VARS_MARK}' {names}")
    return "\n".join(parts) + "\n"


def parse_calls(stderr: str, count: int) -> list[list[Call]]:
    """Each step's answers, from the wrapper's lines on stderr."""
    calls: list[list[Call]] = [[] for _ in range(count)]
    current = -1
    for line in stderr.splitlines():
        if line.startswith(STEP_MARK):
            current = int(line.split()[1])
        elif line.startswith(HTTP_MARK) and current >= 0:
            _, status, method, url = line.split(maxsplit=3)
            calls[current].append(Call(int(status), method, urlsplit(url).path))
    return calls


def parse_output(stdout: str, count: int) -> tuple[list[str], dict[str, str]]:
    """Each step's printed output, and the variables the script printed last."""
    outputs = ["" for _ in range(count)]
    variables: dict[str, str] = {}
    current = -1
    for line in stdout.splitlines():
        if line.startswith(STEP_MARK):
            current = int(line.split()[1])
        elif line.startswith(VARS_MARK):
            for pair in line.split()[1:]:
                name, _, value = pair.partition("=")
                variables[name] = value
        elif current >= 0:
            outputs[current] += line + "\n"
    return outputs, variables


@dataclass
class TourRun:
    results: list[StepResult]
    variables: dict[str, str]
    returncode: int
    stderr: str


def run_tour(readme: str, ports: dict[str, int], mail_dir: str, timeout: float = 120) -> TourRun:
    steps = split_steps(retarget(tour_block(readme), ports, mail_dir))
    completed = subprocess.run(
        ["bash", "-c", script(steps)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    calls = parse_calls(completed.stderr, len(steps))
    outputs, variables = parse_output(completed.stdout, len(steps))
    results = [
        StepResult(step, step_calls, output)
        for step, step_calls, output in zip(steps, calls, outputs, strict=True)
    ]
    return TourRun(results, variables, completed.returncode, completed.stderr)
