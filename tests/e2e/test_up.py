"""``lattice up`` as a user runs it: a subprocess that serves the demo, then stops on SIGINT, leaving nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from lattice.cli.natsserver import free_port


def _children(pid: int) -> set[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    kids = {int(p) for p in out.split()}
    for kid in list(kids):
        kids |= _children(kid)
    return kids


def test_lattice_up_serves_demo_and_stops_cleanly_on_sigint(tmp_path: Path) -> None:
    http, api = free_port(), free_port()
    env = {**os.environ, "LATTICE_STATE_DIR": str(tmp_path / "state"), "COLUMNS": "200"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "lattice", "up", "--http", f"127.0.0.1:{http}", "--api", f"127.0.0.1:{api}"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        body = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                r = httpx.get(f"http://127.0.0.1:{http}/hello", timeout=2)
                if r.status_code == 200:
                    body = r.json()
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        assert body is not None, "lattice up never served the demo"
        second = httpx.get(f"http://127.0.0.1:{http}/hello", timeout=5).json()
        assert second["count"] > body["count"]  # the counter grows
        # the API wants the token lattice up made (and a loopback Host header: no DNS rebinding)
        token = (tmp_path / "state" / "up" / "api-token").read_text()
        auth = {"authorization": f"Bearer {token}"}
        assert httpx.get(f"http://127.0.0.1:{api}/v1/hosts", timeout=5).status_code == 401
        rebound = httpx.get(f"http://127.0.0.1:{api}/v1/hosts", headers={**auth, "host": "attacker.example"}, timeout=5)
        assert rebound.status_code == 400
        hosts = httpx.get(f"http://127.0.0.1:{api}/v1/hosts", headers=auth, timeout=5).json()
        assert len(hosts) == 2
        # a host killed with -9 is restarted by lattice up, and joins again under a new id
        victim = next(
            pid for pid in _children(proc.pid) if b"lattice\x00host" in Path(f"/proc/{pid}/cmdline").read_bytes()
        )
        os.kill(victim, signal.SIGKILL)
        before = {h["id"] for h in hosts}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            now = httpx.get(f"http://127.0.0.1:{api}/v1/hosts", headers=auth, timeout=5).json()
            if len(now) == 2 and {h["id"] for h in now} != before:
                break
            time.sleep(0.2)
        else:
            pytest.fail("the killed host was not restarted")
        children = _children(proc.pid)
        assert len(children) >= 3  # nats-server and two hosts
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=30)
        text = output.decode(errors="replace")
        assert proc.returncode == 0, text
        assert "curl http://127.0.0.1" in text and "what runs where" in text
        alive = [pid for pid in children if _alive(pid)]
        assert alive == [], f"processes left behind: {alive}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            pytest.fail("lattice up did not stop on SIGINT")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"
