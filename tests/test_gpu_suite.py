"""The GPU suite's daily CPU smoke (tier 2): every case of bench/gpu_suite.py runs at tiny sizes, in a process of its
own (its models never load into this one), and the whole run takes under 4 minutes. Its anchor case, the official
release's pipeline, runs on its own where the official environment is (tier 3)."""
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


def run_smoke(folder: Path, *arguments: str, official: bool) -> str:
    """The suite's table; without the official environment unless `official` (its case then says it did not run)."""
    environment = {**os.environ, "COMFYUI_PATH": str(find_comfyui())}
    if not official:
        environment.pop("I2V_OFFICIAL_PATH", None)
    done = subprocess.run([sys.executable, str(SUITE), "--cpu-smoke", "--out", str(folder), *arguments],
                          capture_output=True, text=True, timeout=CPU_SMOKE.total_seconds + 60, env=environment)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    [written] = folder.glob("*.md")
    return written.read_text()


@pytest.mark.comfyui
def test_cpu_smoke_runs_every_case_within_its_time_budget(tmp_path):
    text = run_smoke(tmp_path, official=False)
    rows = table_rows(text)
    assert {row[0] for row in rows} == {case.title for case in plan(CPU_SMOKE)}
    assert not [row for row in rows if row[-1].startswith(UNFINISHED)], text
    [anchor] = [row for row in rows if row[0].startswith("Official")]
    assert anchor[-1].startswith("not run: the official I2V-Adapter checkout or its environment is missing"), text
    total = int(re.search(r"Total: (\d+) s", text)[1])
    assert total < CPU_SMOKE.total_seconds, text


@pytest.mark.comfyui
@pytest.mark.official
def test_the_anchor_times_the_official_pipeline_beside_our_recipe(tmp_path):
    """The official code's pipeline in its own environment and our recipe graph, each a time, and ours ÷ official
    against the target."""
    text = run_smoke(tmp_path, "--only", "Official", official=True)
    official, ours = table_rows(text)
    assert official[1] == "the official release's pipeline" and float(official[2].removesuffix(" s")) > 0, text
    assert ours[1] == "our recipe graph" and float(ours[2].removesuffix(" s")) > 0, text
    assert float(ours[3].removesuffix("× official")) == pytest.approx(
        float(ours[2].removesuffix(" s")) / float(official[2].removesuffix(" s")), abs=2e-3), text
    assert ours[-1] in ("met", "missed"), text
