"""The recorded operations of a chaos run: one JSON object a line, flushed as it is written.

    {"index": 0, "time": 1.234, "wall": 1767225600.5, "process": "c7", "type": "invoke",
     "f": "book", "value": {...}, "key": "<Idempotency-Key or null>"}

`time` is seconds since the run started (monotonic clock), `wall` the same moment as a Unix
time (to compare with timestamps in the databases). An `invoke` is followed by exactly one
completion of the same process and `f`: `ok` (acknowledged), `fail` (had no effect) or `info`
(unknown). A process has at most one operation in flight, so a completion belongs to the
last invoke of its process. The nemesis writes lone `info` entries (`process: "nemesis"`).

Each line is flushed before the call returns: a run killed midway keeps every line it wrote,
and `load` skips a last line cut short.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

COMPLETIONS = frozenset({"ok", "fail", "info"})


@dataclass
class Op:
    """An invoked operation, handed back to `History.complete`."""

    index: int
    process: str
    f: str
    value: dict[str, Any]
    key: str | None
    time: float
    completed: bool = field(default=False, compare=False)


class History:
    """Thread-safe writer. Use as a context manager, or call `close()`."""

    def __init__(self, path: Path, *, start: float | None = None) -> None:
        self.path = path
        self.start = time.monotonic() if start is None else start
        self._wall_offset = time.time() - time.monotonic()
        self._lock = threading.Lock()
        self._index = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: TextIO = path.open("a", encoding="utf-8")

    def __enter__(self) -> History:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.close()

    def now(self) -> float:
        return time.monotonic() - self.start

    def _write(
        self, *, process: str, type: str, f: str, value: dict[str, Any], key: str | None
    ) -> tuple[int, float]:
        with self._lock:
            moment = time.monotonic()
            index = self._index
            self._index += 1
            entry = {
                "index": index,
                "time": round(moment - self.start, 6),
                "wall": round(moment + self._wall_offset, 6),
                "process": process,
                "type": type,
                "f": f,
                "value": value,
                "key": key,
            }
            self._file.write(json.dumps(entry, default=str, separators=(",", ":")) + "\n")
            self._file.flush()
            return index, moment - self.start

    def invoke(
        self, process: str, f: str, value: dict[str, Any] | None = None, key: str | None = None
    ) -> Op:
        value = dict(value or {})
        index, moment = self._write(process=process, type="invoke", f=f, value=value, key=key)
        return Op(index=index, process=process, f=f, value=value, key=key, time=moment)

    def complete(self, op: Op, type: str, value: dict[str, Any] | None = None) -> None:
        if type not in COMPLETIONS:
            raise ValueError(f"a completion is ok, fail or info, not {type!r}")
        if op.completed:
            raise ValueError(f"operation {op.index} ({op.f} of {op.process}) completed twice")
        op.completed = True
        self._write(process=op.process, type=type, f=op.f, value=dict(value or {}), key=op.key)

    def nemesis(self, f: str, value: dict[str, Any] | None = None) -> None:
        self._write(process="nemesis", type="info", f=f, value=dict(value or {}), key=None)


def load(path: Path) -> list[dict[str, Any]]:
    """Every entry of a history file, in order; a last line cut short by a crash is skipped."""
    entries: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as file:
        lines = file.read().split("\n")
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            if number >= len(lines) - 1:  # the last line, written when the run died
                break
            raise
    return entries


@dataclass(frozen=True)
class Pair:
    """An invoke with its completion (None: the run ended before it completed)."""

    invoke: dict[str, Any]
    completion: dict[str, Any] | None

    @property
    def type(self) -> str:
        return "info" if self.completion is None else str(self.completion["type"])

    @property
    def f(self) -> str:
        return str(self.invoke["f"])

    @property
    def process(self) -> str:
        return str(self.invoke["process"])

    @property
    def key(self) -> str | None:
        key = self.invoke.get("key")
        return None if key is None else str(key)

    @property
    def request(self) -> dict[str, Any]:
        return dict(self.invoke.get("value") or {})

    @property
    def result(self) -> dict[str, Any]:
        return dict((self.completion or {}).get("value") or {})


def pairs(entries: list[dict[str, Any]]) -> list[Pair]:
    """Client operations, each invoke with its completion, in invoke order (nemesis entries
    are not operations). An invoke left open counts as unknown (`info`)."""
    open_ops: dict[str, dict[str, Any]] = {}
    result: dict[int, Pair] = {}
    for entry in entries:
        process = str(entry.get("process"))
        kind = entry.get("type")
        if process == "nemesis":
            continue
        if kind == "invoke":
            if process in open_ops:  # its process never completed it
                left = open_ops.pop(process)
                result[int(left["index"])] = Pair(left, None)
            open_ops[process] = entry
        elif kind in COMPLETIONS and process in open_ops:
            invoke = open_ops.pop(process)
            result[int(invoke["index"])] = Pair(invoke, entry)
    for invoke in open_ops.values():
        result[int(invoke["index"])] = Pair(invoke, None)
    return [result[index] for index in sorted(result)]
