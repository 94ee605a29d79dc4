"""``host.component.values``: plans built once per type, values lowered and lifted without loss."""

from __future__ import annotations

import ctypes
from typing import Any

import pytest
import wasmtime
from wasmtime import component as cm

from lattice.host.component import calls, capi, values
from tests.host.component.guests import HERE


@pytest.fixture(scope="module")
def plan() -> calls.FuncPlan:
    engine = wasmtime.Engine()
    component = cm.Component(engine, (HERE / "types.wat").read_text())
    item = component.type.imports(engine)["test:types/all"]
    functype = item.ty.exports(engine)["f"].ty
    return calls.FuncPlan(functype)


def roundtrip(p: values.Plan, value: Any) -> Any:
    c = capi.VAL()
    p.lower(None, value, c)
    try:
        return p.lift(c)
    finally:
        capi.val_delete(ctypes.addressof(c))


def record(**fields: Any) -> cm.Record:
    r = cm.Record()
    for k, v in fields.items():
        setattr(r, k, v)
    return r


def test_signature_text(plan: calls.FuncPlan) -> None:
    assert plan.text.startswith("(record{x:u32,label:string},variant{none:_,empty:_,circle:f64,named:string},")
    shape = "variant{none:_,empty:_,circle:f64,named:string}"
    assert plan.text.endswith(f"->result{{ok:option{{none:_,some:list<u8>}},err:{shape}}}")


@pytest.mark.parametrize(
    ("index", "value"),
    [
        (0, record(x=7, label="π")),
        (1, cm.Variant("circle", 1.5)),
        (1, cm.Variant("empty")),
        (2, "green"),
        (3, {"read", "write"}),
        (3, set()),
        (4, None),
        (4, b"\x00\xff" * 1000),
        (5, (-(2**63), "é", True)),
        (6, ["a", "", "ü" * 3]),
        (7, cm.Variant("some", None)),  # the inner option<u8> is untagged: None or the int
        (7, cm.Variant("some", 255)),
        (7, cm.Variant("none")),
    ],
)
def test_values_survive_lowering_and_lifting(plan: calls.FuncPlan, index: int, value: Any) -> None:
    assert roundtrip(plan.params[index], value) == value


def test_untagged_and_tagged_cases(plan: calls.FuncPlan) -> None:
    result = plan.result
    assert result is not None
    # result<option<list<u8>>, shape>: the cases differ by Python type, so values stand for themselves
    assert roundtrip(result, None) is None
    assert roundtrip(result, b"abc") == b"abc"
    assert roundtrip(result, cm.Variant("named", "x")) == cm.Variant("named", "x")
    # option<option<u8>>: None could be either level, so it is tagged
    with pytest.raises(TypeError, match="Variant"):
        roundtrip(plan.params[7], None)


@pytest.mark.parametrize(("index", "value"), [(0, 3), (2, "blue"), (3, {"exec"}), (4, "text"), (5, (1, "ab", True))])
def test_wrong_values_are_refused(plan: calls.FuncPlan, index: int, value: Any) -> None:
    with pytest.raises((TypeError, AttributeError)):
        roundtrip(plan.params[index], value)
