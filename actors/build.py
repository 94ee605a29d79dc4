"""Rebuild the example actors' .wasm from their sources, reproducibly; check the committed ones.

Owns the list of examples (``EXAMPLES``: which sources make which ``.wasm``, in which language, and which
are signed) and the rebuild/check loop. How a source is compiled is ``toolchains.py``'s.

    python -m lattice.actors.build                # rebuild every example in place
    python -m lattice.actors.build --check        # rebuild into a temp dir; exit 1 naming any .wasm that differs
    python -m lattice.actors.build pingpong todo  # only some examples

AssemblyScript needs npm: by default its parts are built when ``npm`` is on PATH and skipped with a note
otherwise; ``--with-npm`` makes a missing npm an error, ``--without-npm`` always skips them.

Component examples (``COMPONENTS``: Python and JavaScript, SPEC §7) are built by ``actors.componentize``
into its cache and copied beside their manifest, where git ignores them: at 12-18 MB and with bytes that
differ on every build (see that module) they are not committed. ``--check`` builds them (from the cache
when their sources did not change) and checks that each is a component.

Signed parts (the ponger) carry a JWT whose ``iat`` and ``jti`` change on every signing, so their bytes
cannot be reproduced. For them ``--check`` compares the module with its JWT sections stripped
(``lattice.wasm.strip_custom_sections``) and verifies the committed claims (signature, hash, issuer,
subject, name, caps, call alias) against the committed example keys; a rebuild keeps the committed
signature when the module did not change, so rebuilding twice leaves git clean.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from lattice import keys
from lattice.actors import componentize
from lattice.actors.toolchains import (
    ACTORS_DIR,
    SDK_DIR,
    BuildError,
    compile_assemblyscript,
    compile_c,
    compile_zig,
    npm,
)
from lattice.claims import sign_actor, verify_actor
from lattice.errors import LatticeError
from lattice.wasm import strip_custom_sections

__all__ = ["ACTORS_DIR", "COMPONENTS", "EXAMPLES", "SDK_DIR", "BuildError", "compile_actor", "main"]

Lang = Literal["c", "zig", "assemblyscript"]


@dataclass(frozen=True, slots=True)
class Signing:
    """Claims for a signed part; seeds are read from ``keys`` (a folder with account.nk and module.nk)."""

    keys: str
    name: str
    call_alias: str | None = None
    caps: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Part:
    """One .wasm of an example. ``source``: a .c/.zig file, or an AssemblyScript project folder."""

    source: str
    wasm: str
    lang: Lang
    signing: Signing | None = None

    def compile(self, output: Path) -> int:
        source = ACTORS_DIR / self.source
        if self.lang == "c":
            # Every .c file of the actor's folder, so an actor may split its code (todo has json.c).
            return compile_c(sorted(source.parent.glob("*.c")), output)
        if self.lang == "zig":
            return compile_zig(source, output)
        return compile_assemblyscript(source, output)


EXAMPLES: dict[str, tuple[Part, ...]] = {
    "echo": (Part("echo/echo.zig", "echo/echo.wasm", "zig"),),
    "hello": (Part("hello/hello.c", "hello/hello.wasm", "c"),),
    "kvcounter": (Part("kvcounter/kvcounter.c", "kvcounter/kvcounter.wasm", "c"),),
    "pingpong": (
        Part("pingpong/pinger", "pingpong/pinger/pinger.wasm", "assemblyscript"),
        Part(
            "pingpong/ponger/ponger.c",
            "pingpong/ponger/ponger.wasm",
            "c",
            Signing(keys="pingpong/keys", name="ponger", call_alias="lattice/ponger"),
        ),
    ),
    "todo": (Part("todo/todo.c", "todo/todo.wasm", "c"),),
}


@dataclass(frozen=True, slots=True)
class ComponentPart:
    """A component example: a Python app folder or a JavaScript project, and its world (Python)."""

    source: str
    lang: Literal["python", "javascript"]
    world: str = componentize.ACTOR_WORLD

    @property
    def wasm(self) -> str:
        return f"{self.source}/{Path(self.source).name}.wasm"

    def build(self, output: Path | None = None) -> componentize.Built:
        source = ACTORS_DIR / self.source
        if self.lang == "javascript":
            return componentize.build_js(source, output)
        if self.world == componentize.WASI_HTTP_WORLD:
            return componentize.build_python(source, output, world=self.world, wit=componentize.wasi_http_wit())
        return componentize.build_python(source, output, world=self.world)


COMPONENTS: dict[str, ComponentPart] = {
    "pykvcounter": ComponentPart("pykvcounter", "python"),
    "jsgreeter": ComponentPart("jsgreeter", "javascript"),
    "pyhttp": ComponentPart("pyhttp", "python", componentize.WASI_HTTP_WORLD),
    "pyevents": ComponentPart("pyevents", "python"),
}


def component_wasm(name: str) -> Path:
    """The component example ``name``, built (or taken from the cache) and copied beside its manifest."""
    part = COMPONENTS[name]
    return part.build(ACTORS_DIR / part.wasm).path


def example_actors() -> list[str]:
    """The example names, sorted."""
    return sorted(EXAMPLES)


def compile_actor(source: Path, output: Path) -> int:
    """Compiles one C actor source with the SDK (used by the tests for SDK probes)."""
    return compile_c([source], output)


def committed_wasm(part: Part) -> Path:
    return ACTORS_DIR / part.wasm


# ---- signing ----------------------------------------------------------------------------------------


def _keypair(signing: Signing, kind: str) -> keys.KeyPair:
    return keys.from_seed((ACTORS_DIR / signing.keys / f"{kind}.nk").read_text())


def sign(signing: Signing, wasm: bytes) -> bytes:
    return sign_actor(
        wasm,
        _keypair(signing, "account"),
        module=_keypair(signing, "module"),
        name=signing.name,
        caps=signing.caps,
        call_alias=signing.call_alias,
    )


def claims_problem(signing: Signing, signed: bytes) -> str | None:
    """Why ``signed`` does not carry valid claims as ``signing`` describes them, or None."""
    try:
        claims = verify_actor(signed)
    except LatticeError as exc:
        return str(exc)
    expected = {
        "iss": _keypair(signing, "account").public_key,
        "sub": _keypair(signing, "module").public_key,
        "name": signing.name,
        "call_alias": signing.call_alias,
        "caps": signing.caps,
    }
    wrong = [f"{k} is {getattr(claims, k)!r}, not {v!r}" for k, v in expected.items() if getattr(claims, k) != v]
    return "; ".join(wrong) or None


def same_module(part: Part, committed: Path, fresh: bytes) -> tuple[bool, str]:
    """Whether the committed .wasm is what ``fresh`` (an unsigned build) becomes, and a note why not."""
    if not committed.is_file():
        return False, "missing"
    old = committed.read_bytes()
    if part.signing is None:
        return old == fresh, ""
    try:
        stripped = strip_custom_sections(old)
    except LatticeError as exc:
        return False, str(exc)
    if stripped != fresh:
        return False, "module differs (compared without its jwt section)"
    problem = claims_problem(part.signing, old)
    return problem is None, problem or "signed; compared without its jwt section, claims verified"


# ---- rebuild and check ------------------------------------------------------------------------------


def _wants(part: Part, use_npm: bool | None) -> str | None:
    """None to build ``part``, else why it is skipped."""
    if part.lang != "assemblyscript" or use_npm is True:
        return None
    if use_npm is False:
        return "AssemblyScript skipped (--without-npm)"
    if npm() is None:
        return "AssemblyScript needs npm, not found on PATH; pass --with-npm to make this an error"
    return None


def _parts(names: Sequence[str]) -> list[Part]:
    return [part for name in names if name in EXAMPLES for part in EXAMPLES[name]]


COMPONENT_HEADER = b"\x00asm\x0d\x00\x01\x00"  # version 13, layer 1


def _component_skip(part: ComponentPart, use_npm: bool | None) -> str | None:
    if part.lang != "javascript" or use_npm is True:
        return None
    if use_npm is False:
        return "JavaScript skipped (--without-npm)"
    return None if npm() else "JavaScript needs npm, not found on PATH; pass --with-npm to make this an error"


def build_components(names: Sequence[str], use_npm: bool | None, check: bool) -> list[str]:
    """Builds the component examples among ``names`` beside their manifests; returns those that are not
    components (``check``: the build is verified, not compared byte for byte)."""
    wrong = []
    for name in (n for n in names if n in COMPONENTS):
        part = COMPONENTS[name]
        skip = _component_skip(part, use_npm)
        if skip:
            print(f"skipped {part.wasm} ({skip})")
            continue
        built = part.build(ACTORS_DIR / part.wasm)
        how = "from the cache" if built.cached else f"in {built.seconds:.1f} s"
        if not check:
            print(f"built   {part.wasm} ({built.size} bytes, a {part.lang} component, {how})")
        elif built.path.read_bytes()[:8] != COMPONENT_HEADER:
            print(f"DIFFERS {part.wasm} (not a component)")
            wrong.append(part.wasm)
        else:
            print(f"ok      {part.wasm} (a {part.lang} component built {how}; its bytes vary by build)")
    return wrong


def rebuild(names: Sequence[str], use_npm: bool | None = None) -> None:
    build_components(names, use_npm, check=False)
    for part in _parts(names):
        skip = _wants(part, use_npm)
        if skip:
            print(f"skipped {part.wasm} ({skip})")
            continue
        committed = committed_wasm(part)
        with tempfile.TemporaryDirectory(prefix="lattice-actors-") as tmp:
            fresh = Path(tmp) / "fresh.wasm"
            part.compile(fresh)
            data = fresh.read_bytes()
        if part.signing is not None:
            if same_module(part, committed, data)[0]:
                print(f"kept    {part.wasm} (unchanged; signature kept)")
                continue
            data = sign(part.signing, data)
        committed.write_bytes(data)
        print(f"built   {part.wasm} ({len(data)} bytes{', signed' if part.signing else ''})")


def check(names: Sequence[str], use_npm: bool | None = None) -> list[str]:
    """Rebuilds into a temp dir; returns the .wasm paths whose committed file differs (or is missing)."""
    differing = build_components(names, use_npm, check=True)
    with tempfile.TemporaryDirectory(prefix="lattice-actors-") as tmp:
        for i, part in enumerate(_parts(names)):
            skip = _wants(part, use_npm)
            if skip:
                print(f"skipped {part.wasm} ({skip})")
                continue
            fresh = Path(tmp) / f"{i}.wasm"
            part.compile(fresh)
            same, note = same_module(part, committed_wasm(part), fresh.read_bytes())
            print(f"{'ok     ' if same else 'DIFFERS'} {part.wasm}{f' ({note})' if note else ''}")
            if not same:
                differing.append(part.wasm)
    return differing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lattice.actors.build", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--check", action="store_true", help="verify the committed .wasm are reproducible")
    npm_group = parser.add_mutually_exclusive_group()
    npm_group.add_argument("--with-npm", dest="npm", action="store_const", const=True, help="require npm")
    npm_group.add_argument("--without-npm", dest="npm", action="store_const", const=False, help="skip AS, JS")
    parser.add_argument("actors", nargs="*", help="example actors to build (default: all)")
    args = parser.parse_args(argv)
    known = example_actors() + sorted(COMPONENTS)
    unknown = sorted(set(args.actors) - set(known))
    if unknown:
        parser.error(f"unknown actor(s) {', '.join(unknown)}; known: {', '.join(known)}")
    names = args.actors or known
    try:
        if not args.check:
            rebuild(names, args.npm)
            return 0
        differing = check(names, args.npm)
    except BuildError as exc:
        print(exc, file=sys.stderr)
        return 2
    if differing:
        print(
            f"not reproducible from source: {', '.join(differing)}; run `python -m lattice.actors.build` and commit",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
