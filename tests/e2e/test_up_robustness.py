"""``lattice up`` run twice, and its nats-server killed (issue 13, items 4 and 5): real processes, real ports."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import httpx
import pytest

from lattice.cli.up import port_free
from tests.actors.lattice_up import LatticeUp, descendants, wait_until


def count(http: str) -> int | None:
    try:
        r = httpx.get(f"http://{http}/hello", timeout=3)
    except httpx.HTTPError:
        return None
    return int(r.json()["count"]) if r.status_code == 200 else None


def nats_server_pid(up: LatticeUp) -> int:
    assert up.proc is not None
    return next(p for p in descendants(up.proc.pid) if b"nats-server" in Path(f"/proc/{p}/cmdline").read_bytes())


def test_one_lattice_up_per_state_dir_nats_is_supervised_and_another_http_is_a_new_demo_version(
    tmp_path: Path,
) -> None:
    first = LatticeUp(tmp_path, demo=True)
    first.start()
    try:
        before = count(first.http)
        assert before is not None
        second = LatticeUp(tmp_path, demo=True, log_name="second.log")
        with pytest.raises(AssertionError, match=r"another `lattice up` \(pid \d+\) is running with the state"):
            second.start(timeout=60)
        assert second.proc is not None and second.proc.returncode != 0

        os.kill(nats_server_pid(first), signal.SIGKILL)  # the embedded nats-server dies
        wait_until(lambda: "nats-server back at" in first.output(), 30, "nats-server was not restarted")
        wait_until(lambda: (count(first.http) or 0) > before, 60, "the demo did not count again after NATS came back")
        assert httpx.get(f"{first.api_url}/healthz", timeout=3).status_code == 200
    finally:
        first.stop()

    third = LatticeUp(tmp_path, demo=True, log_name="third.log")  # same state dir, another --http
    third.start()
    try:
        assert count(third.http) is not None
        versions = third.call(lambda c: c.app("kvcounter"))["versions"]
        assert len(versions) == 2 and all(v["version"].startswith("v0.1.0-") for v in versions), versions
    finally:
        third.stop()


def test_a_port_whose_last_connections_are_in_time_wait_counts_as_free() -> None:
    """Restarting `lattice up` right after Ctrl-C with the dashboard open said the API port was in use."""
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        served, _ = listener.accept()
        served.close()  # the server closes first: its side of the connection stays in TIME_WAIT
        client.close()
    assert port_free(f"127.0.0.1:{port}", "--api")
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind(("127.0.0.1", port))
        taken.listen()
        assert not port_free(f"127.0.0.1:{port}", "--api")
