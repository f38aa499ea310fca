"""Archives: the resumable results file, and predict/explain on a Dask cluster (2 worker processes).

The Dask tests take the ``distributed`` fixture and skip without it (``pip install 'minivgg[dask]'``);
everything else runs everywhere.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from minivgg.app.results import ResultsFile, ResultsFileError, file_key
from minivgg.imaging.phantoms import write_phantoms
from tests.conftest import run_cli as run


@pytest.fixture
def distributed():
    return pytest.importorskip("dask.distributed", reason="Dask is this test's engine; pip install 'minivgg[dask]'")


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """24 phantom radiographs in two folders, with the same file names in both (same stems)."""
    scratch, root = tmp_path_factory.mktemp("phantoms"), tmp_path_factory.mktemp("archive")
    for name, seed in (("a", 3), ("b", 4)):
        write_phantoms(scratch / name, 12, seed=seed, size=96)
        (scratch / name / "images").rename(root / name)        # root/a/<class>/*.png, root/b/<class>/*.png
    return root


def records(text):
    return {r["file"]: r for r in map(json.loads, text.splitlines())}


# ------------------------------------------------------------------ the results file


def test_results_file_resumes_and_retries_failures(tmp_path):
    good, bad = tmp_path / "good.png", tmp_path / "bad.png"
    good.write_bytes(b"x")
    bad.write_bytes(b"y")
    path = tmp_path / "out" / "results.jsonl"
    with ResultsFile(path) as results:
        todo, keys = results.pending([good, bad])
        assert todo == [good, bad]
        results.append({"file": str(good), "label": "RA"}, keys[good])
        results.append({"file": str(bad), "error": "bad.png: not a readable image"}, keys[bad])
    with ResultsFile(path) as results:
        assert results.pending([good, bad])[0] == [bad]       # the failure is tried again
    good.write_bytes(b"changed")                               # a new version of the file is new work
    os.utime(good, ns=(1, 1))
    with ResultsFile(path) as results:
        assert results.pending([good, bad])[0] == [good, bad]


def test_results_file_cuts_a_partial_last_line_and_refuses_foreign_files(tmp_path):
    image = tmp_path / "x.png"
    image.write_bytes(b"x")
    path = tmp_path / "r.jsonl"
    line = json.dumps({"file": str(image), "label": "RA", "key": file_key(image)})
    path.write_text(line + "\n" + '{"file": "cut sho')
    with ResultsFile(path) as results:
        assert results.pending([image])[0] == [] and results.previous == 1
    assert path.read_text() == line + "\n"
    with ResultsFile(tmp_path / "c.jsonl", kind="content") as results:
        assert results.key(image) == {"sha256": "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"}
    (tmp_path / "foreign.jsonl").write_text("hello\n")
    with pytest.raises(ResultsFileError, match="line 1 is not JSON"):
        ResultsFile(tmp_path / "foreign.jsonl")


def test_local_predict_resumes_from_its_results(archive, tmp_path, capsys):
    results = tmp_path / "r.jsonl"
    code, out, _ = run(["predict", archive / "a", "--results", results, "--json"], capsys)
    assert code == 0 and len(out.splitlines()) == 12
    code, out, err = run(["predict", archive, "--results", results, "--json"], capsys)
    assert code == 0 and "12 of 24 images already done; 12 to go" in err
    assert set(records(out)) == {str(p) for p in (archive / "b").rglob("*.png")}
    assert len(results.read_text().splitlines()) == 24


# ------------------------------------------------------------------ Dask


def test_dask_gives_the_local_results_and_reports_a_bad_file(distributed, archive, tmp_path, capsys):
    bad = archive / "a" / "RA" / "zz_broken.png"
    bad.write_bytes(b"not an image")
    try:
        code, local, _ = run(["predict", archive, "--json"], capsys)
        assert code == 65
        code, remote, err = run(["predict", archive, "--json", "--dask", "--chunk-size", "5",
                                 "--results", tmp_path / "r.jsonl"], capsys)
    finally:
        bad.unlink()
    assert code == 65 and "zz_broken.png: not a readable image" in err and "dashboard: http" in err
    local, remote = records(local), records(remote)
    assert set(local) == set(remote) and len(remote) == 24
    for f, r in local.items():
        assert remote[f]["label"] == r["label"] and remote[f]["in_distribution"] == r["in_distribution"]
        for c, p in r["probabilities"].items():
            assert remote[f]["probabilities"][c] == pytest.approx(p, abs=2e-6)


def test_dask_connects_to_a_running_scheduler(distributed, archive, capsys):
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0") as c:
        code, out, err = run(["predict", archive / "b", "--json", "--dask", c.scheduler_address], capsys)
    assert code == 0 and len(out.splitlines()) == 12 and f"scheduler {c.scheduler_address}" in err


def test_a_killed_dask_run_resumes_without_losing_or_repeating_images(distributed, archive, tmp_path):
    # 240 files (the archive's 24, ten times over, under distinct names), one per task: enough work that
    # the kill lands in the middle of the run however fast the machine is.
    many = tmp_path / "many"
    for copy in range(10):
        for path in archive.rglob("*.png"):
            target = many / path.parent.name / f"{copy}_{path.parent.parent.name}_{path.name}"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target)
    total = len(list(many.rglob("*.png")))
    results = tmp_path / "r.jsonl"
    command = [sys.executable, "-m", "minivgg.cli", "predict", str(many), "--dask", "--chunk-size", "1",
               "--results", str(results), "--json"]
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while (not results.exists() or len(results.read_text().splitlines()) < 4) and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(first.pid, signal.SIGKILL)                    # the client and its local cluster, at once
    first.wait()
    done_before = len(results.read_text().splitlines())
    assert 4 <= done_before < total, "the run was not cut in the middle"
    second = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    assert f"{done_before} of {total} images already done" in second.stderr
    lines = [json.loads(line) for line in results.read_text().splitlines()]
    assert sorted(r["file"] for r in lines) == sorted(str(p) for p in many.rglob("*.png"))


def test_dask_without_dask_installed_says_how_to_get_it(archive, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "dask.distributed", None)          # import fails as if absent
    code, out, err = run(["predict", archive / "a", "--dask"], capsys)
    assert code == 2 and "pip install 'minivgg[dask]'" in err and out == ""
    assert err.count("\n") == 1 or "compiling kernels" in err


def test_dask_explain_writes_the_same_files_with_distinct_names(distributed, archive, tmp_path, capsys):
    import numpy as np
    inputs = [archive / "a" / "RA", archive / "b" / "RA"]            # the same six file names in both
    options = ["--method", "gradcam", "--save-raw"]
    assert run(["explain", *inputs, "--out", tmp_path / "local", *options], capsys)[0] == 0
    code, out, err = run(["explain", *inputs, "--out", tmp_path / "dask", *options, "--dask", "--chunk-size", "2"],
                         capsys)
    assert code == 0 and len(out.splitlines()) == 12
    local = sorted(p.name for p in (tmp_path / "local").iterdir())
    # Per image: the map's picture, the combined figure, the map as .npy, and the map on the original pixels
    # (.npy and its picture).
    assert local == sorted(p.name for p in (tmp_path / "dask").iterdir()) and len(local) == 5 * 12
    assert any(n.startswith("a_RA_") for n in local) and any(n.startswith("b_RA_") for n in local)
    for name in local:
        if name.endswith(".npy"):
            np.testing.assert_allclose(np.load(tmp_path / "dask" / name), np.load(tmp_path / "local" / name),
                                       atol=1e-5)
    assert not list((tmp_path / "dask").glob(".*tmp"))
