"""``lattice new actor NAME --lang c|zig|assemblyscript|python|js``: a new actor project that builds on its own.

Owns turning a template (``actors/templates/<lang>/`` and the shared ``manifest.yaml``/``README.md``) plus a
copy of the guest SDK into a folder with everything needed to build and deploy: the source, ``sdk/`` (C
and Zig), ``package.json`` + ``package-lock.json`` (AssemblyScript, JavaScript), ``lattice-actor.js`` and
``wit/`` (JavaScript), ``build.py`` and ``manifest.yaml``. Compiler flags and package versions are rendered
from ``lattice.actors.toolchains`` and the examples' lock files, so a scaffold builds exactly like the
examples do. Python and JavaScript actors are components (SPEC §7) whose ``build.py`` calls
``lattice.actors.componentize`` (cached builds; a Python actor gets ``lattice_actor`` at build time).

``register(app)`` adds the ``new`` command group to a Typer app; ``scaffold_actor()`` does the work.
"""

from __future__ import annotations

import json
import re
from enum import StrEnum
from importlib import metadata, resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Annotated

import typer

from lattice.errors import ConfigError

NAME_PATTERN = re.compile(r"[a-z][a-z0-9_-]{0,62}")
DEFAULT_PORT = 8000


class Lang(StrEnum):
    c = "c"
    zig = "zig"
    assemblyscript = "assemblyscript"
    python = "python"
    js = "js"


LANGUAGE_NAMES = {
    Lang.c: "C",
    Lang.zig: "Zig",
    Lang.assemblyscript: "AssemblyScript",
    Lang.python: "Python",
    Lang.js: "JavaScript",
}
SOURCES = {
    Lang.c: "actor.c",
    Lang.zig: "actor.zig",
    Lang.assemblyscript: "assembly/index.ts",
    Lang.python: "app.py",
    Lang.js: "actor.js",
}
# What each language's project carries besides its source, build.py and manifest.yaml (README rows).
EXTRA_FILES = {
    Lang.c: ["sdk/"],
    Lang.zig: ["sdk/"],
    Lang.assemblyscript: ["package.json", "package-lock.json"],
    Lang.python: [],
    Lang.js: ["lattice-actor.js", "wit/", "package.json", "package-lock.json"],
}
FILE_NOTES = {
    "actor.c": "the actor",
    "actor.zig": "the actor",
    "assembly/index.ts": "the actor",
    "app.py": "the actor (on `lattice_actor`, which the build adds)",
    "actor.js": "the actor",
    "lattice-actor.js": "the JavaScript guest library",
    "wit/": "the world the actor targets (`lattice:actor/actor`)",
    "sdk/": "a copy of the lattice guest SDK",
    "package.json": "the build's npm packages, pinned",
    "package-lock.json": "the exact package versions (`npm ci`)",
    "build.py": "builds the .wasm (a component for Python and JavaScript)",
    "manifest.yaml": "the application: the actor, its HTTP link and the HTTP server",
}


def _actors() -> Traversable:
    return resources.files("lattice.actors")


def _render(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace(f"__{key}__", value)
    return text


def _tree(root: Traversable, prefix: str = "") -> dict[str, Traversable]:
    """Every file under ``root`` by relative path, skipping caches."""
    files: dict[str, Traversable] = {}
    for entry in root.iterdir():
        if entry.name in ("__pycache__", "node_modules"):
            continue
        rel = f"{prefix}{entry.name}"
        if entry.is_dir():
            files.update(_tree(entry, f"{rel}/"))
        else:
            files[rel] = entry
    return files


def _sdk_files(lang: Lang) -> dict[str, str]:
    sdk = _actors() / "sdk"
    if lang == Lang.c:
        chosen = {n: f for n, f in _tree(sdk).items() if "/" not in n and n.endswith((".c", ".h"))}
    elif lang == Lang.zig:
        chosen = {n: f for n, f in _tree(sdk / "zig").items() if n.endswith(".zig")}
    elif lang == Lang.js:
        return {
            "lattice-actor.js": (sdk / "js" / "lattice-actor.js").read_text(),
            "wit/actor.wit": (_actors() / "wit" / "actor.wit").read_text(),
        }
    else:
        return {}
    return {f"sdk/{name}": f.read_text() for name, f in sorted(chosen.items())}


def _npm_files(name: str, lang: Lang) -> dict[str, str]:
    """package.json and package-lock.json, pinned to what the pingpong (AssemblyScript) or jsgreeter
    (JavaScript) example builds with."""
    example = _actors() / "jsgreeter" if lang == Lang.js else _actors() / "pingpong" / "pinger"
    example_package = json.loads((example / "package.json").read_text())
    scripts = {k: v.replace("pinger.wasm", f"{name}.wasm") for k, v in example_package["scripts"].items()}
    package = {
        "name": name,
        "version": "0.1.0",
        "private": True,
        "description": f"{name}, a lattice actor in {LANGUAGE_NAMES[lang]}",
        **({"type": "module"} if lang == Lang.js else {}),
        "scripts": scripts,
        "devDependencies": example_package["devDependencies"],
    }
    lock = json.loads((example / "package-lock.json").read_text())
    lock["name"], lock["version"] = name, "0.1.0"
    lock["packages"][""] = {"name": name, "version": "0.1.0", "devDependencies": package["devDependencies"]}
    return {
        "package.json": json.dumps(package, indent=2) + "\n",
        "package-lock.json": json.dumps(lock, indent=2) + "\n",
    }


def _values(name: str, lang: Lang, port: int) -> dict[str, str]:
    from lattice.actors import componentize, toolchains

    try:
        zig_version = metadata.version("ziglang")
    except metadata.PackageNotFoundError:
        zig_version = "0.17.1"
    return {
        "NAME": name,
        "PORT": str(port),
        "LANG": lang.value,
        "LANGUAGE": LANGUAGE_NAMES[lang],
        "ZIG_VERSION": zig_version,
        "CFLAGS": _py_tuple(toolchains.CFLAGS),
        "ZIGFLAGS": _py_tuple(toolchains.ZIGFLAGS),
        "COMPONENTIZE_PY_VERSION": componentize.COMPONENTIZE_PY_VERSION,
    }


def _py_tuple(items: tuple[str, ...]) -> str:
    """A tuple of strings as Python source, one item a line."""
    return "(\n" + "".join(f"    {json.dumps(item)},\n" for item in items) + ")"


def render_actor(name: str, lang: Lang | str, port: int = DEFAULT_PORT) -> dict[str, str]:
    """The files of a new actor project, by relative path; raises ConfigError for a bad name or port."""
    lang = Lang(lang)
    if not NAME_PATTERN.fullmatch(name):
        raise ConfigError(
            f"actor name {name!r}: use lowercase letters, digits, '-' and '_', starting with a letter "
            "(it names the application, the .wasm and a link)"
        )
    if not 0 < port < 65536:
        raise ConfigError(f"port {port} is not a TCP port (1-65535)")
    values = _values(name, lang, port)
    templates = _actors() / "templates"
    files: dict[str, str] = {}
    for rel, entry in _tree(templates / lang.value).items():
        target = ".gitignore" if rel == "gitignore" else rel.removesuffix(".tmpl")
        files[target] = _render(entry.read_text(), values)
    files |= _sdk_files(lang)
    if lang in (Lang.assemblyscript, Lang.js):
        files |= _npm_files(name, lang)
    files["manifest.yaml"] = _render((templates / "manifest.yaml").read_text(), values)
    listed = [SOURCES[lang], *EXTRA_FILES[lang]]
    rows = "\n".join(f"| `{f}` | {FILE_NOTES[f]} |" for f in [*listed, "build.py", "manifest.yaml"])
    files["README.md"] = _render((templates / "README.md").read_text(), {**values, "FILES": rows})
    return dict(sorted(files.items()))


def scaffold_actor(name: str, lang: Lang | str, dest: Path, port: int = DEFAULT_PORT) -> list[Path]:
    """Writes a new actor project into ``dest`` (which must not exist or be empty); returns the files."""
    files = render_actor(name, lang, port)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ConfigError(f"{dest} already exists and is not empty: pick another name or --dir")
    written = []
    for rel, text in files.items():
        path = dest / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written


# ---- the command --------------------------------------------------------------------------------------

new_app = typer.Typer(help="Start something new: an actor project.", no_args_is_help=True)


@new_app.callback()
def _group() -> None:
    """Start something new: an actor project (more kinds may follow, so ``new`` stays a group)."""


@new_app.command("actor")
def new_actor(
    name: Annotated[str, typer.Argument(help="Actor name: lowercase letters, digits, '-' and '_'.")],
    lang: Annotated[
        Lang, typer.Option("--lang", "-l", help="The language of the actor (python and js make components).")
    ] = Lang.c,
    directory: Annotated[Path | None, typer.Option("--dir", help="Where to create it (default: ./NAME).")] = None,
    port: Annotated[int, typer.Option(help="The HTTP port in its manifest.")] = DEFAULT_PORT,
) -> None:
    """Create an actor that answers HTTP: source, guest SDK, build.py and manifest.yaml."""
    dest = directory or Path(name)
    try:
        written = scaffold_actor(name, lang, dest, port)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"created {LANGUAGE_NAMES[lang]} actor {name} in {dest}/ ({len(written)} files)")
    typer.echo("next:")
    for step in (
        f"cd {dest}",
        "python build.py",
        "lattice apply manifest.yaml --wait",
        f"curl http://127.0.0.1:{port}/",
    ):
        typer.echo(f"  {step}")


def register(app: typer.Typer) -> None:
    """Adds ``lattice new ...`` to ``app``."""
    app.add_typer(new_app, name="new")


if __name__ == "__main__":
    new_app()
