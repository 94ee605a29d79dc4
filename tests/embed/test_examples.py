"""The embedding examples run as documented (subprocess, real output) and their plugins build reproducibly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def run_example(*args: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )  # zig builds on a busy machine
    assert result.returncode == 0, result.stdout + result.stderr
    assert "panicked" not in result.stderr, result.stderr
    return result.stdout.splitlines()


def test_text_filter_censors_with_its_grant_and_reports_refusals() -> None:
    out = run_example("examples/text_filter/main.py")
    assert "censor: granted example:wordlist" in out
    assert "  What the heck is this darn thing?  ->  What the **** is this **** thing?" in out
    assert "  Drat, HECK and darn again.  ->  ****, **** and **** again." in out
    assert "    [censor console] masked 2 words" in out
    refused_grant = next(line for line in out if "censor-without-grant may not call" in line)
    assert "refused: censor: no word list:" in refused_grant and "example:wordlist" in refused_grant
    assert "snoop: no directories granted" in out
    assert any(
        line.endswith("refused: snoop: cannot open /secrets/token.txt: No such file or directory") for line in out
    )
    assert "    [snoop stderr] snoop: reading /secrets/token.txt" in out
    assert not any("s3cr3t" in line for line in out)


def test_text_filter_with_the_secrets_dir_granted_lets_snoop_read_it() -> None:
    out = run_example("examples/text_filter/main.py", "--grant-secrets")
    assert "snoop: /secrets granted read-only" in out
    assert any(line.endswith("[token: s3cr3t-t0ken]") for line in out)


def test_text_filter_reads_the_input_file_given(tmp_path: Path) -> None:
    text = tmp_path / "in.txt"
    text.write_text("oh drat\n")
    out = run_example("examples/text_filter/main.py", str(text))
    assert "  oh drat  ->  oh ****" in out


def test_pipeline_stops_the_runaway_record_and_completes_the_batch() -> None:
    out = run_example("examples/pipeline/main.py")
    by_line = {int(line.split()[2]): line for line in out if line.split()[1:2] == ["line"]}
    assert sorted(by_line) == list(range(2, 12))
    assert by_line[6].startswith("stopped ") and "transform ran past its deadline of 0.2 s" in by_line[6]
    assert by_line[8].startswith("trapped ") and "unreachable" in by_line[8]
    assert by_line[5].startswith("refused ") and by_line[5].endswith("transform: empty name")
    assert by_line[10].startswith("refused ") and by_line[10].endswith("transform: malformed amount")
    assert by_line[4].endswith('{"id":3,"name":"Grace Hopper","city":"NEW YORK","cents":10000}')
    assert sum(line.startswith("ok ") for line in by_line.values()) == 6
    assert out[-1] == "10 records: 6 ok, 2 refused, 1 trapped, 1 stopped at the 0.2 s deadline"


def test_pipeline_options_change_deadline_and_input(tmp_path: Path) -> None:
    csv = tmp_path / "two.csv"
    csv.write_text("id,name,city,amount\n1,a b,c,1\n2,loop,forever,9.\n")
    out = run_example("examples/pipeline/main.py", str(csv), "--deadline", "0.05", "--workers", "1")
    assert out[-1] == "2 records: 1 ok, 0 refused, 0 trapped, 1 stopped at the 0.05 s deadline"


def test_committed_plugins_are_reproducible_from_source() -> None:
    out = run_example("examples/build.py", "--check")
    assert [line.split()[0] for line in out] == ["ok", "ok", "ok"], out


def test_the_first_snippet_of_docs_embedding_runs_as_printed() -> None:
    doc = (ROOT / "docs" / "embedding.md").read_text()
    snippet = doc.split("```python\n", 1)[1].split("```", 1)[0]
    out = run_example("-c", snippet)
    assert out[-1] == "b'what the ****'"
    assert "plugin output" in out[0]  # the guest's console line, through the default log sink
