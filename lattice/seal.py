"""Seals: the one signature and the one check for every lattice message that must come from a member.

NATS access is not membership: a member holds the cluster seed (``C…``). Every message that changes
something — control commands, link and claims entries in ``LATTICEDATA``, provider ``linkdefs``
and ``shutdown`` requests, invocation responses — carries a seal, and receivers drop what does not
verify. Invocations themselves carry SPEC §4's ``encoded_claims`` JWT, checked in ``claims.py`` and
de-duplicated through the same ``ReplayGuard``.

A seal is one text value (a NATS header ``Lattice-Seal``, or a ``seal`` field in a KV entry)::

    v1.<issuer public key>.<unix ms>.<nonce>.<base64url Ed25519 signature>
    m1.<issuer public key>.<unix ms>.<nonce>.<base64url keyed BLAKE2b-256>

over ``b"lattice-seal-v1\\n" + context + b"\\n" + ms + b"\\n" + nonce + b"\\n" + body``. The
``context`` binds the seal to where the body is meant to go (the NATS subject of a command, the
invocation a response answers, the KV key of an entry), so a seal cannot be moved to another message.
Messages (not KV entries) are fresh for ``max_age_s`` and accepted once per nonce.

``m1`` seals are for the hot path between members that hold the *same* cluster seed: the code is keyed
by a secret derived from that seed (``KeyPair.derive``), so exactly the parties who could make a ``v1``
seal can make one, and a receiver accepts it only when the issuer is its own cluster key. ``vouch`` is the
same code over an invocation's ``encoded_claims``: a receiver holding the seed checks it instead of the
JWT's Ed25519 signature (docs/security.md, "Fast path between members").

Costs (PyNaCl on this machine; the ``cryptography`` package measured slower: sign 19 µs, verify 60 µs):
Ed25519 sealing ~15 µs, checking ~40-50 µs; a keyed BLAKE2b ~1 µs. Keep every seal here: the RPC protocol may
change, the seal not.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Collection, Mapping
from typing import Final

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from lattice import keys
from lattice.errors import ClaimsError

HEADER: Final = "Lattice-Seal"
VERSION: Final = "v1"
MAC_VERSION: Final = "m1"
_MAC_LABEL: Final = b"lattice-mac-v1"
_SEAL_PERSON: Final = b"lattice-seal-m1"  # BLAKE2b personalisation: one key, two uses that cannot be swapped
_VOUCH_PERSON: Final = b"lattice-claim-m1"
MAX_AGE_S: Final = 60.0
"""How old (or, for clock skew, how far in the future) a sealed message or invocation may be."""
MAX_REMEMBERED: Final = 200_000
"""Nonces remembered at most; past this the oldest are forgotten (they are expiring anyway)."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signing_input(context: str, ms: str, nonce: str, body: bytes) -> bytes:
    return b"lattice-seal-v1\n" + context.encode() + b"\n" + ms.encode() + b"\n" + nonce.encode() + b"\n" + body


class ReplayGuard:
    """Nonces (seal nonces, invocation ``jti``) seen within ``max_age_s``: each is accepted once.

    Thread-safe; memory is bounded by ``max_remembered`` (the oldest go first, and a forgotten one is
    at most ``max_age_s`` old, so replaying it fails the age check soon after anyway).
    """

    def __init__(self, max_age_s: float = MAX_AGE_S, max_remembered: int = MAX_REMEMBERED) -> None:
        self.max_age_s = max_age_s
        self.max_remembered = max_remembered
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def check_time(self, issued_at: float, what: str, now: float | None = None) -> None:
        """Refuse (``ClaimsError``) a message issued more than ``max_age_s`` ago or ahead."""
        now = time.time() if now is None else now
        if issued_at < now - self.max_age_s:
            raise ClaimsError(f"{what} expired: issued {now - issued_at:.0f} s ago (replayed? clocks apart?)")
        if issued_at > now + self.max_age_s:
            raise ClaimsError(f"{what} issued {issued_at - now:.0f} s in the future: are the clocks apart?")

    def first_use(self, nonce: str, what: str, now: float | None = None) -> None:
        """Record ``nonce``; ``ClaimsError`` if it was already used (a replay)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            while self._seen:
                oldest, seen_at = next(iter(self._seen.items()))
                if seen_at >= now - 2 * self.max_age_s and len(self._seen) < self.max_remembered:
                    break
                del self._seen[oldest]
            if nonce in self._seen:
                raise ClaimsError(f"{what} {nonce[:16]} was already accepted once: replay refused")
            self._seen[nonce] = now


class Sealer:
    """Seals with ``key`` (the cluster key) and checks seals from any of ``issuers`` (itself included)."""

    def __init__(self, key: keys.KeyPair, issuers: Collection[str] = (), guard: ReplayGuard | None = None) -> None:
        self.key = key
        self.issuers = frozenset({key.public_key, *issuers})
        self.guard = guard or ReplayGuard()
        self._mac_key = key.derive(_MAC_LABEL)

    def _mac(self, data: bytes, person: bytes = _SEAL_PERSON) -> bytes:
        # keyed BLAKE2b is a MAC by design (RFC 7693 §2.9): ~1 µs where OpenSSL's HMAC takes 2-6 µs here
        return hashlib.blake2b(data, digest_size=32, key=self._mac_key, person=person).digest()

    def seal(self, context: str, body: bytes, *, mac: bool = False) -> str:
        """The seal of ``body`` meant for ``context``: Ed25519 (``v1``), or with ``mac`` an ``m1`` code only
        holders of this cluster seed can make and check."""
        ms, nonce = str(time.time_ns() // 1_000_000), _b64(os.urandom(12))
        data = _signing_input(context, ms, nonce, body)
        if mac:
            return f"{MAC_VERSION}.{self.key.public_key}.{ms}.{nonce}.{_b64(self._mac(data))}"
        return f"{VERSION}.{self.key.public_key}.{ms}.{nonce}.{_b64(self.key.sign(data))}"

    def headers(self, context: str, body: bytes, *, mac: bool = False) -> dict[str, str]:
        """NATS headers carrying the seal of a message."""
        return {HEADER: self.seal(context, body, mac=mac)}

    def vouch(self, token: str) -> bytes:
        """The code that proves to a holder of this cluster seed that ``token`` (an invocation's
        ``encoded_claims``) comes from one too; checking it replaces checking the JWT's signature."""
        return self._mac(token.encode(), _VOUCH_PERSON)

    def vouched(self, token: str, code: bytes) -> bool:
        """True when ``code`` is ``vouch(token)`` (constant-time compare): made with this very seed."""
        return len(code) == 32 and hmac.compare_digest(self.vouch(token), code)

    def check(self, seal: str | None, context: str, body: bytes, *, what: str, fresh: bool = True) -> str:
        """Verify ``seal``; returns the issuer. ``fresh``: also refuse old and already-seen seals.

        Raises ``ClaimsError`` saying why (missing, malformed, foreign issuer, bad signature, replay).
        """
        if not seal:
            raise ClaimsError(f"{what} is not sealed with the cluster key: refused (see docs/security.md)")
        parts = seal.split(".")
        if len(parts) != 5 or parts[0] not in (VERSION, MAC_VERSION) or not parts[2].isdigit():
            raise ClaimsError(f"{what} carries a malformed seal: refused")
        version, issuer, ms, nonce, sig_text = parts
        if issuer not in self.issuers:
            raise ClaimsError(f"{what} is sealed by {issuer[:12]}…, not a cluster issuer of this lattice: refused")
        if version == MAC_VERSION and issuer != self.key.public_key:
            raise ClaimsError(f"{what} carries a code only holders of {issuer[:12]}…'s seed can check: refused")
        try:
            sig = _unb64(sig_text)
        except (binascii.Error, ValueError):
            raise ClaimsError(f"{what} carries a malformed seal: refused") from None
        data = _signing_input(context, ms, nonce, body)
        mac = version == MAC_VERSION
        if not (hmac.compare_digest(self._mac(data), sig) if mac else keys.verify(issuer, data, sig)):
            raise ClaimsError(f"{what} seal does not verify (altered, or meant for another subject): refused")
        if fresh:
            self.guard.check_time(int(ms) / 1000, what)
            self.guard.first_use(nonce, what)
        return issuer

    def check_headers(
        self, headers: Mapping[str, str] | None, context: str, body: bytes, *, what: str, fresh: bool = True
    ) -> str:
        """``check`` of the seal in a NATS message's headers."""
        return self.check((headers or {}).get(HEADER), context, body, what=what, fresh=fresh)


def reply_context(subject: str) -> str:
    """What the seal of a reply to a request on ``subject`` is bound to."""
    return f"reply {subject}"


async def request(nc: NATS, sealer: Sealer, subject: str, body: bytes, *, timeout: float) -> Msg:  # noqa: ASYNC109
    """A sealed request on ``subject`` (a control command, a provider ``linkdefs``/``shutdown``); the
    reply must be sealed for it too, else ``ClaimsError``."""
    reply: Msg = await nc.request(subject, body, timeout=timeout, headers=sealer.headers(subject, body))
    sealer.check_headers(reply.headers, reply_context(subject), reply.data, what=f"the reply on {subject}")
    return reply


async def respond(nc: NATS, sealer: Sealer, msg: Msg, body: bytes) -> None:
    """Answer a sealed request with a sealed reply (nothing when it asked for none)."""
    if msg.reply:
        await nc.publish(msg.reply, body, headers=sealer.headers(reply_context(msg.subject), body))
