"""Connecting to NATS (auth from settings, reconnects, giving up), settling fresh subscriptions, and
opening JetStream KV / object stores.

SPEC §6 credentials: user/password, an nkey seed, or a creds file. Every participant connects through
``connect`` so that auth, reconnect and naming behave the same everywhere, and closes through
``drain``. A connection that is gone for good (closed by the server, or unreachable past
``Settings.nats_give_up_s``) is reported to its participant, which stops and exits non-zero: nobody
keeps serving, or holding ports, on a connection that will never come back.
"""

from __future__ import annotations

import asyncio
import tempfile
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import nats
import nats.errors
import structlog
from nats.aio.client import Client as NATS
from nats.aio.subscription import Subscription
from nats.errors import NoRespondersError
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, ObjectStoreConfig, StorageType
from nats.js.errors import (
    APIError,
    BucketNotFoundError,
    KeyWrongLastSequenceError,
    NotFoundError,
    ServiceUnavailableError,
)
from nats.js.kv import KeyValue
from nats.js.object_store import ObjectStore

from lattice.errors import ConfigError
from lattice.settings import Settings

log = structlog.get_logger("lattice.connection")
T = TypeVar("T")


def _nkey_seed_file(seed: str) -> str:
    """nats-py takes an nkey seed as a file path; write it to a private temp file."""
    f = tempfile.NamedTemporaryFile("w", prefix="lattice-nkey-", suffix=".nk", delete=False)  # noqa: SIM115
    with f:
        f.write(seed)
    return f.name


async def connect(
    settings: Settings,
    name: str,
    *,
    on_reconnect: Callable[[], Awaitable[None]] | None = None,
    on_lost: Callable[[str], None] | None = None,
    max_reconnect_attempts: int = -1,
    connect_timeout_s: float = 2.0,
) -> NATS:
    """Connect to ``settings.nats_url`` as ``name``; reconnects on its own while the server is away.

    ``on_lost(reason)`` is called once, on the event loop, when the connection is gone for good: the
    server closed it (a protocol error such as an over-long subject: nats-py does not reconnect then),
    or it stayed unreachable for ``settings.nats_give_up_s`` (the client is then closed). Not called for
    a close this process asked for through ``drain``. Whoever passes it must stop serving and let its
    process exit non-zero, so that its supervisor restarts it with a fresh connection.

    Raises ``ConfigError`` when the first connect fails (unreachable, refused credentials).
    """
    watch = Watch(name, settings.nats_give_up_s, on_reconnect, on_lost)
    opts: dict[str, Any] = {
        "servers": settings.nats_url.split(","),
        "name": name,
        "max_reconnect_attempts": max_reconnect_attempts,
        "reconnect_time_wait": 0.25,
        "connect_timeout": connect_timeout_s,
        "allow_reconnect": True,
        "error_cb": watch.error,
        "disconnected_cb": watch.disconnected,
        "reconnected_cb": watch.reconnected,
        "closed_cb": watch.closed,
        "pending_size": 64 * 1024 * 1024,
        # notice a server that went away (a cut network) in ~15 s, not nats-py's default 4 minutes
        "ping_interval": 5,
        "max_outstanding_pings": 3,
    }
    if settings.nats_user:
        opts["user"] = settings.nats_user
        opts["password"] = settings.nats_password or ""
    if settings.nats_nkey_seed:
        opts["nkeys_seed"] = _nkey_seed_file(settings.nats_nkey_seed)
    if settings.nats_creds:
        opts["user_credentials"] = settings.nats_creds
    await _probe(opts)
    nc = await nats.connect(**opts)
    watch.nc = nc
    _WATCHES[nc] = watch
    return nc


async def drain(nc: NATS, timeout_s: float = 5.0) -> None:
    """Close ``nc`` on purpose (drain, then close; ``on_lost`` is not called). Never raises: a
    connection that is already gone is logged and closed."""
    watch = _WATCHES.get(nc)
    if watch is not None:
        watch.closing = True
    if nc.is_closed:
        return
    try:
        await asyncio.wait_for(nc.drain(), timeout_s)
    except Exception as exc:  # reconnecting, timed out, or closed under us: close it hard
        log.info("nats drain incomplete; closing", error=str(exc) or type(exc).__name__)
        await close_quietly(nc)


async def close_quietly(nc: NATS) -> None:
    """``nc.close()``; a failure (nats-py may trip over a transport that is already gone) is logged."""
    try:
        await nc.close()
    except Exception as exc:
        log.info("nats close failed; the connection is gone anyway", error=str(exc) or type(exc).__name__)


class Watch:
    """One connection's outages: logged once each (failed attempts counted, not each printed), given up
    on after ``give_up_s`` (0 = never), and reported through ``on_lost`` when the connection is gone."""

    def __init__(
        self,
        name: str,
        give_up_s: float,
        on_reconnect: Callable[[], Awaitable[None]] | None,
        on_lost: Callable[[str], None] | None,
    ) -> None:
        self.name = name
        self.give_up_s = give_up_s
        self.on_reconnect = on_reconnect
        self.on_lost = on_lost
        self.nc: NATS | None = None
        self.closing = False
        self.lost = False
        self.failures = 0
        self.down_since: float | None = None
        self._give_up: asyncio.TimerHandle | None = None
        self._closer: asyncio.Future[None] | None = None

    async def error(self, exc: Exception) -> None:
        if self.down_since is not None:
            self.failures += 1  # one per failed reconnect attempt: counted, reported when the outage ends
            return
        log.warning("nats error", client=self.name, error=str(exc) or type(exc).__name__)

    async def disconnected(self) -> None:
        if self.closing or self.nc is None or self.nc.is_closed or self.down_since is not None:
            return  # our own shutdown, a close (``closed`` reports it), or the same outage again
        loop = asyncio.get_running_loop()
        self.down_since, self.failures = loop.time(), 0
        log.warning("nats disconnected; reconnecting", client=self.name, give_up_s=self.give_up_s or None)
        if self.give_up_s > 0:
            self._give_up = loop.call_later(self.give_up_s, self._check_give_up)

    async def reconnected(self) -> None:
        if self._give_up is not None:
            self._give_up.cancel()
        down = asyncio.get_running_loop().time() - self.down_since if self.down_since is not None else 0.0
        log.info("nats reconnected", client=self.name, down_s=round(down, 2), failed_attempts=self.failures)
        self.down_since, self.failures = None, 0
        if self.on_reconnect is not None:
            await self.on_reconnect()

    async def closed(self) -> None:
        if self._give_up is not None:
            self._give_up.cancel()
        error = self.nc.last_error if self.nc is not None else None
        self._report(f"the server closed the connection ({error})" if error else "the connection closed")

    def _check_give_up(self) -> None:
        if self.nc is None or self.nc.is_connected or self.closing:
            return
        reason = f"NATS unreachable for {self.give_up_s:g} s ({self.failures} reconnect attempts failed)"
        self._report(reason)
        self._closer = asyncio.ensure_future(close_quietly(self.nc))  # stop reconnecting; ``closed`` finds it reported

    def _report(self, reason: str) -> None:
        if self.closing or self.lost:
            return
        self.lost = True
        log.error("nats connection lost for good", client=self.name, reason=reason)
        if self.on_lost is not None:
            self.on_lost(reason)


_WATCHES: weakref.WeakKeyDictionary[NATS, Watch] = weakref.WeakKeyDictionary()


async def _quiet(exc: Exception) -> None:
    return None


async def _quiet_event() -> None:
    return None


async def _probe(opts: dict[str, Any]) -> None:
    """One connection without reconnects, closed at once: nats-py retries a refused first connect forever
    when reconnecting is on, so refused credentials would hang instead of failing with a reason."""
    try:
        # 1, not 0: nats-py 2.16 reads 0 as "retry forever"; callbacks off so a probe is not logged as an outage
        probe = await nats.connect(
            **{
                **opts,
                "allow_reconnect": False,
                "max_reconnect_attempts": 1,
                "error_cb": _quiet,
                "disconnected_cb": _quiet_event,
                "reconnected_cb": _quiet_event,
                "closed_cb": _quiet_event,
            }
        )
    except nats.errors.NoServersError as exc:
        raise ConfigError(f"cannot reach NATS at {opts['servers']}: is nats-server running?") from exc
    except nats.errors.Error as exc:
        if "authorization" in str(exc).lower():
            raise ConfigError(f"NATS at {opts['servers']} refused the credentials: {exc}") from exc
        raise
    await probe.close()


async def settle(nc: NATS) -> None:
    """Return once the server has processed everything sent on ``nc`` so far (subscriptions included).

    Call it after subscribing and before announcing that you serve (events, replies), so nobody is
    told about a subject the server does not route yet. nats-py's ``flush()`` writes its PING straight
    to the socket, ahead of commands still queued for its flusher task, so one flush may come back
    before a fresh SUB reached the server. By the time that first PONG is read the flusher has written
    the queue, so the second PING follows the SUBs.
    """
    await nc.flush()
    await nc.flush()


async def drain_subscription(nc: NATS, sub: Subscription) -> None:
    """Stop ``sub`` without dropping a message the server already routed to it: each is handed to the
    callback before the subscription is forgotten.

    nats-py's ``Subscription.drain`` queues its UNSUB and then writes its flush PING straight to the socket
    (see ``settle``): the PONG can come back before the server stopped routing to the subscription, and a
    message it sends after that arrives for a forgotten subscription and is dropped. For an actor that
    stops, that was a call answered by nobody (the caller timed out) instead of ``no_responders``.
    """
    await nc._send_unsubscribe(sub._id)  # private (nats-py>=2.16,<3): UNSUB, keeping the subscription
    await settle(nc)  # the server has processed the UNSUB: everything it routed here has arrived
    await sub.drain()  # type: ignore[no-untyped-call]  # hand what arrived to the callback, then forget it


async def key_value(
    js: JetStreamContext, bucket: str, *, history: int = 1, replicas: int = 1, ttl_s: float | None = None
) -> KeyValue:
    """Open ``bucket``, creating it (file storage, ``replicas`` copies, entries kept ``ttl_s`` when given)
    when it does not exist.

    Retries while JetStream is not ready (a server that just restarted, a cluster electing leaders) for
    up to ``OPEN_TIMEOUT_S``; raises the last error after that.
    """

    async def open_it() -> KeyValue:
        try:
            return await js.key_value(bucket)
        except (BucketNotFoundError, NotFoundError):
            config = KeyValueConfig(
                bucket=bucket, history=history, storage=StorageType.FILE, replicas=replicas, ttl=ttl_s
            )
            return await js.create_key_value(config)

    return await _retrying(open_it, bucket)


async def object_store(js: JetStreamContext, bucket: str, *, replicas: int = 1) -> ObjectStore:
    """Open the object store ``bucket``, creating it when it does not exist (retried as ``key_value``)."""

    async def open_it() -> ObjectStore:
        try:
            return await js.object_store(bucket)
        except (BucketNotFoundError, NotFoundError):
            return await js.create_object_store(bucket, ObjectStoreConfig(storage=StorageType.FILE, replicas=replicas))

    return await _retrying(open_it, bucket)


OPEN_TIMEOUT_S = 30.0


def lost_race(exc: Exception) -> bool:
    """Whether a KV compare-and-set (``create``, ``update``/``delete`` with ``last=``) failed because
    another writer changed the key first (JetStream's "wrong last sequence", 10071/10164)."""
    return isinstance(exc, KeyWrongLastSequenceError) or (isinstance(exc, APIError) and exc.err_code in (10071, 10164))


#: what JetStream answers while it is not ready (a server restarting, a cluster electing stream leaders)
TRANSIENT = (TimeoutError, nats.errors.TimeoutError, ServiceUnavailableError, NoRespondersError)


async def retrying(call: Callable[[], Awaitable[T]], what: str, timeout_s: float = 5.0) -> T:
    """``await call()``, retried with backoff for up to ``timeout_s`` while JetStream is not ready;
    raises the last ``TRANSIENT`` error after that, anything else at once."""
    return await _retrying(call, what, timeout_s)


async def _retrying(open_it: Callable[[], Awaitable[T]], bucket: str, timeout_s: float = OPEN_TIMEOUT_S) -> T:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    delay = 0.1
    while True:
        try:
            return await open_it()
        except TRANSIENT as exc:
            if loop.time() > deadline:
                raise
            log.info("JetStream not ready; retrying", bucket=bucket, error=str(exc) or type(exc).__name__)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


async def cancel_and_wait(*tasks: asyncio.Task[Any]) -> None:
    """Cancel ``tasks`` and wait until each has ended, cancelling again while one has not.

    Python 3.11's ``asyncio.wait_for`` (used inside nats-py too) can swallow a cancellation that races
    with its inner future finishing; a task cancelled once may then run on, and a plain ``await`` on it
    would hang a shutdown for good.
    """
    pending = {t for t in tasks if not t.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.1)
    for task in tasks:
        if not task.cancelled():
            task.exception()  # retrieved, so asyncio does not warn about it
