"""Actor claims (SPEC §3) and invocation anti-forgery claims (SPEC §4), with real keys."""

from __future__ import annotations

import base64
import contextlib
import json
import time
import timeit

import pytest
import wasmtime
from hypothesis import given
from hypothesis import strategies as st

from lattice import claims, keys, wasm
from lattice.errors import ClaimsError, InvalidActor

MODULE = bytes(wasmtime.wat2wasm('(module (memory (export "memory") 1) (func (export "f") (result i32) i32.const 7))'))
ISSUER = keys.generate("account")
ACTOR = keys.generate("module")
CLUSTER = keys.generate("cluster")


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def signed(**overrides: object) -> bytes:
    options: dict[str, object] = {"module": ACTOR, "name": "echo", "caps": ["wasmcloud:httpserver"]}
    options.update(overrides)
    return claims.sign_actor(MODULE, ISSUER, **options)  # type: ignore[arg-type]


def token_of(module: bytes) -> str:
    [(_, data)] = [s for s in wasm.custom_sections(module) if s[0] in wasm.JWT_SECTIONS]
    return data.decode()


def hand_signed(payload: dict[str, object], signer: keys.KeyPair = ISSUER, section: str = "jwt") -> bytes:
    """A module carrying a JWT built here by hand, the way another implementation would."""
    payload = {"wascap": {"hash": wasm.module_hash(MODULE)}, **payload}
    head = b64(b'{"typ":"jwt","alg":"Ed25519"}') + "." + b64(json.dumps(payload).encode())
    token = head + "." + b64(signer.sign(head.encode()))
    return wasm.append_custom_section(MODULE, section, token.encode())


# --- actor claims -----------------------------------------------------------------------------------


def test_sign_then_verify_round_trips_every_field() -> None:
    module = signed(tags=["demo"], call_alias="demo/echo", rev=3, ver="1.2.0", expires_in_s=3600)
    got = claims.verify_actor(module, trusted_issuers={ISSUER.public_key})
    assert got.iss == ISSUER.public_key
    assert got.sub == ACTOR.public_key
    assert (got.name, got.tags, got.caps) == ("echo", ("demo",), ("wasmcloud:httpserver",))
    assert (got.call_alias, got.rev, got.ver) == ("demo/echo", 3, "1.2.0")
    assert got.hash == wasm.module_hash(MODULE)
    assert got.exp == got.iat + 3600
    assert got.nbf is None
    assert claims.extract_claims(module) == got
    assert claims.actor_id_of(module) == ACTOR.public_key
    assert claims.ActorClaims.from_dict(json.loads(json.dumps(got.to_dict()))) == got
    wasmtime.Module(wasmtime.Engine(), module)


def test_signed_jwt_has_the_spec_header_and_wascap_layout() -> None:
    header, body, _ = token_of(signed()).split(".")
    assert json.loads(unb64(header)) == {"typ": "jwt", "alg": "Ed25519"}
    payload = json.loads(unb64(body))
    assert {"jti", "iat", "iss", "sub", "wascap"} <= payload.keys()
    assert payload["wascap"]["prov"] is False
    assert payload["wascap_revision"] == 3


def test_resigning_replaces_the_old_token() -> None:
    other = keys.generate("account")
    twice = claims.sign_actor(signed(), other, module=ACTOR, name="again", caps=[])
    assert [name for name, _ in wasm.custom_sections(twice)] == ["jwt"]
    assert claims.verify_actor(twice).iss == other.public_key
    assert wasm.module_hash(twice) == wasm.module_hash(MODULE)


def test_unsigned_module_has_no_claims_and_the_mu_id() -> None:
    assert claims.extract_claims(MODULE) is None
    assert claims.actor_id_of(MODULE) == wasm.unsigned_actor_id(MODULE)
    with pytest.raises(ClaimsError, match="unsigned"):
        claims.verify_actor(MODULE)


def test_tampered_code_is_a_hash_mismatch() -> None:
    module = signed()
    tampered = module.replace(b"\x41\x07", b"\x41\x08")  # i32.const 7 -> 8
    assert tampered != module
    with pytest.raises(ClaimsError, match=r"module hash mismatch: claims say [0-9A-F]{64}, module is"):
        claims.verify_actor(tampered)


def test_tampered_jwt_payload_is_an_invalid_signature() -> None:
    module = signed()
    header, body, sig = token_of(module).split(".")
    payload = json.loads(unb64(body))
    payload["wascap"]["caps"].append("wasmcloud:keyvalue")
    forged = f"{header}.{b64(json.dumps(payload).encode())}.{sig}"
    with pytest.raises(ClaimsError, match="signature invalid"):
        claims.verify_actor(wasm.append_custom_section(MODULE, "jwt", forged.encode()))


def test_expired_and_not_yet_valid_claims_are_refused() -> None:
    module = signed(expires_in_s=60)
    claims.verify_actor(module)
    with pytest.raises(ClaimsError, match=r"expired at \d{4}-\d\d-\d\dT"):
        claims.verify_actor(module, now=time.time() + 120)
    later = signed(not_before=time.time() + 3600)
    with pytest.raises(ClaimsError, match="not valid before"):
        claims.verify_actor(later)
    assert claims.verify_actor(later, now=time.time() + 7200).nbf is not None


def test_untrusted_issuer_is_refused_and_trust_is_optional() -> None:
    module = signed()
    with pytest.raises(ClaimsError, match=f"issuer {ISSUER.public_key} is not trusted"):
        claims.verify_actor(module, trusted_issuers={keys.generate("account").public_key})
    with pytest.raises(ClaimsError, match="is not trusted"):
        claims.verify_actor(module, trusted_issuers=set())
    claims.verify_actor(module, trusted_issuers=None)


def test_issuer_and_subject_must_be_the_right_kinds_of_key() -> None:
    user = keys.generate("user")
    bad_issuer = hand_signed({"jti": "x", "iat": 1, "iss": user.public_key, "sub": ACTOR.public_key}, user)
    with pytest.raises(ClaimsError, match="issuer is not an account key"):
        claims.verify_actor(bad_issuer)
    bad_subject = hand_signed({"jti": "x", "iat": 1, "iss": ISSUER.public_key, "sub": user.public_key})
    with pytest.raises(ClaimsError, match="subject is not a module key"):
        claims.verify_actor(bad_subject)
    with pytest.raises(ClaimsError, match="must be an account key"):
        claims.sign_actor(MODULE, user, name="x", caps=[])


def test_wasmcloud_jwt_section_and_unknown_fields_are_accepted() -> None:
    payload: dict[str, object] = {
        "jti": "abc",
        "iat": 1,
        "iss": ISSUER.public_key,
        "sub": ACTOR.public_key,
        "wascap_revision": 3,
        "x_vendor": {"anything": [1, 2]},
        "wascap": {"name": "legacy", "hash": wasm.module_hash(MODULE), "prov": False, "future": 1},
    }
    module = hand_signed(payload, section="wasmcloud_jwt")
    got = claims.verify_actor(module)
    assert (got.name, got.caps, got.tags) == ("legacy", (), ())  # caps absent = no capabilities
    assert claims.actor_id_of(module) == ACTOR.public_key


def test_alg_none_and_malformed_tokens_are_claims_errors() -> None:
    payload = b64(json.dumps({"iss": ISSUER.public_key, "sub": ACTOR.public_key, "wascap": {}}).encode())
    for token in (
        b64(b'{"alg":"none"}') + "." + payload + ".",
        "a.b",
        "not base64!.x.y",
        b64(b"{}") + "." + b64(b"[1]") + ".",
    ):
        with pytest.raises(ClaimsError):
            claims.verify_actor(wasm.append_custom_section(MODULE, "jwt", token.encode()))


@given(st.binary(max_size=200))
def test_random_bytes_raise_only_invalid_actor_or_claims_error(blob: bytes) -> None:
    for candidate in (
        blob,
        b"\0asm\x01\x00\x00\x00" + blob,
        wasm.append_custom_section(MODULE, "jwt", blob),
    ):
        try:
            wasm.custom_sections(candidate)
            claims.extract_claims(candidate)
            claims.verify_actor(candidate)
        except (InvalidActor, ClaimsError):
            pass


JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=4)
JSON_VALUES = JSON_SCALARS | st.lists(JSON_SCALARS, max_size=3)
WASCAP_FIELDS = ["name", "hash", "tags", "caps", "rev", "ver", "call_alias", "prov"]
CLAIM_FIELDS = ["iss", "sub", "iat", "exp", "nbf", "jti", "wascap"]


@given(
    st.dictionaries(
        st.sampled_from(CLAIM_FIELDS),
        JSON_VALUES | st.dictionaries(st.sampled_from(WASCAP_FIELDS), JSON_VALUES),
    )
)
def test_random_claim_shapes_raise_only_claims_error(payload: dict[str, object]) -> None:
    for candidate in (payload, {**payload, "iss": ISSUER.public_key, "sub": ACTOR.public_key}):
        with contextlib.suppress(ClaimsError):
            claims.verify_actor(hand_signed(candidate))


# --- invocation claims --------------------------------------------------------------------------------

ORIGIN = claims.provider_url("wasmcloud:httpserver", "default", keys.generate("service").public_key)
TARGET = claims.actor_url(ACTOR.public_key)
OP = "HttpServer.HandleRequest"
MSG = b"\x81\xa4path\xa1/"


def verify_call(token: str, **overrides: object) -> None:
    call: dict[str, object] = {"origin_url": ORIGIN, "target_url": TARGET, "operation": OP, "msg": MSG}
    call.update(overrides)
    claims.verify_invocation(token, cluster_issuers={CLUSTER.public_key}, **call)  # type: ignore[arg-type]


def sign_call(cluster: keys.KeyPair = CLUSTER) -> str:
    return claims.sign_invocation(cluster, origin_url=ORIGIN, target_url=TARGET, operation=OP, msg=MSG, host_id="NHOST")


def test_urls_follow_wasmcloud() -> None:
    assert claims.actor_url("MABC") == "wasmbus://MABC"
    assert claims.provider_url("wasmcloud:KeyValue", "Default", "VXYZ") == "wasmbus://wasmcloud/keyvalue/default/VXYZ"


def test_invocation_round_trip_and_claim_layout() -> None:
    token = sign_call()
    verify_call(token)
    payload = json.loads(unb64(token.split(".")[1]))
    assert payload["iss"] == CLUSTER.public_key
    assert payload["sub"] == "NHOST"
    assert payload["wascap"] == {
        "target_url": f"{TARGET}/{OP}",
        "origin_url": ORIGIN,
        "hash": claims.invocation_hash(ORIGIN, TARGET, OP, MSG),
    }


def test_invocation_signed_with_another_seed_is_refused() -> None:
    with pytest.raises(ClaimsError, match="not a cluster issuer"):
        verify_call(sign_call(keys.generate("cluster")))


def test_invocation_with_forged_issuer_field_is_an_invalid_signature() -> None:
    header, body, _ = sign_call().split(".")
    rogue = keys.generate("cluster")
    payload = json.loads(unb64(body))
    payload["iss"] = CLUSTER.public_key  # claims to be from our cluster, signed by someone else
    head = f"{header}.{b64(json.dumps(payload).encode())}"
    with pytest.raises(ClaimsError, match="signature invalid"):
        verify_call(f"{head}.{b64(rogue.sign(head.encode()))}")


def test_invocation_replayed_elsewhere_or_altered_is_refused() -> None:
    token = sign_call()
    with pytest.raises(ClaimsError, match="target mismatch"):
        verify_call(token, target_url=claims.actor_url(keys.generate("module").public_key))
    with pytest.raises(ClaimsError, match="target mismatch"):
        verify_call(token, operation="HttpServer.Other")
    with pytest.raises(ClaimsError, match="origin mismatch"):
        verify_call(token, origin_url=claims.actor_url(keys.generate("module").public_key))
    with pytest.raises(ClaimsError, match="hash mismatch"):
        verify_call(token, msg=MSG + b"!")


TOKEN = sign_call()


@given(
    st.text(max_size=120)
    | st.builds(lambda cut, junk: TOKEN[:cut] + junk, st.integers(0, len(TOKEN)), st.text(max_size=8))
)
def test_random_invocation_tokens_raise_only_claims_error(token: str) -> None:
    with contextlib.suppress(ClaimsError):
        verify_call(token)


def test_verify_invocation_is_cheap() -> None:
    token = sign_call()
    runs = 2000
    per_call_us = timeit.timeit(lambda: verify_call(token), number=runs) / runs * 1e6
    assert per_call_us < 500, f"verify_invocation took {per_call_us:.0f} µs"


@pytest.mark.parametrize("operation", [OP, 'Odd."quoted"\\op', "Unicodé.Op ✓", "Tab\tand\nnewline"])
def test_invocation_claims_are_compact_json_of_exactly_the_claims_whatever_the_operation(operation: str) -> None:
    """The prepared claim text (``_invocation_template``) writes what ``json.dumps`` would, escapes included,
    and a second call with the same route reuses it with a fresh ``jti`` and the new payload's hash."""
    first, second = (
        claims.sign_invocation(CLUSTER, origin_url=ORIGIN, target_url=TARGET, operation=operation, msg=m, host_id="N")
        for m in (MSG, b"other")
    )
    bodies = []
    for token, msg in ((first, MSG), (second, b"other")):
        raw = base64.urlsafe_b64decode(token.split(".")[1] + "=" * (-len(token.split(".")[1]) % 4))
        parsed = json.loads(raw)
        assert raw == json.dumps(parsed, separators=(",", ":")).encode()
        assert list(parsed) == ["jti", "iat", "iss", "sub", "wascap"]
        assert parsed["wascap"]["hash"] == claims.invocation_hash(ORIGIN, TARGET, operation, msg)
        assert parsed["wascap"]["target_url"] == f"{TARGET}/{operation}"
        verify_call(token, operation=operation, msg=msg)
        bodies.append(parsed)
    assert bodies[0]["jti"] != bodies[1]["jti"]
