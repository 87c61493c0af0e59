"""The message bus: NATS JetStream, one stream for every domain message.

Subjects are `<prefix>.<type>` (`turnstile.booking.confirmed`); the stream `TURNSTILE` keeps
them on disk (file storage) with a de-duplication window long enough that a relay retrying
after an outage republishes harmlessly: the broker drops a second message with the same
`Nats-Msg-Id` (the envelope id).

Django code is synchronous; nats-py is asyncio. `SyncBus` owns an event loop on a daemon
thread and exposes blocking calls, so the ORM always runs on the caller's thread and the
NATS client keeps answering pings and reconnecting while the caller waits on the database.

Production points `NATS_URL` at a cluster (`nats://a:4222,nats://b:4222,nats://c:4222`) and
sets `NATS_STREAM_REPLICAS=3`; tests set `NATS_STREAM` and `NATS_SUBJECT_PREFIX` to get a
stream of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import threading
from collections.abc import Awaitable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec
import nats
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api
from nats.js.errors import APIError, NoStreamResponseError, NotFoundError

logger = logging.getLogger(__name__)

DUPLICATE_WINDOW_SECONDS = 15 * 60
DEFAULT_STREAM = "TURNSTILE"
DEFAULT_SUBJECT_PREFIX = "turnstile"
MSG_ID_HEADER = "Nats-Msg-Id"
NO_RESPONDERS_STATUS = "503"

T = TypeVar("T")


@dataclass(frozen=True)
class BusConfig:
    servers: tuple[str, ...]
    stream: str
    subject_prefix: str
    replicas: int

    def subject_for(self, message_type: str) -> str:
        return f"{self.subject_prefix}.{message_type}"

    def type_from_subject(self, subject: str) -> str:
        return subject.removeprefix(f"{self.subject_prefix}.")

    @property
    def all_subjects(self) -> str:
        return f"{self.subject_prefix}.>"


def bus_config() -> BusConfig:
    """The bus as the environment (or Django settings, when configured) describes it."""
    url = _setting("NATS_URL", "nats://127.0.0.1:4222")
    servers = tuple(part.strip() for part in url.split(",") if part.strip())
    return BusConfig(
        servers=servers,
        stream=_setting("NATS_STREAM", DEFAULT_STREAM),
        subject_prefix=_setting("NATS_SUBJECT_PREFIX", DEFAULT_SUBJECT_PREFIX),
        replicas=int(_setting("NATS_STREAM_REPLICAS", "1")),
    )


def _setting(name: str, default: str) -> str:
    from django.conf import settings

    if settings.configured and hasattr(settings, name):
        return str(getattr(settings, name))
    return os.environ.get(name, default)


def stream_config(config: BusConfig) -> api.StreamConfig:
    return api.StreamConfig(
        name=config.stream,
        subjects=[config.all_subjects],
        storage=api.StorageType.FILE,
        retention=api.RetentionPolicy.LIMITS,
        num_replicas=config.replicas,
        duplicate_window=DUPLICATE_WINDOW_SECONDS,
        max_age=30 * 24 * 3600,
    )


async def connect(config: BusConfig, *, name: str) -> NatsClient:
    """A connection that reconnects forever: an outage is waited out, never fatal."""

    made: list[NatsClient] = []

    async def on_disconnected() -> None:
        if made and made[0].is_closed:
            return  # closed on purpose
        logger.warning("bus: disconnected from NATS")

    async def on_reconnected() -> None:
        logger.info("bus: reconnected to NATS")

    async def on_error(exc: Exception) -> None:
        logger.info("bus: %s", exc)

    client: NatsClient = await nats.connect(
        servers=list(config.servers),
        name=name,
        connect_timeout=2,
        reconnect_time_wait=0.5,
        max_reconnect_attempts=-1,
        allow_reconnect=True,
        disconnected_cb=on_disconnected,
        reconnected_cb=on_reconnected,
        error_cb=on_error,
    )
    made.append(client)
    return client


async def ensure_stream(js: JetStreamContext, config: BusConfig) -> api.StreamInfo:
    """Create the stream, or bring an existing one to the wanted configuration."""
    wanted = stream_config(config)
    try:
        await js.stream_info(config.stream)
    except NotFoundError:
        return await js.add_stream(wanted)
    return await js.update_stream(wanted)


def backoff_delay(failures: int, *, initial: float, maximum: float) -> float:
    """Capped exponential backoff: initial, 2x, 4x, ... never above `maximum`."""
    if failures <= 0:
        return 0.0
    return float(min(maximum, initial * (2 ** min(failures - 1, 30))))


@dataclass(frozen=True)
class OutgoingMessage:
    message_type: str
    payload: bytes
    msg_id: str


class BusUnavailableError(Exception):
    """The broker could not be reached or did not acknowledge in time."""


class _Pipeline:
    """The acknowledgements of one `publish_many`: one result per message, in order, and one
    future for them all."""

    def __init__(self, size: int) -> None:
        self.results: list[api.PubAck | BaseException | None] = [None] * size
        self.waiting = size
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if not size:
            self.done.set_result(None)

    def settle(self, n: int, result: api.PubAck | BaseException) -> None:
        if not 0 <= n < len(self.results) or self.results[n] is not None:
            return  # not one of ours, or a second answer
        self.results[n] = result
        self.waiting -= 1
        if not self.waiting and not self.done.done():
            self.done.set_result(None)

    def acknowledged(self, n: int, msg: Msg) -> None:
        """The stream's answer to message `n`, as `JetStreamContext.publish` reads it."""
        result: api.PubAck | BaseException
        if msg.headers and msg.headers.get(api.Header.STATUS.value) == NO_RESPONDERS_STATUS:
            result = NoStreamResponseError()
        else:
            try:
                reply = msgspec.json.decode(msg.data)
                if "error" in reply:
                    result = APIError.from_error(reply["error"])
                else:
                    result = api.PubAck.from_response(reply)
            except Exception as exc:  # an answer that is not a PubAck: that message failed
                result = exc
        self.settle(n, result)

    def outcomes(self) -> list[api.PubAck | BaseException]:
        """One result per message; a timeout for each the stream has not answered."""
        return [nats.errors.TimeoutError() if result is None else result for result in self.results]


class SyncBus:
    """Blocking access to JetStream for synchronous (Django) code.

    Every call is marshalled onto the bus thread's loop; calls are safe from any thread.
    """

    def __init__(self, config: BusConfig | None = None, *, name: str = "turnstile") -> None:
        self.config = config or bus_config()
        self.name = name
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, name=f"bus-{name}", daemon=True)
        self._client: NatsClient | None = None
        self._js: JetStreamContext | None = None
        self._stream_ready = False
        # publish_many's acknowledgements come to one subscription (made on connecting):
        # `<inbox>.<call>.<message>`.
        self._ack_inbox = ""
        self._pipelines: dict[str, _Pipeline] = {}
        self._calls = itertools.count()
        self._connect_lock = asyncio.Lock()  # threads connecting at once share one client
        self._thread.start()

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.is_connected

    def connect(self, timeout: float = 10.0) -> None:
        """Connect (once) and make sure the stream exists. Raises `BusUnavailableError`."""
        try:
            self.run(self._connect(), timeout)
        except Exception as exc:
            raise BusUnavailableError(f"{type(exc).__name__}: {exc}") from exc

    async def _connect(self) -> None:
        async with self._connect_lock:
            if self._client is None:
                client = await connect(self.config, name=self.name)
                self._ack_inbox = client.new_inbox()
                await client.subscribe(f"{self._ack_inbox}.>", cb=self._acknowledged)
                self._client = client
                self._js = client.jetstream()
            if not self._stream_ready:
                await ensure_stream(self.js, self.config)
                self._stream_ready = True

    @property
    def js(self) -> JetStreamContext:
        if self._js is None:
            raise BusUnavailableError("not connected")
        return self._js

    def publish(
        self, *, message_type: str, payload: bytes, msg_id: str, timeout: float = 5.0
    ) -> api.PubAck:
        """Publish and wait for the stream's acknowledgement (stored, fsynced)."""
        self.connect(timeout)
        subject = self.config.subject_for(message_type)
        headers = {MSG_ID_HEADER: msg_id}
        try:
            return self.run(
                self.js.publish(
                    subject, payload, timeout=timeout, stream=self.config.stream, headers=headers
                ),
                timeout + 1,
            )
        except Exception as exc:
            raise BusUnavailableError(f"{type(exc).__name__}: {exc}") from exc

    def publish_many(
        self, messages: Sequence[OutgoingMessage], *, timeout: float = 5.0
    ) -> list[api.PubAck | BusUnavailableError]:
        """Publish a batch pipelined (sent in order, acknowledgements awaited together).

        One result per message, in order: its PubAck, or the error that kept it from being
        acknowledged. A batch costs about one round trip instead of one per message.
        """
        try:
            self.connect(timeout)
        except BusUnavailableError as exc:
            return [exc for _ in messages]
        results: list[api.PubAck | BaseException] = self.run(
            self._publish_many(messages, timeout), timeout + 2
        )
        return [
            result
            if isinstance(result, api.PubAck)
            else BusUnavailableError(f"{type(result).__name__}: {result}")
            for result in results
        ]

    async def _publish_many(
        self, messages: Sequence[OutgoingMessage], timeout: float
    ) -> list[api.PubAck | BaseException]:
        """What `JetStreamContext.publish` does for one message (a request with the expected
        stream, its answer read as a PubAck or an error), for a batch: each message is
        written with a reply subject of its own under this call's, and the bus's one
        subscription settles them, with no task, timer or future per message (those were a
        quarter of the relay's CPU in a flash sale)."""
        client = self._client
        if client is None:
            raise BusUnavailableError("not connected")
        call = str(next(self._calls))
        pipeline = _Pipeline(len(messages))
        self._pipelines[call] = pipeline
        try:
            for n, message in enumerate(messages):
                try:
                    await client.publish(
                        self.config.subject_for(message.message_type),
                        message.payload,
                        reply=f"{self._ack_inbox}.{call}.{n}",
                        headers={
                            MSG_ID_HEADER: message.msg_id,
                            api.Header.EXPECTED_STREAM.value: self.config.stream,
                        },
                    )
                except Exception as exc:  # refused before it left (too large, say)
                    pipeline.settle(n, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(pipeline.done, timeout)
        finally:
            del self._pipelines[call]
        return pipeline.outcomes()

    async def _acknowledged(self, msg: Msg) -> None:
        call, _, n = msg.subject[len(self._ack_inbox) + 1 :].partition(".")
        pipeline = self._pipelines.get(call)
        if pipeline is not None and n.isdigit():
            pipeline.acknowledged(int(n), msg)

    def pull_subscribe(
        self, *, durable: str, config: api.ConsumerConfig, timeout: float = 10.0
    ) -> SyncPullSubscription:
        """Bind to a durable pull consumer, creating or updating it to `config`."""
        self.connect(timeout)
        subscription = self.run(self._pull_subscribe(durable, config), timeout)
        return SyncPullSubscription(self, subscription)

    async def _pull_subscribe(
        self, durable: str, config: api.ConsumerConfig
    ) -> JetStreamContext.PullSubscription:
        config.durable_name = durable
        config.name = durable
        # add_consumer creates, or updates an existing durable when the change is allowed.
        await self.js.add_consumer(self.config.stream, config=config)
        return await self.js.pull_subscribe_bind(durable=durable, stream=self.config.stream)

    def consumer_info(self, durable: str, timeout: float = 2.0) -> api.ConsumerInfo:
        self.connect(timeout)
        info: api.ConsumerInfo = self.run(
            self.js.consumer_info(self.config.stream, durable, timeout=timeout), timeout + 1
        )
        return info

    def call(self, awaitable: Awaitable[T], timeout: float = 5.0) -> T:
        async def wrapper() -> T:
            return await awaitable

        return self.run(wrapper(), timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Close the connection, finish the client's tasks, and stop the bus thread."""
        if self._loop.is_closed():
            return
        try:
            self.run(self._shutdown(), timeout)
        except Exception as exc:
            logger.debug("bus close: %s", exc)
        self._client = None
        self._js = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self._loop.close()

    async def _shutdown(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.close()
        current = asyncio.current_task()
        pending = [task for task in asyncio.all_tasks() if task is not current]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


class SyncPullSubscription:
    def __init__(self, bus: SyncBus, subscription: JetStreamContext.PullSubscription) -> None:
        self.bus = bus
        self.subscription = subscription

    def fetch(self, batch: int, timeout: float) -> list[Msg]:
        """Up to `batch` messages; an empty list when none arrived within `timeout`."""
        try:
            return self.bus.run(self.subscription.fetch(batch, timeout=timeout), timeout + 5)
        except (nats.errors.TimeoutError, TimeoutError):
            return []

    def ack(self, msg: Msg) -> None:
        self.bus.call(msg.ack())

    def nak(self, msg: Msg, delay: float | None = None) -> None:
        self.bus.call(msg.nak(delay=delay))

    def term(self, msg: Msg) -> None:
        self.bus.call(msg.term())

    def in_progress(self, msg: Msg) -> None:
        self.bus.call(msg.in_progress())

    def info(self, timeout: float = 2.0) -> api.ConsumerInfo:
        info: api.ConsumerInfo = self.bus.run(self.subscription.consumer_info(), timeout)
        return info
