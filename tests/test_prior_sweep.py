"""Tier 2: evaluation/prior_sweep.py, the I2V-Adapter paper's Table 2 as a user runs it against a ComfyUI server:
the shipped metrics graph (workflows/i2v_metrics.json) on random files in the official layouts, a short sweep at a
CPU's size, and the table, the plot and the numbers it writes."""
import json
import math
import subprocess
import sys

import pytest
import torch
from torchvision.models.optical_flow import raft_small

from comfyui_i2v_adapter.tests.support.comfyui import PACK_ROOT
from comfyui_i2v_adapter.tests.support.workflows import OFFICIAL_TEST_FILES, TEST_FILES

pytestmark = pytest.mark.comfyui
SWEEP = PACK_ROOT / "evaluation" / "prior_sweep.py"
RAFT_FILE = "random_raft_small.pth"
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def sweep(server, official_files, tmp_path_factory):
    """The sweep over t0 1.0 / 0.6 at p = 1 and p 0.5 at t0 = 1: 4 frames at 64², 2 DDIM steps."""
    torch.manual_seed(0)
    folder = server.base / "models/optical_flow"
    folder.mkdir(exist_ok=True)
    torch.save(raft_small(weights=None).state_dict(), folder / RAFT_FILE)
    files = {"CheckpointLoaderSimple.ckpt_name": TEST_FILES["ckpt_name"],
             "I2V_LoadAdapter.adapter_name": OFFICIAL_TEST_FILES["adapter_name"],
             "I2V_LoadMotionModule.motion_module_name": OFFICIAL_TEST_FILES["motion_module_name"],
             "I2V_LoadContentAdapter.ipadapter_name": TEST_FILES["ipadapter_name"],
             "I2V_LoadContentAdapter.attention_weights": OFFICIAL_TEST_FILES["attention_weights"],
             "CLIPVisionLoader.clip_name": TEST_FILES["clip_name"],
             "I2V_LoadOpticalFlowModel.optical_flow_name": RAFT_FILE}
    out = tmp_path_factory.mktemp("sweep")
    command = [sys.executable, str(SWEEP), "--server", server.url, "--image", TEST_FILES["image"], "--prompt",
               "a woman turns her head", "--out", str(out), "--t0", "1.0", "0.6", "--p", "0.5", "--size", "64",
               "--frames", "4", "--steps", "2"] + [f"--set={k}={v}" for k, v in files.items()]
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


def test_the_table_holds_each_setting_beside_the_papers(sweep):
    rows = [line for line in (sweep / "sweep.md").read_text().splitlines()[2:] if line.startswith("| ")]
    cells = [[c.strip() for c in row.strip("|").split("|")] for row in rows]
    assert [(c[0], c[1]) for c in cells] == [("1.00", "1.00"), ("0.60", "1.00"), ("1.00", "0.50")]
    assert [c[6] for c in cells] == ["0.8395", "0.1428", "0.8046"]  # the paper's FlowScore at each setting


def test_every_metric_is_measured_and_t0_changes_the_video(sweep):
    runs = json.loads((sweep / "sweep.json").read_text())
    for run in runs:
        metrics = run["metrics"]
        assert set(metrics) == {"clip_temp", "isim_first", "isim_average", "isim_decay", "flow_score",
                                "warping_error"}
        assert all(math.isfinite(v) for v in metrics.values()), run
        assert -1 <= metrics["clip_temp"] <= 1 and metrics["flow_score"] >= 0 and metrics["warping_error"] >= 0
        assert metrics["isim_average"] == metrics["clip_temp"]
    assert runs[0]["metrics"] != runs[1]["metrics"]  # t0 1.0 against 0.6: another start, other steps


def test_the_plot_is_a_png(sweep):
    assert (sweep / "sweep.png").read_bytes()[:8] == PNG
    assert not list(sweep.glob(".*.partial"))


def test_a_setting_the_graph_lacks_is_refused_with_its_types(server):
    done = subprocess.run([sys.executable, str(SWEEP), "--server", server.url, "--image", "x.png", "--prompt", "x",
                           "--set", "KSampler.no_such_input=1"], capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "--set KSampler.no_such_input=1: expected NodeType.input=value" in done.stderr, done.stderr
    assert "I2V_VideoMetrics" in done.stderr
