"""pyevents — an event-driven actor in Python: NATS messages, blobs and a schedule, no HTTP.

A component actor (SPEC §7) on the ``lattice_actor`` guest library, deployed three ways by the manifests
beside it:
- ``queue.yaml``: consumes ``orders.*`` with the queue group ``orders`` on every host; each message bumps
  ``orders:<body>`` in the key-value store once, lattice-wide, and a request gets ``handled <body>`` back.
- ``blobs.yaml``: a message on ``blobs.transform`` names an object in container ``inbox``; the actor writes
  its upper-cased copy to ``outbox`` under the same name (the data-processing shape: untrusted code over
  files it cannot otherwise reach).
- ``cron.yaml``: every ``Cron.Tick`` bumps ``ticks`` and logs the tick time.
"""

from lattice_actor import Guest, blobstore, codec, handler, keyvalue, log, messaging

__all__ = ["Guest"]  # componentize-py finds the export here


@handler("MessageSubscriber.HandleMessage")
def on_message(payload: bytes) -> bytes:
    msg = messaging.message(payload)
    body = bytes(msg["body"])
    if msg["subject"] == "blobs.transform":
        name = body.decode()
        blobstore.create_container("outbox")
        blobstore.put("outbox", name, blobstore.get("inbox", name).upper(), "text/plain")
        log.info(f"pyevents: transformed {name}")
    else:
        count = keyvalue.increment(f"orders:{body.decode()}")
        log.info(f"pyevents: {msg['subject']} {body.decode()} -> {count}")
    if msg["replyTo"]:
        messaging.publish(msg["replyTo"], b"handled " + body)
    return b""


@handler("Cron.Tick")
def on_tick(payload: bytes) -> bytes:
    tick = codec.unpack(payload) or {}
    count = keyvalue.increment("ticks")
    log.info(f"pyevents: tick {tick.get('tick')} ({count} so far)")
    return b""


@handler("Events.Count")
def count(payload: bytes) -> bytes:
    """The counter named by ``payload`` (``orders:<body>`` or ``ticks``), for tests and ``lattice call``."""
    return (keyvalue.get(payload.decode()) or "0").encode()
