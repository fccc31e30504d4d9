"""The NATS JetStream event bus: envelopes, the `sympozium` stream, publish and subscribe.

Every event travels as an envelope `{topic, timestamp, metadata, data}` on the subject
`sympozium.<topic>`. Publishes go through JetStream (the `sympozium` stream captures
`sympozium.>`, limits retention, 24 h, file storage) and wait for the stream's ack;
subscriptions made here are plain core-NATS subscriptions, which see JetStream
publishes too, and nats-py re-establishes them after every reconnect.

`nats` is imported lazily, so a process that never connects pays nothing for it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription
    from nats.js.client import JetStreamContext

__all__ = [
    "DEDUP_HEADER",
    "STREAM_MAX_AGE_SECONDS",
    "STREAM_NAME",
    "STREAM_SUBJECTS",
    "SUBJECT_PREFIX",
    "Envelope",
    "EventBus",
    "EventHandler",
    "build_envelope",
    "parse_envelope",
    "rfc3339_now",
    "subject_for",
]

log = logging.getLogger("sympozium.eventbus")

_M = TypeVar("_M", bound=BaseModel)

STREAM_NAME = "sympozium"
SUBJECT_PREFIX = "sympozium."
STREAM_SUBJECTS = ("sympozium.>",)
STREAM_MAX_AGE_SECONDS = 24 * 60 * 60
STREAM_ENSURE_TRIES = 10
DEDUP_HEADER = "Nats-Msg-Id"  # JetStream drops a second publish with the same id (2 min window)


class Envelope(BaseModel):
    """The event envelope; `data` is any JSON value."""

    model_config = ConfigDict(extra="ignore")

    topic: str
    timestamp: str
    metadata: dict[str, str] = Field(default_factory=dict)
    data: Any = None

    def data_json(self) -> str:
        """`data` as compact JSON text."""
        return json.dumps(self.data, separators=(",", ":"), ensure_ascii=False)

    def data_as(self, model: type[_M]) -> _M:
        """`data` validated as a wire model (raises pydantic's ValidationError)."""
        return model.model_validate(self.data)


EventHandler = Callable[[Envelope], Awaitable[None]]


def rfc3339_now() -> str:
    """UTC now as RFC 3339 with microseconds and a `Z`, like Go's time.Time JSON."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def subject_for(topic_or_subject: str) -> str:
    """`sympozium.` + topic; a string already carrying the prefix is returned as is."""
    if topic_or_subject.startswith(SUBJECT_PREFIX):
        return topic_or_subject
    return SUBJECT_PREFIX + topic_or_subject


def _raw_json(data: bytes | str | BaseModel) -> str:
    if isinstance(data, BaseModel):
        return data.model_dump_json(by_alias=True, exclude_none=True)
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    json.loads(text)  # ValueError (JSONDecodeError / UnicodeDecodeError) when not JSON
    return text.strip()


def build_envelope(
    topic: str,
    data: bytes | str | BaseModel,
    metadata: Mapping[str, str] | None = None,
    *,
    timestamp: str | None = None,
) -> bytes:
    """The envelope's bytes; `data` given as bytes/str is embedded verbatim (must be JSON).

    Raises ValueError when `data` is not JSON.
    """
    head = json.dumps(
        {
            "topic": topic,
            "timestamp": timestamp or rfc3339_now(),
            "metadata": dict(metadata or {}),
        },
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return (head[:-1] + ',"data":' + _raw_json(data) + "}").encode("utf-8")


def parse_envelope(body: bytes, subject: str = "") -> Envelope:
    """An envelope from a message body.

    A body that is JSON but not an envelope (someone published bare data) is wrapped, with
    the topic taken from the subject. Raises ValueError when the body is not JSON.
    """
    try:
        return Envelope.model_validate_json(body)
    except ValidationError:
        pass
    data = json.loads(body)  # ValueError when not JSON at all
    topic = subject.removeprefix(SUBJECT_PREFIX)
    return Envelope(topic=topic, timestamp=rfc3339_now(), data=data)


def _trace_headers(
    traceparent: str | None, tracestate: str | None, msg_id: str | None
) -> dict[str, str] | None:
    headers: dict[str, str] = {}
    if traceparent:
        headers["traceparent"] = traceparent
        if tracestate:
            headers["tracestate"] = tracestate
    if msg_id:
        headers[DEDUP_HEADER] = msg_id
    return headers or None


class EventBus:
    """A connected event bus. Create with `await EventBus.connect(url)`."""

    def __init__(self, nc: Client, js: JetStreamContext) -> None:
        self._nc = nc
        self._js = js

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        name: str = "sympozium",
        reconnect_wait: int = 1,
        connect_timeout: int = 2,
        ensure_stream: bool = True,
    ) -> EventBus:
        """Connect (retrying forever while the server is unreachable) and ensure the stream.

        Raises when the stream cannot be created or updated after 10 tries.
        """
        import nats

        async def on_error(error: Exception) -> None:
            log.warning("event=nats_error error=%s", _kv_value(repr(error)))

        async def on_disconnected() -> None:
            log.warning("event=nats_disconnected")

        async def on_reconnected() -> None:
            log.info("event=nats_reconnected")

        nc = await nats.connect(
            servers=[url],
            name=name,
            allow_reconnect=True,
            max_reconnect_attempts=-1,
            reconnect_time_wait=reconnect_wait,
            connect_timeout=connect_timeout,
            error_cb=on_error,
            disconnected_cb=on_disconnected,
            reconnected_cb=on_reconnected,
        )
        bus = cls(nc, nc.jetstream())
        if ensure_stream:
            try:
                await bus.ensure_stream()
            except BaseException:
                await nc.close()
                raise
        return bus

    @property
    def connected(self) -> bool:
        return bool(self._nc.is_connected)

    @property
    def jetstream(self) -> JetStreamContext:
        return self._js

    async def ensure_stream(self, tries: int = STREAM_ENSURE_TRIES) -> None:
        """Create or update the `sympozium` stream (idempotent); 10 tries with backoff."""
        from nats.js.api import RetentionPolicy, StorageType, StreamConfig
        from nats.js.errors import NotFoundError

        config = StreamConfig(
            name=STREAM_NAME,
            subjects=list(STREAM_SUBJECTS),
            retention=RetentionPolicy.LIMITS,
            max_age=float(STREAM_MAX_AGE_SECONDS),
            storage=StorageType.FILE,
            num_replicas=1,
        )
        delay = 0.2
        for attempt in range(1, tries + 1):
            try:
                try:
                    await self._js.update_stream(config)
                except NotFoundError:
                    await self._js.add_stream(config)
                return
            except Exception as error:
                if attempt == tries:
                    raise
                log.warning(
                    "event=stream_ensure_retry attempt=%d error=%s",
                    attempt,
                    _kv_value(repr(error)),
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def publish(
        self,
        topic: str,
        data: bytes | str | BaseModel,
        metadata: Mapping[str, str] | None = None,
        *,
        traceparent: str | None = None,
        tracestate: str | None = None,
        msg_id: str | None = None,
        ack_timeout: float = 5.0,
    ) -> int:
        """Publish one envelope through JetStream and wait for the ack; its stream sequence.

        `msg_id` sets `Nats-Msg-Id`, so retrying with the same id never stores the event
        twice. Raises ValueError when `data` is not JSON, nats errors when not acked.
        """
        body = build_envelope(topic, data, metadata)
        ack = await self._js.publish(
            subject_for(topic),
            body,
            timeout=ack_timeout,
            headers=_trace_headers(traceparent, tracestate, msg_id),
        )
        return int(ack.seq)

    async def subscribe(self, subject_or_topic: str, handler: EventHandler) -> Subscription:
        """A core-NATS subscription; the handler gets each envelope (errors are logged)."""
        subject = subject_for(subject_or_topic)

        async def on_message(msg: Msg) -> None:
            try:
                envelope = parse_envelope(msg.data, msg.subject)
            except ValueError as error:
                log.warning(
                    "event=bad_message subject=%s error=%s", msg.subject, _kv_value(str(error))
                )
                return
            try:
                await handler(envelope)
            except Exception as error:
                log.exception(
                    "event=handler_failed subject=%s error=%s",
                    msg.subject,
                    _kv_value(repr(error)),
                )

        subscription = await self._nc.subscribe(subject, cb=on_message)
        await self._nc.flush()
        return subscription

    async def close(self) -> None:
        """Flush what is buffered (briefly) and close the connection."""
        if self._nc.is_closed:
            return
        try:
            if self._nc.is_connected:
                await self._nc.flush(timeout=2)
        except Exception as error:
            log.debug("event=flush_failed error=%s", _kv_value(repr(error)))
        await self._nc.close()


def _kv_value(value: str) -> str:
    """A log value: quoted when it has spaces, quotes or `=`."""
    if value and not any(c in value for c in ' "=\n\t'):
        return value
    return json.dumps(value, ensure_ascii=False)
