"""wasmcloud:keyvalue contract (SPEC §2), in process and over NATS, on a real JetStream KV bucket."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lattice.errors import LatticeError, ProviderError
from lattice.providers.keyvalue import KeyValueProvider, redis_range
from lattice.providers.keyvalue.store import MAX_KEY_BYTES, MAX_PLAIN_KEY, decode_key, encode_key, is_digest
from tests.conftest import wait_for
from tests.providers.conftest import Harness, HarnessFactory, actor_id, link_to


@pytest.fixture
async def kv(start_provider: HarnessFactory) -> Harness:
    return await start_provider(KeyValueProvider())


async def test_get_set_contains_del(kv: Harness) -> None:
    a = await kv.link()
    assert await kv.call(a, "KeyValue.Get", "greeting") == {"value": "", "exists": False}
    assert await kv.call(a, "KeyValue.Contains", "greeting") is False
    assert await kv.call(a, "KeyValue.Set", {"key": "greeting", "value": "hello", "expires": 0}) is None
    assert await kv.call(a, "KeyValue.Get", "greeting") == {"value": "hello", "exists": True}
    assert await kv.call(a, "KeyValue.Contains", "greeting") is True
    await kv.call(a, "KeyValue.Set", {"key": "greeting", "value": "again", "expires": 0})
    assert (await kv.call(a, "KeyValue.Get", "greeting"))["value"] == "again"
    assert await kv.call(a, "KeyValue.Del", "greeting") is True
    assert await kv.call(a, "KeyValue.Del", "greeting") is False
    assert await kv.call(a, "KeyValue.Get", "greeting") == {"value": "", "exists": False}
    await kv.call(a, "KeyValue.Set", {"key": "greeting", "value": "back"})  # expires omitted = never
    assert (await kv.call(a, "KeyValue.Get", "greeting"))["value"] == "back"


async def test_set_with_expiry_reads_absent_once_expired(kv: Harness) -> None:
    a = await kv.link()
    await kv.call(a, "KeyValue.Set", {"key": "long", "value": "v", "expires": 3600})
    await kv.call(a, "KeyValue.Set", {"key": "short", "value": "v", "expires": 1})
    assert await kv.call(a, "KeyValue.Contains", "long") is True

    async def gone() -> bool:
        return await kv.call(a, "KeyValue.Contains", "short") is False

    await wait_for(gone, timeout=30)
    assert await kv.call(a, "KeyValue.Get", "short") == {"value": "", "exists": False}
    assert await kv.call(a, "KeyValue.Del", "short") is False
    assert await kv.call(a, "KeyValue.Increment", {"key": "short", "value": 5}) == 5  # starts from nothing
    assert await kv.call(a, "KeyValue.Get", "long") == {"value": "v", "exists": True}


async def test_increment_is_atomic_under_100_concurrent_calls(kv: Harness) -> None:
    a = await kv.link()
    results = await asyncio.gather(*(kv.call(a, "KeyValue.Increment", {"key": "hits", "value": 1}) for _ in range(100)))
    assert sorted(results) == list(range(1, 101))
    assert await kv.call(a, "KeyValue.Get", "hits") == {"value": "100", "exists": True}
    assert await kv.call(a, "KeyValue.Increment", {"key": "hits", "value": -101}) == -1


async def test_increment_of_a_non_integer_or_past_i32_fails(kv: Harness) -> None:
    a = await kv.link()
    await kv.call(a, "KeyValue.Set", {"key": "word", "value": "abc", "expires": 0})
    with pytest.raises(LatticeError, match=r"wasmcloud:keyvalue KeyValue.Increment: .*not an integer"):
        await kv.call(a, "KeyValue.Increment", {"key": "word", "value": 1})
    await kv.call(a, "KeyValue.Increment", {"key": "big", "value": 2**31 - 1})
    with pytest.raises(LatticeError, match="overflows i32"):
        await kv.call(a, "KeyValue.Increment", {"key": "big", "value": 1})


async def test_lists_add_range_del_clear(kv: Harness) -> None:
    a = await kv.link()
    for i, v in enumerate(["a", "b", "c", "d", "e"], start=1):
        assert await kv.call(a, "KeyValue.ListAdd", {"listName": "l", "value": v}) == i

    async def rng(start: int, stop: int) -> list[str]:
        result: list[str] = await kv.call(a, "KeyValue.ListRange", {"listName": "l", "start": start, "stop": stop})
        return result

    assert await rng(0, -1) == ["a", "b", "c", "d", "e"]
    assert await rng(1, 2) == ["b", "c"]
    assert await rng(-2, -1) == ["d", "e"]
    assert await rng(-100, 1) == ["a", "b"]
    assert await rng(3, 100) == ["d", "e"]
    assert await rng(3, 1) == []
    assert await rng(5, 9) == []
    assert await rng(0, -6) == []
    assert await kv.call(a, "KeyValue.ListDel", {"listName": "l", "value": "c"}) is True
    assert await kv.call(a, "KeyValue.ListDel", {"listName": "l", "value": "zz"}) is False
    assert await rng(0, -1) == ["a", "b", "d", "e"]
    assert await kv.call(a, "KeyValue.ListClear", "l") is True
    assert await kv.call(a, "KeyValue.ListClear", "l") is False
    assert await rng(0, -1) == []
    assert await kv.call(a, "KeyValue.ListDel", {"listName": "l", "value": "a"}) is False


async def test_sets_add_del_query_intersection_union_clear(kv: Harness) -> None:
    a = await kv.link()
    for v in ["x", "y", "z"]:
        assert await kv.call(a, "KeyValue.SetAdd", {"setName": "s1", "value": v}) == 1
    assert await kv.call(a, "KeyValue.SetAdd", {"setName": "s1", "value": "x"}) == 0
    for v in ["y", "z", "w"]:
        await kv.call(a, "KeyValue.SetAdd", {"setName": "s2", "value": v})
    assert await kv.call(a, "KeyValue.SetQuery", "s1") == ["x", "y", "z"]
    assert await kv.call(a, "KeyValue.SetIntersection", ["s1", "s2"]) == ["y", "z"]
    assert await kv.call(a, "KeyValue.SetIntersection", ["s1", "nope"]) == []
    assert await kv.call(a, "KeyValue.SetUnion", ["s1", "s2", "nope"]) == ["w", "x", "y", "z"]
    assert await kv.call(a, "KeyValue.SetDel", {"setName": "s1", "value": "x"}) == 1
    assert await kv.call(a, "KeyValue.SetDel", {"setName": "s1", "value": "x"}) == 0
    assert await kv.call(a, "KeyValue.SetQuery", "s1") == ["y", "z"]
    assert await kv.call(a, "KeyValue.SetClear", "s1") is True
    assert await kv.call(a, "KeyValue.SetClear", "s1") is False
    assert await kv.call(a, "KeyValue.SetQuery", "s1") == []


async def test_an_operation_on_a_key_of_another_type_fails(kv: Harness) -> None:
    a = await kv.link()
    await kv.call(a, "KeyValue.Set", {"key": "k", "value": "v", "expires": 0})
    with pytest.raises(LatticeError, match=r"KeyValue.ListAdd: key 'k' holds a string, not a list"):
        await kv.call(a, "KeyValue.ListAdd", {"listName": "k", "value": "x"})
    await kv.call(a, "KeyValue.SetAdd", {"setName": "s", "value": "x"})
    with pytest.raises(LatticeError, match="holds a set, not a string"):
        await kv.call(a, "KeyValue.Get", "s")
    assert await kv.call(a, "KeyValue.Contains", "s") is True
    assert await kv.call(a, "KeyValue.Del", "s") is True


async def test_any_string_is_a_key(kv: Harness) -> None:
    a = await kv.link()
    odd = ["a.b", "a..b", ".", "", "sp ace", "x=y", "=41", "ünï/cödé", "*", ">", "a/b", "tab\t", "A" * 300]
    for i, key in enumerate(odd):
        await kv.call(a, "KeyValue.Set", {"key": key, "value": str(i), "expires": 0})
    for i, key in enumerate(odd):
        assert await kv.call(a, "KeyValue.Get", key) == {"value": str(i), "exists": True}


async def test_the_bucket_is_the_unit_of_isolation(kv: Harness) -> None:
    shared1, shared2 = await kv.link(), await kv.link()
    private = await kv.link(bucket="private_one")
    await kv.call(shared1, "KeyValue.Set", {"key": "k", "value": "shared", "expires": 0})
    assert (await kv.call(shared2, "KeyValue.Get", "k"))["value"] == "shared"
    assert await kv.call(private, "KeyValue.Get", "k") == {"value": "", "exists": False}
    await kv.call(private, "KeyValue.Set", {"key": "k", "value": "mine", "expires": 0})
    assert (await kv.call(shared1, "KeyValue.Get", "k"))["value"] == "shared"


async def test_bad_bucket_is_refused_and_the_provider_keeps_serving(kv: Harness) -> None:
    good = await kv.link()
    bad = actor_id()
    with pytest.raises(ProviderError, match=rf"{bad}.*bucket 'no.dots' may hold only"):
        await kv.put_link(link_to(kv.provider, bad, bucket="no.dots"))
    with pytest.raises(LatticeError, match=f"no link for wasmcloud:keyvalue \\(default\\) from {bad}"):
        await kv.call(bad, "KeyValue.Get", "k")
    assert await kv.call(good, "KeyValue.Increment", {"key": "n", "value": 2}) == 2


async def test_deleted_link_refuses_calls(kv: Harness) -> None:
    a = await kv.link()
    await kv.call(a, "KeyValue.Set", {"key": "k", "value": "v", "expires": 0})
    await kv.del_link(link_to(kv.provider, a))
    with pytest.raises(LatticeError, match="no link for wasmcloud:keyvalue"):
        await kv.call(a, "KeyValue.Get", "k")
    await kv.link(a)
    assert (await kv.call(a, "KeyValue.Get", "k"))["value"] == "v"


async def test_malformed_arguments_name_the_contract_and_operation(kv: Harness) -> None:
    a = await kv.link()
    with pytest.raises(LatticeError, match=r"wasmcloud:keyvalue KeyValue.Set: 'value' must be a string"):
        await kv.call(a, "KeyValue.Set", {"key": "k", "value": 5})
    with pytest.raises(LatticeError, match=r"KeyValue.ListRange: 'start' must be an integer"):
        await kv.call(a, "KeyValue.ListRange", {"listName": "l", "stop": 1, "start": "0"})
    with pytest.raises(LatticeError, match=r"KeyValue.Get: malformed msgpack"):
        await kv.call_raw(a, "KeyValue.Get", b"\xc1")
    with pytest.raises(LatticeError, match=r"wasmcloud:keyvalue has no operation 'KeyValue.Frobnicate'"):
        await kv.call(a, "KeyValue.Frobnicate", "k")
    assert await kv.call(a, "KeyValue.Contains", "k") is False


@given(st.text(max_size=300))
def test_key_encoding_is_a_short_valid_nats_key_and_reversible_or_a_digest(key: str) -> None:
    encoded = encode_key(key)
    assert encoded and all(c.isascii() and (c.isalnum() or c in "_-/=") for c in encoded)
    assert len(encoded) <= MAX_PLAIN_KEY
    assert decode_key(encoded) == (None if is_digest(encoded) else key)


async def test_a_4kb_key_works_and_the_connection_survives(kv: Harness) -> None:
    """Issue 13: a 4 KB key (a long URL path in kvcounter) made nats-server close the provider's
    connection for good ("maximum control line exceeded"). Long keys are stored under their digest."""
    a = await kv.link()
    long_key = "counter:/" + "x" * 4100
    for expected in (1, 2):
        assert await kv.call(a, "KeyValue.Increment", {"key": long_key, "value": 1}) == expected
    near = long_key[:-1] + "y"  # same length, other key: another digest
    await kv.call(a, "KeyValue.Set", {"key": near, "value": "other"})
    assert await kv.call(a, "KeyValue.Get", long_key) == {"value": "2", "exists": True}
    assert await kv.call(a, "KeyValue.Get", near) == {"value": "other", "exists": True}
    assert await kv.call(a, "KeyValue.ListAdd", {"listName": "l" * 35000, "value": "v"}) == 1
    biggest = "k" * MAX_KEY_BYTES
    await kv.call(a, "KeyValue.Set", {"key": biggest, "value": "fits"})
    assert await kv.call(a, "KeyValue.Get", biggest) == {"value": "fits", "exists": True}
    with pytest.raises(LatticeError, match=r"key of 65537 bytes refused: keys may be at most 65536 bytes"):
        await kv.call(a, "KeyValue.Set", {"key": biggest + "k", "value": "too long"})
    assert await kv.call(a, "KeyValue.Del", long_key) is True
    assert await kv.call(a, "KeyValue.Contains", "short") is False  # still connected, still serving


async def test_a_bucket_name_too_long_for_jetstream_is_refused_on_the_link(kv: Harness) -> None:
    with pytest.raises(LatticeError, match=r"bucket .* may hold only letters, digits, '-' and '_' \(1 to 64"):
        await kv.link(bucket="b" * 65)


@given(st.lists(st.text(max_size=2), max_size=8), st.integers(-10, 10), st.integers(-10, 10))
def test_list_range_matches_redis_lrange(items: list[str], start: int, stop: int) -> None:
    n = len(items)
    s = max(start + n, 0) if start < 0 else start
    e = stop + n if stop < 0 else stop
    expected = items[s : e + 1] if s <= e else []
    assert redis_range(items, start, stop) == expected
