"""Development SMTP sink: accepts every message and keeps it as an .eml file.

    python -m devstack.mailsink --port 1025 --dir .data/mail

The stack command runs it beside the services, so the notifications service sends real
SMTP in development too; open the .eml files with any mail client, or read them as text.

With `--control FILE` (the fault suite's switch, see devstack.chaos.receiver) the file says
`up`, `down` (every message refused with a temporary 421) or `slow:<seconds>` (accepted late).
"""

from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import signal
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from devstack.chaos.receiver import DOWN, read_control


class MaildirHandler:
    def __init__(self, directory: Path, control: Path | None = None) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.control = control

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        state, delay = read_control(self.control)
        if state == DOWN:
            return "421 4.3.0 Service not available, try again later"
        if delay:
            await asyncio.sleep(delay)
        content: bytes = envelope.original_content or envelope.content
        stamp = time.strftime("%Y%m%dT%H%M%S")
        path = self.directory / f"{stamp}-{uuid.uuid4().hex[:8]}.eml"
        path.write_bytes(content)
        message = email.message_from_bytes(content, policy=email.policy.default)
        print(
            f"mail to {', '.join(envelope.rcpt_tos)}: {message['subject']!s}  ({path.name})",
            flush=True,
        )
        return "250 Message accepted for delivery"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1025)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--control", type=Path, help="up / down / slow:<seconds>, read per message")
    args = parser.parse_args()
    handler = MaildirHandler(args.dir, args.control)
    controller = Controller(handler, hostname=args.host, port=args.port)
    controller.start()
    print(f"SMTP sink on {args.host}:{args.port}, mail kept in {args.dir}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
