"""bench/throughput.py runs on the CPU with small settings (figures are recorded, never asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_throughput_benchmark_compares_seed_style_and_kit_on_cpu(tmp_path):
    out = tmp_path / "throughput.json"
    proc = subprocess.run(
        [
            sys.executable,
            "bench/throughput.py",
            "--device",
            "cpu",
            "--model",
            "resnet18",
            "--image-size",
            "32",
            "--batch-size",
            "8",
            "--kit-batch-sizes",
            "8,16",
            "--images",
            "64",
            "--steps",
            "2",
            "--warmup",
            "1",
            "--workers",
            "1",
            "--no-compile",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(out.read_text())
    assert set(result["results_img_per_s"]) == {"seed-style bs8", "kit bs8", "kit bs16"}
    assert all(rate > 0 for rate in result["results_img_per_s"].values())
    assert result["ratio_equal_batch"] > 0 and "ratio at equal batch (8)" in proc.stdout
