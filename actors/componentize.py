"""Component actors (SPEC §7) from Python and JavaScript: componentize-py and componentize-js, cached.

Owns how a Python app folder or a JavaScript project becomes one component ``.wasm``, which toolchain
versions do it, and the build cache. A build takes 5-15 s (Python) or 20-40 s (JavaScript) and yields an
18 MB / 12 MB component, so every build is cached under ``~/.cache/lattice/components/`` (or
``$LATTICE_CACHE_DIR/components/``), keyed by the SHA-256 of everything that goes into it: the sources, the
WIT, the guest library, msgpack's pure-Python modules, the world and the toolchain version. A second build
of the same inputs is a file copy.

Neither toolchain gives the same bytes twice: componentize-py snapshots a pre-initialised CPython whose hash
secret and import caches (file times) come from the build, componentize-js likewise for SpiderMonkey. So a
component example is not committed (its bytes would differ on every machine): ``python -m lattice.actors.build``
builds it into the cache and copies it beside its manifest (git-ignored); tests and the benchmark build
what is missing. What stays reproducible is the input key, and a rebuild's interface (imports and exports).

Python apps get ``lattice_actor`` (``actors/sdk/python``) and ``msgpack``'s pure-Python modules, copied from
the installed msgpack package without its C extension, which a component cannot load. JavaScript projects
pin componentize-js, esbuild and @msgpack/msgpack in their package-lock.json and bundle with esbuild first.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from lattice.actors.toolchains import ACTORS_DIR, NPM_CI, SDK_DIR, BuildError, npm

WIT_DIR = ACTORS_DIR / "wit"
PY_SDK_DIR = SDK_DIR / "python"
JS_SDK_DIR = SDK_DIR / "js"
ACTOR_WORLD = "lattice:actor/actor@0.1.0"
COMPONENTIZE_PY = "componentize-py"
COMPONENTIZE_PY_VERSION = "0.25.1"
# msgpack's modules that run without the C extension (msgpack/__init__.py falls back to fallback.py).
MSGPACK_PURE = ("__init__.py", "exceptions.py", "ext.py", "fallback.py")
RUN_COMPONENTIZE_PY = "import sys; from componentize_py import script; sys.argv[0] = 'componentize-py'; script()"
SKIP = ("__pycache__", "node_modules", ".git", "dist")


class ToolMissing(BuildError, FileNotFoundError):
    """A toolchain this build needs is not installed (npm); the message says which and how to get it."""


@dataclass(frozen=True, slots=True)
class Built:
    """One component build: where it is, its size, how long it took and whether the cache had it."""

    path: Path
    size: int
    seconds: float
    cached: bool


def cache_root(env: Mapping[str, str] | None = None) -> Path:
    """``$LATTICE_CACHE_DIR``, else ``$XDG_CACHE_HOME/lattice``, else ``~/.cache/lattice``."""
    env = os.environ if env is None else env
    if env.get("LATTICE_CACHE_DIR"):
        return Path(env["LATTICE_CACHE_DIR"])
    base = Path(env["XDG_CACHE_HOME"]) if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "lattice"


def source_files(root: Path, prefix: str = "") -> dict[str, Path]:
    """Every file under ``root`` by ``prefix`` + relative path, without caches, builds and .wasm files."""
    files = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if path.is_file() and not any(p in SKIP for p in rel.parts) and path.suffix != ".wasm":
            files[f"{prefix}{rel.as_posix()}"] = path
    return files


def input_key(kind: str, files: Mapping[str, Path], extra: Iterable[str] = ()) -> str:
    """SHA-256 over the build's kind, its settings and every input file's path and bytes."""
    digest = hashlib.sha256(kind.encode())
    for item in extra:
        digest.update(b"\0" + item.encode())
    for rel in sorted(files):
        digest.update(b"\0" + rel.encode() + b"\0" + hashlib.sha256(files[rel].read_bytes()).digest())
    return digest.hexdigest()


def _cached(key: str, output: Path | None, build: Callable[[Path], None], cache: Path | None) -> Built:
    """The cached build of ``key`` (made by ``build`` when missing), copied to ``output`` if given."""
    store = (cache or cache_root()) / "components"
    hit = store / f"{key}.wasm"
    started = time.monotonic()
    cached = hit.is_file()
    if not cached:
        store.mkdir(parents=True, exist_ok=True)
        partial = store / f".{key}.{os.getpid()}.partial"
        try:
            build(partial)
            partial.replace(hit)  # atomic: a concurrent build of the same key writes the same kind of file
        finally:
            partial.unlink(missing_ok=True)
    if output is None:
        output = hit
    elif output.resolve() != hit.resolve():
        output.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(hit, output)
    return Built(output, output.stat().st_size, time.monotonic() - started, cached)


# ---- Python (componentize-py) --------------------------------------------------------------------------


def componentize_py(install: bool = True) -> list[str]:
    """The componentize-py command; installs the pinned version with pip when missing (``install``)."""
    try:
        installed = metadata.version(COMPONENTIZE_PY)
    except metadata.PackageNotFoundError:
        installed = None
    if installed != COMPONENTIZE_PY_VERSION:
        if not install:
            raise BuildError(f"Python actors need {COMPONENTIZE_PY}=={COMPONENTIZE_PY_VERSION}: pip install it")
        print(f"installing {COMPONENTIZE_PY}=={COMPONENTIZE_PY_VERSION} (builds Python actors) ...", file=sys.stderr)
        command = [sys.executable, "-m", "pip", "install", "-q", f"{COMPONENTIZE_PY}=={COMPONENTIZE_PY_VERSION}"]
        if subprocess.run(command, check=False).returncode != 0:
            raise BuildError(f"could not install {COMPONENTIZE_PY}=={COMPONENTIZE_PY_VERSION} with pip")
    # the package has no __main__: call its console entry point in the same Python
    return [
        sys.executable,
        "-c",
        "import sys; from componentize_py import script; sys.argv[0] = 'componentize-py'; sys.exit(script())",
    ]


def msgpack_pure() -> dict[str, Path]:
    """msgpack's pure-Python modules from the installed package, as ``msgpack/<file>``."""
    import msgpack

    folder = Path(msgpack.__file__).parent
    return {f"msgpack/{name}": folder / name for name in MSGPACK_PURE}


def python_inputs(app: Path, wit: Path = WIT_DIR, sdk: bool = True) -> dict[str, Path]:
    """What goes into a Python actor: the app folder, lattice_actor, msgpack (pure) and the WIT (a folder
    or one file)."""
    wit_files = {f"wit/{wit.name}": wit} if wit.is_file() else source_files(wit, "wit/")
    files = wit_files | source_files(app, "app/")
    if sdk and "app/lattice_actor/__init__.py" not in files:  # a project may carry its own copy
        files |= source_files(PY_SDK_DIR, "app/")
    if sdk and "app/msgpack/__init__.py" not in files:
        files |= {f"app/{rel}": path for rel, path in msgpack_pure().items()}
    return files


def build_python(
    app: Path,
    output: Path | None = None,
    *,
    world: str = ACTOR_WORLD,
    wit: Path = WIT_DIR,
    module: str = "app",
    cache: Path | None = None,
) -> Built:
    """Builds the Python app in folder ``app`` (its ``module``.py defines or imports ``Guest``).

    The component lands in the cache and is copied to ``output`` when given; ``world`` and ``wit`` choose
    what it targets (default: ``lattice:actor/actor`` from ``actors/wit``).
    """
    if not (app / f"{module}.py").is_file():
        raise BuildError(f"{app}: no {module}.py (the module componentize-py loads)")
    # lattice_actor (and msgpack) for the lattice world; a wasi:http app has no use for them
    files = python_inputs(app, wit, sdk=world.startswith("lattice:"))
    key = input_key("python", files, (world, module, COMPONENTIZE_PY_VERSION))

    def build(target: Path) -> None:
        command = componentize_py()
        with tempfile.TemporaryDirectory(prefix="lattice-py-") as tmp:
            work = _materialise(files, Path(tmp))
            wit_arg = work / "wit" / wit.name if wit.is_file() else work / "wit"
            args = ["-d", str(wit_arg), "-w", world, "componentize", module, "-p", "app", "-o", str(target)]
            _run_tool([*command, *args], work, f"{app.name}: componentize-py")

    return _cached(key, output, build, cache)


def _materialise(files: Mapping[str, Path], root: Path) -> Path:
    for rel, path in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, root / rel)
    return root


def _run_tool(command: list[str], cwd: Path, what: str) -> None:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False, env=env)
    if result.returncode != 0:
        output = (result.stderr + result.stdout).strip()
        raise BuildError(f"{what} failed ({result.returncode}):\n{output[-4000:]}")


# ---- JavaScript (componentize-js) ----------------------------------------------------------------------


def build_js(project: Path, output: Path | None = None, *, cache: Path | None = None) -> Built:
    """Builds a JavaScript actor project (``package.json`` + ``package-lock.json``, ``actor.js``).

    Its ``npm run componentize`` script bundles ``actor.js`` with esbuild and runs componentize-js on the
    bundle, writing ``actor.wasm``; it runs after ``npm ci`` in a throwaway copy, so the source folder gets
    no ``node_modules``. ``lattice-actor.js`` and ``wit/actor.wit`` are added unless the project has its own.
    """
    npm_exe = npm()
    if npm_exe is None:
        raise ToolMissing(f"{project}: JavaScript actors need npm (Node.js 18+) on PATH")
    files = source_files(project)
    files.setdefault("lattice-actor.js", JS_SDK_DIR / "lattice-actor.js")
    if not any(rel.startswith("wit/") for rel in files):
        files["wit/actor.wit"] = WIT_DIR / "actor.wit"
    key = input_key("javascript", files)

    def build(target: Path) -> None:
        with tempfile.TemporaryDirectory(prefix="lattice-js-") as tmp:
            work = _materialise(files, Path(tmp) / "project")
            _run_tool([npm_exe, *NPM_CI], work, f"{project.name}: npm ci")
            _run_tool([npm_exe, "run", "--silent", "componentize"], work, f"{project.name}: componentize-js")
            shutil.copyfile(work / "actor.wasm", target)

    return _cached(key, output, build, cache)


# ---- wasi:http (the proxy world) -----------------------------------------------------------------------

# The wasi:http 0.2.3 WIT with its wasi:io/clocks/random/cli dependencies in one file, from npm.
WASI_HTTP_WIT_PACKAGE = "@spinframework/wasi-http-proxy@1.0.1"
WASI_HTTP_WIT_FILE = "package/wit/wasi-http@0.2.3.wit"
WASI_HTTP_WORLD = "wasi:http/proxy@0.2.3"


def wasi_http_wit(cache: Path | None = None) -> Path:
    """The wasi:http 0.2.3 WIT file, fetched once with ``npm pack`` into the cache."""
    target = (cache or cache_root()) / "wit" / Path(WASI_HTTP_WIT_FILE).name
    if target.is_file():
        return target
    npm_exe = npm()
    if npm_exe is None:
        raise ToolMissing(f"the wasi:http WIT comes from npm ({WASI_HTTP_WIT_PACKAGE}): install Node.js 18+")
    with tempfile.TemporaryDirectory(prefix="lattice-wit-") as tmp:
        work = Path(tmp)
        _run_tool([npm_exe, "pack", "--silent", WASI_HTTP_WIT_PACKAGE], work, f"npm pack {WASI_HTTP_WIT_PACKAGE}")
        tarball = next(work.glob("*.tgz"))
        _run_tool(["tar", "xzf", str(tarball), WASI_HTTP_WIT_FILE], work, "tar")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(work / WASI_HTTP_WIT_FILE, target)
    return target
