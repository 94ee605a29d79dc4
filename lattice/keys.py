"""NATS nkeys: Ed25519 key pairs in the encoding wasmCloud and NATS share (SPEC §3, §4).

Owns the text form of keys and seeds, key generation (random and deterministic), signing and
signature checks. It knows nothing of JWTs (``claims.py``) or of where seeds are configured
(``settings.py``).

Encoding, as the Go and Rust nkeys libraries write it:

* public key: base32 without padding of ``prefix byte ‖ 32-byte Ed25519 public key ‖ CRC16``;
* seed: base32 without padding of ``(S<<3 | kind>>5) ‖ (kind&31)<<3 ‖ 32-byte seed ‖ CRC16``;

CRC16 is XMODEM, little-endian. PyPI ``nkeys`` refuses the module (``M``) and service (``V``)
prefixes wasmCloud uses, so one encoder here serves every kind; the tests prove it writes the
same bytes as ``nkeys`` for the kinds ``nkeys`` accepts. We reuse ``nkeys.crc16`` rather than
carry a second CRC table.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Final, Literal

import nacl.exceptions
import nacl.signing
import nkeys

from lattice.errors import ClaimsError

__all__ = [
    "KIND_PREFIXES",
    "KeyKind",
    "KeyPair",
    "deterministic_keypair",
    "from_seed",
    "generate",
    "is_public_key",
    "verify",
]

KeyKind = Literal["account", "module", "cluster", "service", "provider", "server", "user", "operator"]

_PREFIX_BYTE_SEED: Final = 18 << 3  # base32 'S'

#: kind → the letter its public key starts with ("service" and "provider" are the same kind, V).
KIND_PREFIXES: Final[dict[str, str]] = {
    "account": "A",
    "module": "M",
    "cluster": "C",
    "service": "V",
    "provider": "V",
    "server": "N",
    "user": "U",
    "operator": "O",
}

# A base32 letter is 5 bits and the prefix byte puts it in the top 5: 'A'=0, 'B'=1, ... → letter<<3.
_LETTER_TO_BYTE: Final[dict[str, int]] = {
    letter: (ord(letter) - ord("A")) << 3 for letter in set(KIND_PREFIXES.values())
}
_BYTE_TO_LETTER: Final[dict[int, str]] = {b: letter for letter, b in _LETTER_TO_BYTE.items()}

_PUBLIC_KEY_LEN: Final = 56  # base32 of 1 + 32 + 2 bytes
_SEED_LEN: Final = 58  # base32 of 2 + 32 + 2 bytes, padding dropped


def _crc16(data: bytes) -> bytes:
    return int(nkeys.crc16(data)).to_bytes(2, "little")


def _b32encode(raw: bytes) -> str:
    return base64.b32encode(raw).decode("ascii").rstrip("=")


def _b32decode(text: str) -> bytes | None:
    try:
        return base64.b32decode(text + "=" * (-len(text) % 8))
    except (binascii.Error, ValueError):
        return None


def _encode_public(prefix_byte: int, raw_public: bytes) -> str:
    body = bytes([prefix_byte]) + raw_public
    return _b32encode(body + _crc16(body))


def _encode_seed(prefix_byte: int, raw_seed: bytes) -> str:
    body = bytes([_PREFIX_BYTE_SEED | prefix_byte >> 5, (prefix_byte & 31) << 3]) + raw_seed
    return _b32encode(body + _crc16(body))


def _decode_public(public_key: str) -> tuple[str, bytes] | None:
    """(prefix letter, raw 32-byte key), or None when ``public_key`` is not a valid nkey."""
    if len(public_key) != _PUBLIC_KEY_LEN:
        return None
    raw = _b32decode(public_key)
    if raw is None or len(raw) != 35 or _crc16(raw[:33]) != raw[33:]:
        return None
    letter = _BYTE_TO_LETTER.get(raw[0])
    return None if letter is None else (letter, raw[1:33])


def _decode_seed(seed: str) -> tuple[int, bytes]:
    """(kind prefix byte, raw 32-byte seed); raises ClaimsError naming what is wrong."""
    raw = _b32decode(seed) if len(seed) == _SEED_LEN else None
    if raw is None or len(raw) != 36:
        raise ClaimsError("invalid nkeys seed: expected 58 base32 characters starting with 'S'")
    if _crc16(raw[:34]) != raw[34:]:
        raise ClaimsError("invalid nkeys seed: checksum mismatch (mistyped or truncated?)")
    if raw[0] & 0xF8 != _PREFIX_BYTE_SEED:
        raise ClaimsError("invalid nkeys seed: does not start with 'S'")
    prefix_byte = (raw[0] & 7) << 5 | (raw[1] & 0xF8) >> 3
    if prefix_byte not in _BYTE_TO_LETTER:
        raise ClaimsError(f"invalid nkeys seed: unknown key kind (prefix byte {prefix_byte})")
    return prefix_byte, raw[2:34]


@dataclass(frozen=True, slots=True)
class KeyPair:
    """An nkeys key pair that can sign. ``seed`` is secret: it is kept out of ``repr``."""

    public_key: str
    seed: str = field(repr=False)
    _signing_key: nacl.signing.SigningKey = field(repr=False, compare=False)

    @property
    def prefix(self) -> str:
        """The letter that names this key's kind (``A``, ``M``, ``C``, ``V``, ``N``, ``U``, ``O``)."""
        return self.public_key[0]

    def sign(self, data: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``data``."""
        return bytes(self._signing_key.sign(data).signature)

    def derive(self, label: bytes) -> bytes:
        """A 32-byte secret for ``label``, HMAC-SHA256 keyed by the raw seed: only seed holders can compute
        it, and no two labels share one (``seal.py`` keys its message authentication codes with it)."""
        return hmac.digest(self._signing_key.encode(), label, "sha256")


def _keypair(prefix_byte: int, raw_seed: bytes) -> KeyPair:
    signing_key = nacl.signing.SigningKey(raw_seed)
    return KeyPair(
        public_key=_encode_public(prefix_byte, bytes(signing_key.verify_key)),
        seed=_encode_seed(prefix_byte, raw_seed),
        _signing_key=signing_key,
    )


def _prefix_byte(kind: KeyKind) -> int:
    try:
        return _LETTER_TO_BYTE[KIND_PREFIXES[kind]]
    except KeyError:
        raise ClaimsError(f"unknown key kind {kind!r}: use one of {', '.join(KIND_PREFIXES)}") from None


def generate(kind: KeyKind) -> KeyPair:
    """A fresh random key pair of ``kind``."""
    return _keypair(_prefix_byte(kind), nacl.signing.SigningKey.generate().encode())


def deterministic_keypair(kind: KeyKind, label: str) -> KeyPair:
    """The key pair whose raw seed is sha256(``label``): stable ids such as ``builtin:httpserver``.

    Anyone can derive this seed, so it names things; it must never be trusted to authenticate.
    """
    return _keypair(_prefix_byte(kind), hashlib.sha256(label.encode("utf-8")).digest())


def from_seed(seed: str) -> KeyPair:
    """The key pair of an encoded seed (``SA…``, ``SM…``, ``SC…``, ...); raises ClaimsError if invalid."""
    prefix_byte, raw_seed = _decode_seed(seed.strip())
    return _keypair(prefix_byte, raw_seed)


@lru_cache(maxsize=4096)
def _verify_key(public_key: str) -> nacl.signing.VerifyKey | None:
    # Cached: every invocation is checked against one of a handful of cluster keys.
    decoded = _decode_public(public_key)
    return None if decoded is None else nacl.signing.VerifyKey(decoded[1])


def verify(public_key: str, data: bytes, sig: bytes) -> bool:
    """True when ``sig`` is ``public_key``'s signature of ``data``; False otherwise, bad key included."""
    key = _verify_key(public_key)
    if key is None:
        return False
    try:
        key.verify(data, sig)
    except (nacl.exceptions.CryptoError, ValueError, TypeError):
        return False
    return True


def is_public_key(s: str, prefix: str | None = None) -> bool:
    """True when ``s`` is a well-formed nkeys public key (checksum included), of kind ``prefix`` if given.

    ``prefix`` is the letter (``"A"``, ``"M"``, ...) or a kind name (``"account"``, ``"module"``, ...).
    """
    decoded = _decode_public(s) if isinstance(s, str) else None
    if decoded is None:
        return False
    if prefix is None:
        return True
    return decoded[0] == KIND_PREFIXES.get(prefix, prefix)
