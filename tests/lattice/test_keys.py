"""nkeys encoding, generation and signatures, checked against the reference ``nkeys`` package."""

from __future__ import annotations

import base64

import nkeys
import pytest

from lattice import keys
from lattice.errors import ClaimsError

NKEYS_KINDS = {
    "account": nkeys.PREFIX_BYTE_ACCOUNT,
    "user": nkeys.PREFIX_BYTE_USER,
    "server": nkeys.PREFIX_BYTE_SERVER,
    "cluster": nkeys.PREFIX_BYTE_CLUSTER,
    "operator": nkeys.PREFIX_BYTE_OPERATOR,
}


@pytest.mark.parametrize("kind", sorted(NKEYS_KINDS))
def test_generated_keys_read_back_by_nkeys_identically(kind: keys.KeyKind) -> None:
    kp = keys.generate(kind)
    reference = nkeys.from_seed(kp.seed.encode())
    assert reference.public_key.decode() == kp.public_key
    assert reference.verify(b"payload", kp.sign(b"payload"))


@pytest.mark.parametrize("kind", sorted(NKEYS_KINDS))
def test_nkeys_seeds_read_back_by_us_identically(kind: keys.KeyKind) -> None:
    raw_seed = bytes(range(32))
    seed = nkeys.encode_seed(raw_seed, NKEYS_KINDS[kind]).decode()
    reference = nkeys.from_seed(seed.encode())
    ours = keys.from_seed(seed)
    assert ours.seed == seed
    assert ours.public_key == reference.public_key.decode()
    assert ours.sign(b"x") == reference.sign(b"x")
    assert keys.verify(ours.public_key, b"x", reference.sign(b"x"))


@pytest.mark.parametrize(
    ("kind", "letter"),
    [("account", "A"), ("module", "M"), ("cluster", "C"), ("service", "V"), ("provider", "V"),
     ("server", "N"), ("user", "U"), ("operator", "O")],
)  # fmt: skip
def test_every_kind_has_its_letter_and_round_trips(kind: keys.KeyKind, letter: str) -> None:
    kp = keys.generate(kind)
    assert kp.public_key[0] == letter
    assert kp.prefix == letter
    assert kp.seed[:2] == "S" + letter
    assert len(kp.public_key) == 56
    assert len(kp.seed) == 58
    assert keys.from_seed(kp.seed) == kp
    assert keys.is_public_key(kp.public_key, letter)
    assert keys.is_public_key(kp.public_key, kind)


def test_module_key_layout_matches_the_nkeys_format() -> None:
    kp = keys.generate("module")
    raw = base64.b32decode(kp.public_key + "=" * (-len(kp.public_key) % 8))
    assert raw[0] == 12 << 3
    assert int(nkeys.crc16(raw[:33])).to_bytes(2, "little") == raw[33:]


def test_signatures_verify_and_forgeries_do_not() -> None:
    kp, other = keys.generate("account"), keys.generate("account")
    sig = kp.sign(b"hello")
    assert keys.verify(kp.public_key, b"hello", sig)
    assert not keys.verify(kp.public_key, b"hellO", sig)
    assert not keys.verify(other.public_key, b"hello", sig)
    assert not keys.verify(kp.public_key, b"hello", sig[:10])
    assert not keys.verify("not-a-key", b"hello", sig)


def test_deterministic_keypair_is_stable_per_label() -> None:
    a = keys.deterministic_keypair("service", "builtin:httpserver")
    assert a == keys.deterministic_keypair("service", "builtin:httpserver")
    assert a.public_key.startswith("V")
    assert a != keys.deterministic_keypair("service", "builtin:keyvalue")


def test_is_public_key_rejects_bad_checksum_wrong_kind_and_seeds() -> None:
    kp = keys.generate("account")
    flipped = kp.public_key[:-1] + ("A" if kp.public_key[-1] != "A" else "B")
    assert not keys.is_public_key(flipped)
    assert not keys.is_public_key(kp.public_key, "M")
    assert not keys.is_public_key(kp.seed)
    assert not keys.is_public_key("")
    assert not keys.is_public_key(kp.public_key.lower())


@pytest.mark.parametrize("bad", ["", "SAxyz", "not a seed at all", "U" * 58])
def test_from_seed_refuses_garbage_with_a_reason(bad: str) -> None:
    with pytest.raises(ClaimsError, match="invalid nkeys seed"):
        keys.from_seed(bad)


def test_from_seed_refuses_a_seed_with_a_broken_checksum() -> None:
    seed = keys.generate("cluster").seed
    broken = seed[:10] + ("A" if seed[10] != "A" else "B") + seed[11:]
    with pytest.raises(ClaimsError, match="checksum"):
        keys.from_seed(broken)


def test_seed_is_not_in_repr() -> None:
    kp = keys.generate("cluster")
    assert kp.seed not in repr(kp)
