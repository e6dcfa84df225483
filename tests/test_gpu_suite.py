"""The GPU suite's daily CPU smoke (tier 2): every case of bench/gpu_suite.py runs at tiny sizes, in a process of its
own (its models never load into this one), and the whole run takes under 4 minutes."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from comfyui_i2v_adapter.bench.suite.plan import plan
from comfyui_i2v_adapter.bench.suite.sizes import CPU_SMOKE
from comfyui_i2v_adapter.tests.support.comfyui import find_comfyui

SUITE = Path(__file__).resolve().parents[1] / "bench" / "gpu_suite.py"
UNFINISHED = ("error", "timed out", "skipped")


def table_rows(text: str) -> list[list[str]]:
    """The markdown table's cells, header and rule left out."""
    lines = [line for line in text.splitlines() if line.startswith("| ")][1:]
    return [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines]


@pytest.mark.comfyui
def test_cpu_smoke_runs_every_case_within_its_time_budget(tmp_path):
    done = subprocess.run([sys.executable, str(SUITE), "--cpu-smoke", "--out", str(tmp_path)], capture_output=True,
                          text=True, timeout=CPU_SMOKE.total_seconds + 60,
                          env={**os.environ, "COMFYUI_PATH": str(find_comfyui())})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    [written] = tmp_path.glob("*.md")
    text = written.read_text()
    rows = table_rows(text)
    assert {row[0] for row in rows} == {case.title for case in plan(CPU_SMOKE)}
    assert not [row for row in rows if row[-1].startswith(UNFINISHED)], text
    total = int(re.search(r"Total: (\d+) s", text)[1])
    assert total < CPU_SMOKE.total_seconds, text
