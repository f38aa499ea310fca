"""The speed benchmark still runs: a tiny VGG8, one timed round, its JSON keys (no timing is asserted).

A benchmark that nobody runs in CI rots (an import renamed elsewhere broke bench_vgg8.py
once); this keeps its worker processes and its report honest at a cost of a few seconds.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_bench_vgg8_runs_and_reports_its_keys():
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_vgg8.py"), "--json", "--no-torch",
                          "--batch", "1", "--image-size", "32", "--rounds", "2", "--threads", "1"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["infer_ms_per_img"] > 0 and result["train_ms_per_img"] > 0 and result["peak_rss_mb"] > 0
    assert result["threads"] == 1 and result["rounds"] == 2
    assert [row["layer"] for row in result["layers"]][:3] == ["features.0", "features.1", "features.2"]


def test_bench_vgg8_compares_with_pytorch_layer_by_layer():
    pytest.importorskip("torch", reason="the PyTorch side of the benchmark; pip install torch==2.13.0")
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_vgg8.py"), "--json",
                          "--batch", "1", "--image-size", "32", "--rounds", "2", "--threads", "1"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert len(result["per_round_ms_per_img"]["torch_train"]) == 2 and result["train_ratio"] > 0
    ours, theirs = result["layers"], result["torch_layers"]
    assert [row["layer"] for row in ours] == [row["layer"] for row in theirs]
    assert all(row["forward_ms"] > 0 and row["backward_ms"] >= 0 for row in theirs)


def test_bench_kernels_times_every_algorithm_and_names_the_dispatch_choice():
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_kernels.py"), "--json", "--sets", "tiny",
                          "--rounds", "1"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    first, second = json.loads(out.stdout)
    assert set(first["ms"]) == {"direct/forward", "im2col/forward", "im2col/dx", "im2col/dW"} | {
        f"{s}/{p}" for s in ("F(2x2,3x3)", "F(4x4,3x3)") for p in ("forward", "dx", "dW")}
    assert "direct/forward" not in second["ms"] and all(v > 0 for v in second["ms"].values())
    assert first["picked_forward"] == "direct" and second["picked_forward"] == "im2col"     # 2x16x16 = 512 positions
    assert first["picked_dW"] == "direct" and second["picked_dW"] == "im2col"
    assert all(first["fastest"][p] in {k.split("/")[0] for k in first["ms"]} for p in ("forward", "dx", "dW"))


def test_bench_explain_command_times_the_shap_command_and_counts_its_calls():
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_explain.py"), "command", "--json",
                          "--rounds", "1", "--images", "1"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    single, together = json.loads(out.stdout)["rows"]
    assert together["command"] == "all 1 in one process" and "ratio" not in single
    for row in (single, together):
        this = row["this"]
        assert 2 < this["model_calls_per_image"] <= 2002 and this["seconds_per_image"] > 0
        assert abs(this["ms_per_call"] - this["seconds_per_image"] / this["model_calls_per_image"] * 1000) < 1e-6
