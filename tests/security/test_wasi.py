"""WASI grants nothing unless granted (SPEC §1): no files, no env; granted dirs read-only when asked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lattice.errors import ActorError
from lattice.host.pool import ActorPool
from lattice.host.runtime import Runtime, WasiGrants

SOURCE = Path(__file__).with_name("wasi_reader.c")


@pytest.fixture(scope="module")
def wasi_reader(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    out = tmp_path_factory.mktemp("wasi") / "reader.wasm"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "ziglang",
            "cc",
            "--target=wasm32-wasi",
            "-O2",
            "-s",
            "-mexec-model=reactor",
            str(SOURCE),
            "-o",
            str(out),
        ],
        check=True,
    )
    return out.read_bytes()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    (d / "note.txt").write_text("granted contents")
    return d


def test_no_grant_means_no_files_and_no_env(runtime: Runtime, wasi_reader: bytes, data_dir: Path) -> None:
    pool = ActorPool(runtime, runtime.compile(wasi_reader))
    for path in (str(data_dir / "note.txt"), "/etc/passwd", "/data/note.txt"):
        with pytest.raises(ActorError, match="cannot open"):
            pool.call("Read", path.encode())
    with pytest.raises(ActorError, match="unset"):
        pool.call("Env", b"HOME")


def test_granted_dir_is_readable_under_its_guest_path(runtime: Runtime, wasi_reader: bytes, data_dir: Path) -> None:
    lines: list[tuple[str, str]] = []
    pool = ActorPool(
        runtime,
        runtime.compile(wasi_reader),
        wasi=WasiGrants(dirs={"/data": str(data_dir)}, env={"GREETING": "hi"}),
        log_sink=lambda stream, text: lines.append((stream, text)),
    )
    assert pool.call("Read", b"/data/note.txt") == b"granted contents"
    # stdout goes to the host log, tagged by stream
    assert "".join(text for stream, text in lines if stream == "stdout") == "read 16 bytes\n"
    assert pool.call("Env", b"GREETING") == b"hi"
    with pytest.raises(ActorError, match="cannot open"):  # nothing outside the grant
        pool.call("Read", b"/data/../../etc/passwd")
    assert pool.call("Write", b"/data/new.txt") == b"ok"
    assert (data_dir / "new.txt").read_text() == "written"


def test_readonly_grant_refuses_writes(runtime: Runtime, wasi_reader: bytes, data_dir: Path) -> None:
    pool = ActorPool(
        runtime, runtime.compile(wasi_reader), wasi=WasiGrants(dirs={"/data": str(data_dir)}, readonly=True)
    )
    assert pool.call("Read", b"/data/note.txt") == b"granted contents"
    with pytest.raises(ActorError, match="cannot write"):
        pool.call("Write", b"/data/new.txt")
    assert not (data_dir / "new.txt").exists()
