"""The fault suite's webhook receiver: records every delivery it accepts, one JSON line each.

    python -m devstack.chaos.receiver --port P --log FILE --control FILE

POST /hook appends `{"received_at", "headers", "body"}` to the log, then answers 204. The
line is written before the answer, so a delivery the sender saw accepted is always in the
log (one killed in between is logged and retried: at least once, as webhooks promise).

The control file says how to behave, read at every request so the nemesis can switch it
without a signal: `up`, `down` (503 to everything) or `slow:<seconds>` (wait, then answer).
The SMTP sink (devstack.mailsink --control) reads the same file format.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
import time
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

UP = "up"
DOWN = "down"
SLOW = "slow"


def read_control(path: Path | None) -> tuple[str, float]:
    """(state, delay in seconds); a missing or unreadable file means up."""
    if path is None:
        return UP, 0.0
    try:
        text = path.read_text().strip()
    except OSError:
        return UP, 0.0
    state, _, delay = text.partition(":")
    if state == SLOW:
        try:
            return SLOW, max(0.0, float(delay))
        except ValueError:
            return UP, 0.0
    return (DOWN, 0.0) if state == DOWN else (UP, 0.0)


def write_control(path: Path, state: str) -> None:
    """Replace the control file at once (a reader never sees it half written)."""
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(state)
    partial.replace(path)


class Receiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], *, log: Path, control: Path | None) -> None:
        super().__init__(address, Handler)
        self.log_path = log
        self.control = control
        self.lock = threading.Lock()

    def record(self, entry: dict[str, Any]) -> None:
        line = (json.dumps(entry, sort_keys=True) + "\n").encode()
        with self.lock:
            descriptor = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(descriptor, line)
            finally:
                os.close(descriptor)


class Handler(BaseHTTPRequestHandler):
    server: Receiver
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._answer(HTTPStatus.OK if self.path == "/health" else HTTPStatus.NOT_FOUND)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if self.path != "/hook":
            self._answer(HTTPStatus.NOT_FOUND)
            return
        state, delay = read_control(self.server.control)
        if state == DOWN:
            self._answer(HTTPStatus.SERVICE_UNAVAILABLE)
            return
        if delay:
            time.sleep(delay)
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw.decode(errors="replace")
        self.server.record(
            {
                "received_at": datetime.now(UTC).isoformat(),
                "headers": {name.lower(): value for name, value in self.headers.items()},
                "body": body,
            }
        )
        self._answer(HTTPStatus.NO_CONTENT)

    def _answer(self, status: HTTPStatus) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        if self.path == "/health":
            return
        print(f"{self.address_string()} {format % args}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--control", type=Path)
    args = parser.parse_args()
    server = Receiver((args.host, args.port), log=args.log, control=args.control)
    signal.signal(
        signal.SIGTERM, lambda signum, frame: threading.Thread(target=server.shutdown).start()
    )
    print(f"webhook receiver on {args.host}:{args.port}, log {args.log}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
