"""Claims: actor JWTs embedded in Wasm (SPEC §3) and invocation anti-forgery JWTs (SPEC §4).

Owns the JWT wire form (``{"typ":"jwt","alg":"Ed25519"}``, base64url without padding, Ed25519 over
``header.claims``), the ``wascap`` claim layouts wasmCloud 0.x writes, signing and verifying both
kinds of token, and the ``wasmbus://`` URLs invocations are bound to. Key encoding lives in
``keys.py``, section surgery in ``wasm.py``; policy (which issuers to trust, whether unsigned
actors may run) is the caller's, passed in as arguments.

Over 400 lines: both token kinds share the wire form and the verification path; split, each half would
repeat it.

Every refusal is a ``ClaimsError`` whose message is the reason a host reports. Actors are checked
shape → issuer key → signature → subject → hash → time → trust, so no later reason rests on an
unsigned claim. Invocations check issuer ∈ cluster issuers first: it refuses foreign clusters
before any crypto, and the signature is then checked against a key we already trust.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import math
import os
import time
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Final, NamedTuple

from lattice.errors import ClaimsError
from lattice.keys import KeyPair, generate, is_public_key, verify
from lattice.wasm import (
    JWT_SECTIONS,
    append_custom_section,
    custom_sections,
    module_hash,
    strip_custom_sections,
    unsigned_actor_id,
)

__all__ = [
    "ActorClaims",
    "actor_id_of",
    "actor_url",
    "extract_claims",
    "invocation_hash",
    "provider_url",
    "sign_actor",
    "sign_invocation",
    "verify_actor",
    "verify_invocation",
]

#: The section ``sign_actor`` writes (wasmCloud hosts read both ``jwt`` and ``wasmcloud_jwt``).
JWT_SECTION: Final = "jwt"
#: wascap's internal revision; ≥ 3 tells wasmCloud hosts to check ``hash`` as we compute it.
WASCAP_REVISION: Final = 3
URL_SCHEME: Final = "wasmbus"

_HEADER_JSON: Final = b'{"typ":"jwt","alg":"Ed25519"}'


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except ValueError:  # binascii.Error
        raise ClaimsError(f"malformed JWT: the {what} is not base64url") from None


_HEADER_B64: Final = _b64encode(_HEADER_JSON)


class _Jwt(NamedTuple):
    signing_input: bytes
    claims: dict[str, Any]
    signature: bytes


_COMPACT: Final = json.JSONEncoder(separators=(",", ":"))  # one encoder, not one per token


def _encode_jwt(claims: Mapping[str, object], signer: KeyPair) -> str:
    body = _b64encode(_COMPACT.encode(claims).encode("utf-8"))
    signing_input = f"{_HEADER_B64}.{body}"
    return f"{signing_input}.{_b64encode(signer.sign(signing_input.encode('ascii')))}"


def _json(raw: bytes, what: str) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ClaimsError(f"malformed JWT: the {what} is not JSON") from None


def _decode_jwt(token: str) -> _Jwt:
    """Split and decode a JWT without checking its signature."""
    parts = token.split(".") if token.isascii() else ()
    if len(parts) != 3:
        raise ClaimsError("malformed JWT: expected three base64url parts, header.claims.signature")
    header, body, signature = parts
    if header != _HEADER_B64:  # the common case costs a string compare, not a JSON parse
        fields = _json(_b64decode(header, "header"), "header")
        if not isinstance(fields, dict) or fields.get("alg") != "Ed25519":
            raise ClaimsError("unsupported JWT: the header must say alg Ed25519")
        if str(fields.get("typ", "jwt")).lower() != "jwt":
            raise ClaimsError("unsupported JWT: the header's typ must be jwt")
    claims = _json(_b64decode(body, "claims"), "claims")
    if not isinstance(claims, dict):
        raise ClaimsError("malformed JWT: the claims are not a JSON object")
    return _Jwt(f"{header}.{body}".encode("ascii"), claims, _b64decode(signature, "signature"))


def _iso(ts: int) -> str:
    try:
        return datetime.fromtimestamp(ts, tz=UTC).isoformat()
    except (OverflowError, OSError, ValueError):  # a year outside datetime's range
        return f"unix time {ts}"


def _check_times(exp: int | None, nbf: int | None, now: float | None, what: str) -> None:
    now = time.time() if now is None else now
    if exp is not None and now > exp:
        raise ClaimsError(f"{what} expired at {_iso(exp)}")
    if nbf is not None and now < nbf:
        raise ClaimsError(f"{what} not valid before {_iso(nbf)}")


# --- typed access to untrusted JSON ---------------------------------------------------------------


def _str(d: Mapping[str, Any], key: str) -> str | None:
    value = d.get(key)
    if value is not None and not isinstance(value, str):
        raise ClaimsError(f"malformed claims: {key!r} must be a string")
    return value


def _required_str(d: Mapping[str, Any], key: str) -> str:
    value = d.get(key)
    if not isinstance(value, str):
        raise ClaimsError(f"malformed claims: {key!r} must be a string")
    return value


def _int(d: Mapping[str, Any], key: str) -> int | None:
    value = d.get(key)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    raise ClaimsError(f"malformed claims: {key!r} must be a number")


def _strings(d: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = d.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ClaimsError(f"malformed claims: {key!r} must be a list of strings")
    return tuple(value)


# --- actor claims (SPEC §3) ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ActorClaims:
    """The claims of a signed actor, flattened: JWT fields plus the ``wascap`` actor metadata."""

    jti: str
    iat: int
    iss: str
    sub: str
    exp: int | None
    nbf: int | None
    name: str | None
    hash: str
    tags: tuple[str, ...]
    caps: tuple[str, ...]
    rev: int | None
    ver: str | None
    call_alias: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (lists for ``tags``/``caps``); ``from_dict`` reads it back."""
        out = asdict(self)
        out["tags"], out["caps"] = list(self.tags), list(self.caps)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ActorClaims:
        """The inverse of ``to_dict``; raises ClaimsError on a missing or mistyped field."""
        return cls(
            jti=_str(d, "jti") or "",
            iat=_int(d, "iat") or 0,
            iss=_required_str(d, "iss"),
            sub=_required_str(d, "sub"),
            exp=_int(d, "exp"),
            nbf=_int(d, "nbf"),
            name=_str(d, "name"),
            hash=_required_str(d, "hash"),
            tags=_strings(d, "tags"),
            caps=_strings(d, "caps"),
            rev=_int(d, "rev"),
            ver=_str(d, "ver"),
            call_alias=_str(d, "call_alias"),
        )


_JWT_FIELDS: Final = ("jti", "iat", "iss", "sub", "exp", "nbf")


def _actor_claims(claims: Mapping[str, Any]) -> ActorClaims:
    # Unknown fields (wascap_revision, prov, vendor extensions) are ignored; absent caps = none.
    wascap = claims.get("wascap")
    if not isinstance(wascap, dict):
        raise ClaimsError("malformed claims: no 'wascap' actor metadata object")
    return ActorClaims.from_dict({**wascap, **{k: claims.get(k) for k in _JWT_FIELDS}})


def _find_token(wasm: bytes) -> str | None:
    # Two sections would let an appended token hide behind an older one (wascap#41): refuse, never pick one.
    found = [(name, data) for name, data in custom_sections(wasm) if name in JWT_SECTIONS]
    if len(found) > 1:
        names = ", ".join(name for name, _ in found)
        raise ClaimsError(f"multiple claims sections ({names}): re-sign the actor with `lattice claims sign`")
    if not found:
        return None
    name, data = found[0]
    try:
        return data.decode("ascii")
    except UnicodeDecodeError:
        raise ClaimsError(f"malformed claims: the {name!r} section is not a JWT") from None


def sign_actor(
    wasm: bytes,
    issuer: KeyPair,
    *,
    module: KeyPair | None = None,
    name: str,
    caps: Sequence[str],
    tags: Sequence[str] = (),
    call_alias: str | None = None,
    rev: int | None = None,
    ver: str | None = None,
    expires_in_s: int | None = None,
    not_before: float | None = None,
) -> bytes:
    """``wasm`` with old JWT sections removed and a ``jwt`` section signed by ``issuer`` appended.

    ``module`` is the actor's identity (its id becomes ``module.public_key``); a fresh one is made
    when omitted. ``not_before`` is a Unix time; ``expires_in_s`` counts from now.
    """
    module = generate("module") if module is None else module
    if not is_public_key(issuer.public_key, "A"):
        raise ClaimsError(f"issuer must be an account key (A…), got {issuer.public_key[:8]}…")
    if not is_public_key(module.public_key, "M"):
        raise ClaimsError(f"module must be a module key (M…), got {module.public_key[:8]}…")
    stripped = strip_custom_sections(wasm)
    iat = int(time.time())
    wascap: dict[str, object] = {
        "name": name,
        "hash": module_hash(stripped),
        "tags": list(tags),
        "caps": list(caps),
        "prov": False,
    }
    for key, value in (("rev", rev), ("ver", ver), ("call_alias", call_alias)):
        if value is not None:
            wascap[key] = value
    claims: dict[str, object] = {"jti": uuid.uuid4().hex, "iat": iat, "iss": issuer.public_key}
    claims["sub"] = module.public_key
    if expires_in_s is not None:
        claims["exp"] = iat + int(expires_in_s)
    if not_before is not None:
        claims["nbf"] = int(not_before)
    claims["wascap"] = wascap
    claims["wascap_revision"] = WASCAP_REVISION
    return append_custom_section(stripped, JWT_SECTION, _encode_jwt(claims, issuer).encode("ascii"))


def extract_claims(wasm: bytes) -> ActorClaims | None:
    """The claims in the ``jwt``/``wasmcloud_jwt`` section, *not verified*; None when unsigned.

    Raises InvalidActor for malformed Wasm, ClaimsError for an undecodable token.
    """
    token = _find_token(wasm)
    return None if token is None else _actor_claims(_decode_jwt(token).claims)


def verify_actor(
    wasm: bytes, *, trusted_issuers: Collection[str] | None = None, now: float | None = None
) -> ActorClaims:
    """The actor's claims once signature, module hash, validity period and issuer all check out.

    ``trusted_issuers`` None trusts any account; an empty set trusts none. Raises ClaimsError
    with the reason otherwise (and for an unsigned module), InvalidActor for malformed Wasm.
    """
    token = _find_token(wasm)
    if token is None:
        raise ClaimsError("actor is unsigned: no jwt or wasmcloud_jwt section")
    jwt = _decode_jwt(token)
    claims = _actor_claims(jwt.claims)
    if not is_public_key(claims.iss, "A"):
        raise ClaimsError(f"issuer is not an account key: {claims.iss[:12]!r}")
    if not verify(claims.iss, jwt.signing_input, jwt.signature):
        raise ClaimsError(f"signature invalid: claims altered, or not signed by their issuer {claims.iss}")
    if not is_public_key(claims.sub, "M"):
        raise ClaimsError(f"subject is not a module key: {claims.sub[:12]!r}")
    actual = module_hash(wasm)
    if claims.hash.upper() != actual:
        raise ClaimsError(f"module hash mismatch: claims say {claims.hash}, module is {actual} (altered after signing)")
    _check_times(claims.exp, claims.nbf, now, "actor claims")
    if trusted_issuers is not None and claims.iss not in trusted_issuers:
        raise ClaimsError(f"issuer {claims.iss} is not trusted: add it to the host's trusted issuers")
    return claims


def actor_id_of(wasm: bytes) -> str:
    """The actor's id: its claims' subject when signed, else the unsigned ``MU…`` id (SPEC §3).

    Does not verify; raises InvalidActor / ClaimsError for malformed Wasm or an undecodable token.
    """
    claims = extract_claims(wasm)
    return unsigned_actor_id(wasm) if claims is None else claims.sub


# --- invocation anti-forgery (SPEC §4) -------------------------------------------------------------


def actor_url(actor_id: str) -> str:
    """``wasmbus://M…``: an actor as an invocation origin or target."""
    return f"{URL_SCHEME}://{actor_id}"


def provider_url(contract_id: str, link_name: str, provider_id: str) -> str:
    """``wasmbus://wasmcloud/keyvalue/default/V…``: a provider, as wasmCloud 0.x writes it.

    Like wasmCloud, spaces become ``_`` and contract and link name are lowercased.
    """
    contract = contract_id.replace(":", "/").replace(" ", "_").lower()
    return f"{URL_SCHEME}://{contract}/{link_name.replace(' ', '_').lower()}/{provider_id}"


def invocation_hash(origin_url: str, target_url: str, operation: str, msg: bytes) -> str:
    """SHA-256 (upper hex) of origin_url ‖ target_url/operation ‖ operation ‖ msg.

    ``target_url`` is the bare entity URL; the ``/{operation}`` suffix is added here, which is what
    wasmCloud 0.x hashes.
    """
    digest = hashlib.sha256(origin_url.encode("utf-8"))
    digest.update(f"{target_url}/{operation}".encode())
    digest.update(operation.encode("utf-8"))
    digest.update(msg)
    return digest.hexdigest().upper()


def sign_invocation(
    cluster: KeyPair, *, origin_url: str, target_url: str, operation: str, msg: bytes, host_id: str
) -> str:
    """The ``encoded_claims`` JWT binding this call to its origin, target, operation and payload.

    The claims are the JSON ``json.dumps`` would write (compact, keys in this order); everything but
    ``jti``, ``iat`` and the payload's hash is fixed per (issuer, sender, origin, target, operation) and
    prepared once (``_invocation_template``), the hash continued from a prepared SHA-256 prefix.
    """
    prefix, middle = _invocation_template(cluster.public_key, host_id, origin_url, target_url, operation)
    digest = prefix.copy()
    digest.update(msg)
    claims = f'{{"jti":"{os.urandom(16).hex()}","iat":{int(time.time())}{middle}{digest.hexdigest().upper()}"}}}}'
    signing_input = f"{_HEADER_B64}.{_b64encode(claims.encode('ascii'))}"
    return f"{signing_input}.{_b64encode(cluster.sign(signing_input.encode('ascii')))}"


@functools.lru_cache(maxsize=4096)
def _invocation_template(
    issuer: str, host_id: str, origin_url: str, target_url: str, operation: str
) -> tuple[Any, str]:
    """The SHA-256 of origin_url ‖ target_url/operation ‖ operation so far, and the claims' JSON between
    ``iat`` and the hash (``json.dumps`` escapes every string: ASCII out, whatever the operation name)."""
    target = f"{target_url}/{operation}"
    prefix = hashlib.sha256(origin_url.encode("utf-8"))
    prefix.update(target.encode())
    prefix.update(operation.encode("utf-8"))
    text = json.dumps
    middle = (
        f',"iss":{text(issuer)},"sub":{text(host_id)},'
        f'"wascap":{{"target_url":{text(target)},"origin_url":{text(origin_url)},"hash":"'
    )
    return prefix, middle


def verify_invocation(
    encoded_claims: str,
    *,
    cluster_issuers: Collection[str],
    origin_url: str,
    target_url: str,
    operation: str,
    msg: bytes | None,
    vouched_by: str | None = None,
) -> dict[str, Any]:
    """Refuse (ClaimsError) an invocation not signed by a cluster issuer or not matching its claims;
    returns the claims (``jti``, ``iat`` for the receiver's replay checks).

    ``target_url`` is the bare URL of the receiving entity, as passed to ``sign_invocation``. With
    ``msg`` None the payload hash is left for ``check_invocation_hash`` (the payload is still in the
    object store: nothing is fetched before the signature verified). ``vouched_by``: the cluster issuer
    whose seed the caller already proved this exact token came from (``seal.Sealer.vouched``); a token
    issued by it skips the Ed25519 check, which would prove nothing more. Every other check still runs.
    """
    jwt = _decode_jwt(encoded_claims)
    issuer = jwt.claims.get("iss")
    if not isinstance(issuer, str) or issuer not in cluster_issuers:
        raise ClaimsError(
            f"invocation issuer {str(issuer)[:12]!r} is not a cluster issuer of this lattice "
            "(forged, or sent by a host with another cluster seed)"
        )
    if issuer != vouched_by and not verify(issuer, jwt.signing_input, jwt.signature):
        raise ClaimsError(f"invocation signature invalid: not signed by {issuer}")
    wascap = jwt.claims.get("wascap")
    if not isinstance(wascap, dict):
        raise ClaimsError("malformed invocation claims: no 'wascap' object")
    signed_target = wascap.get("target_url")
    if signed_target != f"{target_url}/{operation}":
        raise ClaimsError(
            f"invocation target mismatch: claims are for {signed_target}, this is {target_url}/{operation} "
            "(replayed to another target?)"
        )
    if wascap.get("origin_url") != origin_url:
        raise ClaimsError(
            f"invocation origin mismatch: claims are from {wascap.get('origin_url')}, the invocation says {origin_url}"
        )
    if "exp" in jwt.claims or "nbf" in jwt.claims:
        _check_times(_int(jwt.claims, "exp"), _int(jwt.claims, "nbf"), None, "invocation claims")
    if msg is not None:
        check_invocation_hash(jwt.claims, origin_url=origin_url, target_url=target_url, operation=operation, msg=msg)
    return jwt.claims


def check_invocation_hash(
    claims: Mapping[str, Any], *, origin_url: str, target_url: str, operation: str, msg: bytes
) -> None:
    """Refuse (ClaimsError) a payload or operation other than the one ``claims`` were signed for."""
    wascap = claims.get("wascap")
    signed = wascap.get("hash") if isinstance(wascap, dict) else None
    if signed != invocation_hash(origin_url, target_url, operation, msg):
        raise ClaimsError("invocation hash mismatch: operation or payload altered after signing")
