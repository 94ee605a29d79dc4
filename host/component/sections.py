"""Reading a component binary's top level (component model binary format): its index spaces (how many
functions, instances, core modules, core instances, core functions and types it defines) and what the
indexes that ``host.component.binary`` follows stand for: top-level exports, instances' functions, lifted
core functions and their canonical options. ``read`` raises ``Unknown`` for anything it does not follow.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# index spaces: component sorts 1..5 as themselves, core sorts as 0x100 + their byte
CORE_FUNC, CORE_MEMORY, CORE_MODULE, CORE_INSTANCE = 0x100, 0x102, 0x111, 0x112


class Unknown(Exception):
    """Something this reader does not handle: no fast entry, nothing else changes."""


class Reader:
    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data, self.pos, self.end = data, pos, len(data) if end is None else end

    def byte(self) -> int:
        if self.pos >= self.end:
            raise Unknown("truncated")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def u32(self) -> int:
        result, shift = 0, 0
        while True:
            byte = self.byte()
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result
            shift += 7
            if shift > 35:
                raise Unknown("bad LEB128")

    def s33(self) -> int:
        result, shift = 0, 0
        while True:
            byte = self.byte()
            result |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                if byte & 0x40:
                    result -= 1 << shift
                return result
            if shift > 35:
                raise Unknown("bad LEB128")

    def name(self) -> str:
        n = self.u32()
        if self.pos + n > self.end:
            raise Unknown("truncated name")
        text = self.data[self.pos : self.pos + n].decode("utf-8", "replace")
        self.pos += n
        return text


@dataclass
class Lift:
    core_func: int
    options: dict[int, int]  # canon option (memory 3, realloc 4, post-return 5) → its core index


@dataclass
class Spaces:
    """Counts of the component-level index spaces, and what the indexes this rewrite follows are."""

    counts: dict[int, int] = field(default_factory=dict)
    funcs: dict[int, Lift | int] = field(default_factory=dict)  # func index → its lift, or the func it re-exports
    instances: dict[int, dict[str, tuple[int, int]] | int] = field(default_factory=dict)  # → funcs by name
    exports: dict[str, tuple[int, int]] = field(default_factory=dict)  # top-level export → (sort, index)

    def add(self, sort: int, what: object = None) -> int:
        index = self.counts.get(sort, 0)
        self.counts[sort] = index + 1
        if sort == 1 and what is not None:
            self.funcs[index] = what  # type: ignore[assignment]
        elif sort == 5 and what is not None:
            self.instances[index] = what  # type: ignore[assignment]
        return index


def _sort(r: Reader) -> int:
    """A sort: component sorts 1..5 as themselves, core sorts as 0x100 + their byte."""
    sort = r.byte()
    if sort == 0x00:
        return 0x100 + r.byte()
    if sort > 0x05:
        raise Unknown(f"sort {sort}")
    return sort


def _extern_name(r: Reader) -> str:
    kind = r.byte()
    if kind not in (0x00, 0x01):
        raise Unknown(f"extern name kind {kind}")
    return r.name()


def _externdesc(r: Reader) -> int:
    kind = r.byte()
    if kind == 0x00:
        r.byte()  # 0x11: a core module's type
        r.u32()
        return CORE_MODULE
    if kind in (0x01, 0x04, 0x05):
        r.u32()
    elif kind in (0x02, 0x03):
        if r.byte() == 0x00:
            r.u32()
        elif kind == 0x02:
            r.s33()
    else:
        raise Unknown(f"externdesc {kind}")
    return kind


def _imports(r: Reader, spaces: Spaces) -> None:
    for _ in range(r.u32()):
        _extern_name(r)
        spaces.add(_externdesc(r))


def _exports(r: Reader, spaces: Spaces) -> None:
    for _ in range(r.u32()):
        name = _extern_name(r)
        sort, index = _sort(r), r.u32()
        if r.byte() == 0x01:
            _externdesc(r)
        spaces.exports[name] = (sort, index)
        spaces.add(sort, index if sort in (1, 5) else None)


def _aliases(r: Reader, spaces: Spaces) -> None:
    for _ in range(r.u32()):
        sort = _sort(r)
        target = r.byte()
        if target in (0x00, 0x01):
            r.u32()
            r.name()
        elif target == 0x02:
            r.u32()
            r.u32()
        else:
            raise Unknown(f"alias target {target}")
        spaces.add(sort)


def _instances(r: Reader, spaces: Spaces) -> None:
    for _ in range(r.u32()):
        kind = r.byte()
        funcs: dict[str, tuple[int, int]] = {}
        if kind == 0x00:
            r.u32()  # the component instantiated; its func arguments stand for its exports (wit-component's shims)
            for _ in range(r.u32()):
                name, sort, index = r.name(), _sort(r), r.u32()
                funcs[name] = (sort, index)
        elif kind == 0x01:
            for _ in range(r.u32()):
                name = _extern_name(r)
                funcs[name] = (_sort(r), r.u32())
        else:
            raise Unknown(f"instance kind {kind}")
        spaces.add(5, funcs)


def _options(r: Reader) -> dict[int, int]:
    options = {}
    for _ in range(r.u32()):
        kind = r.byte()
        if kind in (0x00, 0x01, 0x02):
            continue  # the string encoding
        if kind not in (0x03, 0x04, 0x05):
            raise Unknown(f"canon option {kind}")
        options[kind] = r.u32()
    return options


def _canons(r: Reader, spaces: Spaces) -> None:
    for _ in range(r.u32()):
        op = r.byte()
        if op == 0x00:  # lift
            r.byte()
            core_func, options = r.u32(), _options(r)
            r.u32()  # its type
            spaces.add(1, Lift(core_func, options))
        elif op == 0x01:  # lower: a core func
            r.byte()
            r.u32()
            _options(r)
            spaces.add(CORE_FUNC)
        elif op in (0x02, 0x03, 0x04):  # resource.new / drop / rep: core funcs
            r.u32()
            spaces.add(CORE_FUNC)
        else:
            raise Unknown(f"canon {op}")


def _types_count(r: Reader, spaces: Spaces) -> None:
    spaces.counts[3] = spaces.counts.get(3, 0) + r.u32()


def _core_instances_count(r: Reader, spaces: Spaces) -> None:
    spaces.counts[CORE_INSTANCE] = spaces.counts.get(CORE_INSTANCE, 0) + r.u32()


_SECTIONS = {
    2: _core_instances_count,
    5: _instances,
    6: _aliases,
    7: _types_count,
    8: _canons,
    10: _imports,
    11: _exports,
}


def read(wasm: bytes) -> Spaces:
    """The index spaces of a component's top level; ``Unknown`` for anything this reader does not follow."""
    spaces = Spaces()
    r = Reader(wasm, 8)
    while r.pos < r.end:
        section = r.byte()
        size = r.u32()
        end = r.pos + size
        if end > r.end:
            raise Unknown("truncated section")
        if section == 4:
            spaces.add(4)
        elif section == 1:
            spaces.add(CORE_MODULE)
        elif section in _SECTIONS:
            _SECTIONS[section](Reader(wasm, r.pos, end), spaces)
        elif section not in (0, 3, 9, 12):
            raise Unknown(f"section {section}")
        r.pos = end
    return spaces
