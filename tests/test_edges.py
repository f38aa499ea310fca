"""The edges (issue 21): foreign files, odd DICOMs, file names, full disks, read-only installs, concurrent runs.

Each case is run the way a user meets it, mostly through the ``minivgg`` command (in this
process, or in a subprocess where a terminal, a signal, a limit or a second process is part
of the case), and asserts what the user sees: the exit code, one line naming the file, and
that nothing else changed.
"""

import fcntl
import hashlib
import json
import os
import pty
import resource
import shutil
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from minivgg import VGG8, save_model
from minivgg.app import predict
from minivgg.app.results import ResultsFile
from minivgg.atomic import NAME_MAX, atomic_write, fit_name
from minivgg.cli import BUNDLED_MODEL, BUNDLED_SAMPLES
from minivgg.deploy.modelfile import load_model
from minivgg.errors import ImageError, Note
from minivgg.imaging.imageio import find_images, is_image_path, load_image, reading_bytes
from minivgg.nn.model import vgg8_layout
from minivgg.text import printable
from tests.conftest import run_cli as run

ROOT = Path(__file__).resolve().parents[1]
RA = sorted((BUNDLED_SAMPLES / "RA").glob("*.png"))[0]
SAMPLES = sorted(BUNDLED_SAMPLES.rglob("*.png"))


def minivgg(*argv, timeout=180, **kwargs):
    """``minivgg ARGV`` in a subprocess: the CompletedProcess (text)."""
    return subprocess.run([sys.executable, "-m", "minivgg.cli", *map(str, argv)], capture_output=True, text=True,
                          timeout=timeout, **kwargs)


def one_error_line(stderr, needle):
    """The stderr of a failed command: exactly one ``minivgg: error:`` line, containing ``needle``, no traceback."""
    errors = [line for line in stderr.splitlines() if line.startswith("minivgg: error:")]
    assert len(errors) == 1 and needle in errors[0] and "Traceback" not in stderr, stderr
    return errors[0]


def digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def copies(folder, n):
    """``n`` copies of the bundled samples under ``folder`` (distinct names): the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        shutil.copy(SAMPLES[i % len(SAMPLES)], folder / f"{i:03d}_{SAMPLES[i % len(SAMPLES)].name}")
    return folder


def write_dicom(path, pixels, photometric="MONOCHROME2", compress=None, **attributes):
    """A DICOM file of ``pixels`` ((rows, cols[, 3]), or frames first), made with pydicom; returns ``path``."""
    pytest.importorskip("pydicom", reason="DICOM support is the optional extra minivgg[dicom]")
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid
    colour = not photometric.startswith("MONOCHROME")
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"          # secondary capture
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Rows, ds.Columns = pixels.shape[-3:-1] if colour else pixels.shape[-2:]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = (3 if colour else 1), photometric
    if colour:
        ds.PlanarConfiguration = 0
    if pixels.ndim == (4 if colour else 3):
        ds.NumberOfFrames = pixels.shape[0]
    bits = 8 * pixels.dtype.itemsize
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits, bits - 1, 0
    for name, value in attributes.items():
        setattr(ds, name, value)
    ds.PixelData = pixels.tobytes()
    if compress:
        ds.compress(compress)
    ds.save_as(path, enforce_file_format=True)
    return path


# ================================================================== 1: files that are not ours


@pytest.fixture
def foreign_files(tmp_path):
    """Files a typo could name as --results: a model, a JPEG, notes, a JSON document without a newline."""
    folder = tmp_path / "foreign"
    folder.mkdir()
    shutil.copy(BUNDLED_MODEL, folder / "model.npz")
    Image.open(RA).save(folder / "photo.jpg")
    (folder / "notes.txt").write_text("patient list\nsecond line without an end")
    (folder / "config.json").write_text('{"file": "settings", "threads": 4}')       # valid JSON, no newline
    (folder / "other.jsonl").write_text('{"file": "a.png", "label": "RA"}\n{"name": "not ours"}\n')
    return sorted(folder.iterdir())


@pytest.mark.parametrize("command", ["predict", "explain"])
def test_a_results_file_that_is_not_ours_is_left_byte_for_byte(foreign_files, tmp_path, capsys, command):
    for path in foreign_files:
        before = digest(path)
        argv = [command, RA, "--results", path] + (["--out", tmp_path / "ex", "--method", "gradcam"]
                                                   if command == "explain" else [])
        code, out, err = run(argv, capsys)
        assert code == 65 and out == "", (path, err)
        one_error_line(err, f"{path}: ")
        assert "not a minivgg results file, so it is left as it is" in err
        assert digest(path) == before, f"{path.name} was modified"
    assert sorted(p.name for p in foreign_files[0].parent.iterdir()) == sorted(p.name for p in foreign_files), \
        "something was created beside the foreign files (a lock file?)"


def test_a_results_file_cut_by_a_crash_is_still_resumed(tmp_path, capsys):
    results = tmp_path / "r.jsonl"
    results.write_text('{"file": "/x/a.png", "la')              # the first record, cut short; no complete line
    code, out, err = run(["predict", RA, "--results", results, "--json"], capsys)
    assert code == 0 and len(out.splitlines()) == 1
    assert [json.loads(line)["file"] for line in results.read_text().splitlines()] == [str(RA)]


def test_non_regular_files_are_refused_in_one_line_without_reading_them(tmp_path, capsys):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for target, kind in ((tmp_path, "is a folder"), (fifo, "is a FIFO (named pipe)"),
                         (Path("/dev/zero"), "is a character device")):
        started = time.monotonic()
        code, out, err = run(["predict", RA, "--results", target], capsys)
        assert code == 73 and out == "" and time.monotonic() - started < 30, (target, err)
        line = one_error_line(err, f"{target}: {kind}, not a results file")
        assert "outputerror" not in line.lower()
        code, out, err = run(["explain", RA, "--out", target if target != tmp_path else fifo], capsys)
        assert code == 73 and out == "" and "output folder is" in one_error_line(err, "output folder is")
    code, _, err = run(["predict", RA, "--model", fifo], capsys)
    assert code == 65
    one_error_line(err, f"{fifo}: is a FIFO (named pipe), not a regular file")


def test_hashing_inputs_never_hangs_on_a_fifo_or_a_device(tmp_path, capsys):
    folder = copies(tmp_path / "in", 2)
    os.mkfifo(folder / "waiting.png")                          # reading it would wait for a writer for ever
    (folder / "endless.png").symlink_to("/dev/zero")           # reading it would never end
    code, out, err = run(["predict", folder, "--key", "content", "--results", tmp_path / "r.jsonl"], capsys)
    assert code == 65
    assert f"{folder / 'waiting.png'}: is a FIFO (named pipe), not a regular file" in err
    assert f"{folder / 'endless.png'}: is a character device, not a regular file" in err
    assert "empty file" not in err and len(out.splitlines()) == 2


def test_a_fifo_given_as_an_image_is_named_as_one(tmp_path, capsys):
    os.mkfifo(tmp_path / "x.png")
    code, out, err = run(["predict", tmp_path / "x.png", RA], capsys)
    assert code == 65 and str(RA) in out
    assert f"{tmp_path / 'x.png'}: is a FIFO (named pipe), not a regular file" in err and "empty file" not in err


# ================================================================== 2: one run per results file


def test_a_second_run_on_a_results_file_in_use_is_refused_or_waits(tmp_path):
    results = tmp_path / "r.jsonl"
    with ResultsFile(results):                              # this process holds the file, as a running command
        refused = minivgg("predict", RA, "--results", results)
        assert refused.returncode == 75
        one_error_line(refused.stderr, f"{results}: in use by process {os.getpid()}")
        waiting = subprocess.Popen([sys.executable, "-m", "minivgg.cli", "predict", RA, "--results", results,
                                    "--wait", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(3)
        assert waiting.poll() is None, "--wait did not wait"
    out, err = waiting.communicate(timeout=120)
    assert waiting.returncode == 0 and f"in use by process {os.getpid()}; waiting for it to end" in err
    assert [json.loads(line)["file"] for line in results.read_text().splitlines()] == [str(RA)]


def test_two_concurrent_runs_record_each_image_exactly_once(tmp_path):
    folder = copies(tmp_path / "in", 12)
    results = tmp_path / "r.jsonl"
    command = [sys.executable, "-m", "minivgg.cli", "predict", str(folder), "--results", str(results), "--wait"]
    with ResultsFile(results):                   # both start while the file is held: they run at the same time
        runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for _ in range(2)]
        time.sleep(3)
    outputs = [run_.communicate(timeout=300) for run_ in runs]
    assert [run_.returncode for run_ in runs] == [0, 0], outputs
    files = [json.loads(line)["file"] for line in results.read_text().splitlines()]
    assert sorted(files) == sorted(str(p) for p in folder.iterdir())           # each image exactly once
    assert sum("12 of 12 images already done; 0 to go" in err for _, err in outputs) == 1


def test_the_lock_goes_with_the_process_that_held_it(tmp_path):
    results = tmp_path / "r.jsonl"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from minivgg.app.results import ResultsFile; "
                               f"r = ResultsFile({str(results)!r}); print('held', flush=True); time.sleep(600)"],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    assert minivgg("predict", RA, "--results", results).returncode == 75
    holder.kill()                                          # kill -9: no clean-up ran
    holder.wait()
    assert minivgg("predict", RA, "--results", results).returncode == 0


# ================================================================== 3: DICOM


def test_dicom_colour_and_multi_frame_give_their_first_frame(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (2, 24, 20, 3), dtype=np.uint8)              # two colour frames
    Image.fromarray(rgb[0]).save(tmp_path / "first.png")
    as_png = load_image(tmp_path / "first.png")
    colour = load_image(write_dicom(tmp_path / "rgb.dcm", rgb[0], "RGB"))
    multi_colour = load_image(write_dicom(tmp_path / "rgb2.dcm", rgb, "RGB"))
    np.testing.assert_array_equal(colour, as_png)
    np.testing.assert_array_equal(multi_colour, as_png)
    gray = rng.integers(0, 256, (3, 24, 20), dtype=np.uint8)
    multi_gray = load_image(write_dicom(tmp_path / "gray3.dcm", gray))
    assert multi_gray.dtype == np.float32
    np.testing.assert_array_equal(multi_gray, gray[0] / np.float32(255))


def test_a_dicom_that_cannot_be_read_stops_only_itself(tmp_path, capsys):
    folder = copies(tmp_path / "in", 2)
    rgb = np.random.default_rng(1).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    write_dicom(folder / "colour_frames.dcm", rgb, "RGB")
    broken = write_dicom(folder / "cut.dcm", np.zeros((4, 64, 64), np.uint16))
    broken.write_bytes(broken.read_bytes()[:-30_000])                  # the pixel data ends inside frame 0
    for argv in (["predict", folder, "--json"], ["explain", folder, "--out", tmp_path / "ex", "--method", "gradcam"]):
        code, out, err = run(argv, capsys)
        assert code == 65, err
        one_error_line(err, f"{broken}: unreadable DICOM")
        assert len(out.splitlines()) == 3 and "colour_frames.dcm" in out


def test_dicom_frames_count_in_the_limits_checked_before_decoding(tmp_path, monkeypatch):
    pydicom = pytest.importorskip("pydicom", reason="DICOM support is the optional extra minivgg[dicom]")
    from pydicom.uid import RLELossless
    stack = write_dicom(tmp_path / "stack.dcm", np.zeros((16, 64, 64), np.uint16), compress=RLELossless)
    assert stack.stat().st_size < 16 * 64 * 64 * 2 / 10                     # compressed: small on disk
    assert reading_bytes(stack) == 16 * 64 * 64 * 2 + 64 * 64 * 4

    def never(*args, **kwargs):
        raise AssertionError("pixels were decoded before the limits were checked")
    monkeypatch.setattr(pydicom.pixels, "pixel_array", never)
    with pytest.raises(ImageError, match=r"stack.dcm: 64x64 x 16 frames = 65,536 pixels exceeds the limit of 50,000"):
        load_image(stack, max_pixels=50_000)
    with pytest.raises(ImageError, match=r"stack.dcm: 64x64 x 16 frames would take 0 MB decoded, over the limit"):
        load_image(stack, max_bytes=100_000)


def test_a_multi_frame_dicom_is_converted_one_frame_at_a_time(tmp_path):
    frames = np.random.default_rng(2).integers(0, 4096, (16, 512, 512), dtype=np.uint16)
    path = write_dicom(tmp_path / "stack.dcm", frames, BitsStored=12, HighBit=11, RescaleSlope=2,
                       RescaleIntercept=-1000)
    tracemalloc.start()
    image = load_image(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert image.dtype == np.float32
    np.testing.assert_allclose(image, frames[0] / 4095, atol=1e-6)
    # One frame raw (0.5 MB) and as float32 (1 MB), and the LUT's table (1 MB); all frames are 8 MB raw.
    assert peak < frames.nbytes / 2, f"reading took {peak:,} bytes; all frames are {frames.nbytes:,}"


def test_png_and_dicom_of_the_same_8bit_pixels_are_the_same_model_input(tmp_path):
    model = load_model(BUNDLED_MODEL)
    pixels = np.asarray(Image.open(RA))                                      # 8-bit grayscale
    dicom = write_dicom(tmp_path / "ra.dcm", pixels)
    np.testing.assert_array_equal(model.read(dicom), model.read(RA))
    identity = write_dicom(tmp_path / "ra_rescaled.dcm", pixels, RescaleSlope=1, RescaleIntercept=0)
    np.testing.assert_array_equal(model.read(identity), model.read(RA))
    assert model.assess(model.read(dicom)[None])[0].ood_score == model.assess(model.read(RA)[None])[0].ood_score


def test_dicom_window_is_applied_where_the_file_has_one(tmp_path):
    pixels = np.array([[0, 1000, 1536], [2048, 2560, 4095]], dtype=np.uint16)
    windowed = load_image(write_dicom(tmp_path / "w.dcm", pixels, BitsStored=12, HighBit=11, WindowCenter=2048,
                                      WindowWidth=1024))
    np.testing.assert_allclose(windowed, [[0, 0, 0], [0.5, 1, 1]], atol=2e-3)


def test_a_dicom_without_a_suffix_is_found_and_read(tmp_path, capsys):
    folder = copies(tmp_path / "pacs", 1)
    png = f"000_{SAMPLES[0].name}"
    write_dicom(folder / "IM0001", np.asarray(Image.open(SAMPLES[0])))
    (folder / "notes.txt").write_text("not an image")
    (folder / "DICOMDIR.bak").write_bytes(b"\0" * 128 + b"DICX")
    os.mkfifo(folder / "IM0002")                                              # must not be opened (it would block)
    assert is_image_path(folder / "IM0001") and not is_image_path(folder / "notes.txt")
    assert find_images(folder) == sorted([folder / "IM0001", *folder.glob("*.png")])
    code, out, err = run(["predict", folder, "--json"], capsys)
    records = {Path(r["file"]).name: r for r in map(json.loads, out.splitlines())}
    assert code == 0 and set(records) == {"IM0001", png}, err
    assert records["IM0001"]["probabilities"] == records[png]["probabilities"]


# ================================================================== 4: a memory budget


def test_decoded_bytes_are_checked_before_decoding(tmp_path, monkeypatch):
    Image.new("RGBA", (3000, 2000), (10, 20, 30, 255)).save(tmp_path / "big.png")     # small file, 24 MB decoded
    from PIL import ImageFile

    def never(self):
        raise AssertionError("pixels were decoded before the limits were checked")
    monkeypatch.setattr(ImageFile.ImageFile, "load", never)
    with pytest.raises(ImageError, match=r"big.png: 3000x2000 would take 23 MB decoded, over the limit of 16 MB"):
        load_image(tmp_path / "big.png", max_bytes=16 * 2 ** 20)
    assert reading_bytes(tmp_path / "big.png") == 3000 * 2000 * (4 + 4)


def test_read_ahead_and_batches_stay_within_the_budget(tmp_path, monkeypatch, restore_threads):
    from minivgg.nn.threads import set_threads
    set_threads(4)
    model = load_model(BUNDLED_MODEL)
    files = sorted(copies(tmp_path / "in", 7).iterdir())
    largest = max(int(np.prod(spec.shape)) for spec in vgg8_layout(**model.config))
    per_image = 4 * (2 * largest + 3 * model.image_size ** 2)      # what batch_limit counts for one image
    monkeypatch.setattr(predict, "MEMORY_BUDGET", 3 * per_image)
    reading, most, lock = 0, 0, threading.Lock()
    real_read = model.read

    def read(path):
        nonlocal reading, most
        with lock:
            reading += 1
            most = max(most, reading)
        time.sleep(0.1)
        try:
            return real_read(path)
        finally:
            with lock:
                reading -= 1
    scored = []
    real_assess = model.assess
    monkeypatch.setattr(model, "read", read)
    monkeypatch.setattr(model, "assess", lambda x, batch_size: scored.append(len(x)) or real_assess(x, batch_size))
    for each, expected in ((2 * per_image, 1), (1.5 * per_image, 2)):      # one image fits at a time, then two
        monkeypatch.setattr(predict, "reading_bytes", lambda path, each=each: int(each))
        scored.clear()
        with pytest.warns(Note, match="--batch-size 4096: 3 images at a time is what model"):
            done = list(predict.predict_files(model, files, batch_size=4096))
        assert len(done) == 7 and most == expected and scored == [3, 3, 1]
        most = 0


def test_a_batch_size_too_large_for_memory_is_lowered_with_a_note(capsys):
    fits = predict.batch_limit(load_model(BUNDLED_MODEL))
    assert 16 < fits < 4096
    code, out, err = run(["predict", BUNDLED_SAMPLES, "--batch-size", 4096], capsys)
    assert code == 0 and len(out.splitlines()) == len(SAMPLES)
    assert f"minivgg: note: --batch-size 4096: {fits} images at a time is what model" in err


# ================================================================== 5: names are data


@pytest.fixture
def awkward(tmp_path):
    """Images with awkward names, and a model whose class name is markup and escape codes."""
    folder = tmp_path / "names"
    folder.mkdir()
    names = [b"a$\\frac$b.png", b"x\xffy.png", b"e\x1b[2Jv\nil.png", b"L" * 246 + b".png", b"L" * 240 + b"M.png"]
    for name in names:
        shutil.copy(RA, os.path.join(os.fsencode(folder), name))
    model = VGG8(channels=(2, 2, 2, 2, 2, 2, 2, 2), hidden=4, image_size=32,
                 class_names=["Normal", "RA$\\frac$\x1b[31m\nX"])
    save_model(model, tmp_path / "markup.npz")
    return folder, tmp_path / "markup.npz"


def test_file_and_class_names_are_drawn_and_printed_as_data(awkward, tmp_path, capsys):
    folder, model = awkward
    out_dir = tmp_path / "ex"
    code, out, err = run(["explain", folder, "--model", model, "--out", out_dir, "--budget", 20, "--regions", 4],
                         capsys)
    assert code == 0, err
    assert "\x1b" not in out + err and len(out.splitlines()) == 5            # one line per image, escapes written out
    assert "RA$\\frac$\\x1b[31m\\nX" in out and "x\\xffy.png" in out
    written = sorted(os.listdir(os.fsencode(out_dir)))
    assert len(written) == 15 and all(len(name) <= NAME_MAX for name in written)
    assert not [name for name in written if name.startswith(b".")]            # no temporary file left
    stamp = Image.open(out_dir / os.fsdecode(b"x\xffy_explain.png")).text
    assert stamp["Source"] == "x\\xffy.png" and stamp["Class"] == "RA$\\frac$\\x1b[31m\\nX"
    code, out, err = run(["predict", folder, "--model", model], capsys)
    assert code == 0 and "\x1b" not in out + err and len(out.splitlines()) == 5
    code, out, _ = run(["info", "--model", model], capsys)
    assert code == 0 and "\x1b" not in out and "RA$\\frac$\\x1b[31m\\nX" in out


def test_long_names_are_shortened_and_stay_distinct(tmp_path):
    from minivgg.files import MAX_STEM_BYTES, distinct_stems
    a, b = tmp_path / ("é" * 150 + "a.png"), tmp_path / ("é" * 150 + "b.png")      # 301 bytes, alike for 300
    stems = distinct_stems([a, b])
    assert stems[a] != stems[b] and all(len(os.fsencode(s)) <= MAX_STEM_BYTES for s in stems.values())
    assert stems[a].startswith("é" * 100) and fit_name("short.png") == "short.png"
    longest = tmp_path / ("n" * NAME_MAX)                      # the longest name a file may have
    (tmp_path / f".{fit_name(longest.name, NAME_MAX - 32)}.999999999.x.tmp").write_bytes(b"x")   # a dead writer's
    with atomic_write(longest) as f:
        f.write(b"data")
    assert longest.read_bytes() == b"data" and [p.name for p in tmp_path.iterdir()] == [longest.name]


def test_printable_writes_out_what_would_act_on_a_terminal():
    assert printable("plain é 漢字.png") == "plain é 漢字.png"
    assert printable("a\x1b[2J\nb\u202e\x9b.png") == "a\\x1b[2J\\nb\\u202e\\x9b.png"
    assert printable(os.fsdecode(b"x\xff.png")) == "x\\xff.png"


# ================================================================== 6: read-only installs


def test_a_read_only_install_caches_kernels_in_a_temporary_folder(tmp_path):
    site = tmp_path / "site"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "minivgg", site / "minivgg", ignore=ignore)
    shutil.copytree(ROOT / "explain", site / "minivgg" / "explain", ignore=ignore)
    shutil.copytree(ROOT / "tui", site / "minivgg" / "tui", ignore=ignore)
    for folder in [site / "minivgg", *(p for p in (site / "minivgg").rglob("*") if p.is_dir())]:
        (folder / "__pycache__").write_text("")            # a file where numba (and Python) would put a folder
    probe = site / "minivgg" / "nn" / "probe.py"            # a cached kernel beside minivgg's, without minivgg
    probe.write_text("import numba\n\n@numba.njit(cache=True)\ndef f():\n    return 0\n")
    unwritable = "/dev/null/nowhere"                       # not a folder, and nothing can be created under it
    env = {**os.environ, "PYTHONPATH": str(site), "HOME": unwritable, "XDG_CACHE_HOME": unwritable,
           "NUMBA_CACHE_DIR": unwritable, "TMPDIR": str(tmp_path)}

    def python(*argv):                                    # run from tmp_path: "python -m" looks in the current folder
        return subprocess.run([sys.executable, *map(str, argv)], env=env, cwd=tmp_path, capture_output=True,
                              text=True, timeout=300)
    assert python("-c", "import minivgg; print(minivgg.__file__)").stdout.startswith(str(site))   # the copy runs
    control = python(probe)
    assert control.returncode != 0 and "no locator available" in control.stderr    # numba alone fails here
    shown = python("-m", "minivgg.cli", "--help")
    fallback = tmp_path / f"minivgg-numba-{os.getuid()}"
    assert shown.returncode == 0 and "usage: minivgg" in shown.stdout
    assert shown.stderr.count("minivgg: note:") == 1 and str(fallback) in shown.stderr
    assert not list(fallback.rglob("*.nbi")), "--help compiled a kernel"
    predicted = python("-m", "minivgg.cli", "predict", RA, "--json")
    assert predicted.returncode == 0, predicted.stderr
    assert json.loads(predicted.stdout)["file"] == str(RA) and "Traceback" not in predicted.stderr
    assert predicted.stderr.count("minivgg: note: no writable place for numba's kernel cache") == 1
    assert list(fallback.rglob("*.nbi"))                   # the kernels were cached there




# ================================================================== 7: OSErrors are exit codes


def test_a_full_or_closed_standard_output_is_an_error(tmp_path):
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "minivgg.cli", "predict", str(RA)], stdout=full,
                              stderr=subprocess.PIPE, text=True, timeout=180)
    assert done.returncode == 74
    one_error_line(done.stderr, "standard output: cannot write (no space left on device)")
    closed = subprocess.run([sys.executable, "-m", "minivgg.cli", "predict", str(RA), "--results",
                             str(tmp_path / "r.jsonl")], stderr=subprocess.PIPE, text=True, timeout=180,
                            preexec_fn=lambda: os.close(1))
    assert closed.returncode == 74
    one_error_line(closed.stderr, "standard output is closed")
    assert not (tmp_path / "r.jsonl").exists()


def _at_most(nbytes):
    """preexec_fn: files may not grow past ``nbytes`` (the write that would fails with EFBIG, as on a full disk)."""
    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, nbytes))
    return limit


def test_a_full_disk_under_out_or_results_is_one_line_and_nothing_half_written(tmp_path):
    argv = ["explain", RA, "--out", tmp_path / "ex", "--method", "gradcam"]
    assert minivgg(*argv).returncode == 0                   # warm: the kernel cache is written before the limit
    shutil.rmtree(tmp_path / "ex")
    full = minivgg(*argv, preexec_fn=_at_most(20_000))
    assert full.returncode == 74
    one_error_line(full.stderr, f"{tmp_path / 'ex' / RA.stem}_gradcam.png: cannot write (file too large)")
    assert os.listdir(tmp_path / "ex") == []                # no partial picture, no temporary file
    folder = copies(tmp_path / "in", 4)
    results = tmp_path / "r.jsonl"
    padding = json.dumps({"file": "/elsewhere/other.png", "error": "x" * 100}) + "\n"
    results.write_text(padding * (19_900 // len(padding)))
    full = minivgg("predict", folder, "--results", results, preexec_fn=_at_most(20_000))
    assert full.returncode == 74
    one_error_line(full.stderr, f"{results}: cannot append to the results file (file too large)")
    again = minivgg("predict", folder, "--results", results)
    assert again.returncode == 0, again.stderr
    records = [json.loads(line) for line in results.read_text().splitlines()]       # every line whole
    assert sorted(r["file"] for r in records if "label" in r) == sorted(str(p) for p in folder.iterdir())


def test_a_path_over_the_system_limit_inside_a_folder_is_one_line(tmp_path, capsys):
    root = copies(tmp_path / "deep", 1)
    fd = os.open(root, os.O_RDONLY)
    for _ in range(18):                                      # 18 x 251 characters: over PATH_MAX (4096)
        os.mkdir("d" * 250, dir_fd=fd)
        inner = os.open("d" * 250, os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = inner
    image = os.open("lost.png", os.O_WRONLY | os.O_CREAT, dir_fd=fd)
    os.write(image, RA.read_bytes())
    os.close(image)
    os.close(fd)
    code, out, err = run(["predict", root], capsys)
    assert code == 0 and len(out.splitlines()) == 1 and "Traceback" not in err
    notes = [line for line in err.splitlines() if line.startswith("minivgg: note:")]
    assert len(notes) == 1 and "cannot search this folder (file name too long); its images are left out" in notes[0]


@pytest.fixture
def distributed():
    return pytest.importorskip("dask.distributed", reason="Dask is this test's engine; pip install 'minivgg[dask]'")


def test_an_unreachable_dask_scheduler_is_one_line_within_10_seconds(distributed, capsys):
    started = time.monotonic()
    code, out, err = run(["predict", RA, "--dask", "tcp://127.0.0.1:1"], capsys)
    assert code == 69 and out == "" and time.monotonic() - started < 10
    one_error_line(err, "--dask tcp://127.0.0.1:1: cannot reach a Dask scheduler there")


def test_ctrl_c_under_dask_is_one_line_and_exit_130(distributed, tmp_path):
    folder = copies(tmp_path / "in", 60)
    results = tmp_path / "r.jsonl"
    run_ = subprocess.Popen([sys.executable, "-m", "minivgg.cli", "predict", str(folder), "--dask", "--chunk-size",
                             "1", "--results", str(results)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while (not results.exists() or len(results.read_text().splitlines()) < 3) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(run_.pid, signal.SIGINT)                     # Ctrl-C reaches every process of the terminal's group
    _, err = run_.communicate(timeout=120)
    assert run_.returncode == 130, err
    lines = [line for line in err.splitlines() if line.strip() and "compiling kernels" not in line]
    assert "Traceback" not in err and len(lines) == 2, err   # the dashboard line, and the interruption
    assert lines[-1] == "minivgg: interrupted (rerun the same command to continue from its --results file)"
    done = [json.loads(line) for line in results.read_text().splitlines()]
    assert len(done) == len({r["file"] for r in done}) < 60


# ================================================================== 8: the terminal app


def _in_a_terminal(argv, rows, columns, close_stdin=False):
    """Run ``minivgg ARGV`` with a pseudo-terminal of ``rows`` x ``columns``: (exit code, what it showed)."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    started = subprocess.Popen([sys.executable, "-m", "minivgg.cli", *map(str, argv)], stdin=follower,
                               stdout=follower, stderr=follower, preexec_fn=(lambda: os.close(0)) if close_stdin
                               else None, env={**os.environ, "TERM": "xterm-256color"})
    os.close(follower)
    shown = b""
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:                                      # the terminal's other end closed: the process ended
            break
        if not data:
            break
        shown += data
    os.close(leader)
    return started.wait(timeout=60), shown.decode("utf-8", "replace")


@pytest.mark.parametrize("rows,columns", [(0, 0), (3, 10)])
def test_the_terminal_app_refuses_a_terminal_too_small_in_one_line(rows, columns):
    code, shown = _in_a_terminal(["tui", RA], rows, columns)
    assert code == 2 and "Traceback" not in shown
    assert f"the terminal is {columns}x{rows} characters; the app needs at least 20x5" in shown


def test_the_terminal_app_refuses_a_closed_stdin_in_one_line():
    code, shown = _in_a_terminal(["tui", RA], 40, 120, close_stdin=True)
    assert code == 2 and "Traceback" not in shown and "needs an interactive terminal" in shown


def test_the_picture_widgets_load_in_a_terminal_of_no_size():
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 0, 0, 0, 0))
    done = subprocess.run([sys.executable, "-c", "import minivgg.tui.pictures"], stdin=follower, stdout=follower,
                          stderr=subprocess.PIPE, text=True, timeout=120)
    os.close(follower)
    os.close(leader)
    assert done.returncode == 0, done.stderr


# ================================================================== 9: smaller ones


def test_a_float_tiff_of_huge_finite_values_is_read(tmp_path):
    a = np.zeros((8, 8), np.float32)
    a[0, 0], a[1, 1] = -3e38, 3e38
    Image.fromarray(a, mode="F").save(tmp_path / "huge.tif")
    image = load_image(tmp_path / "huge.tif")
    assert np.isfinite(image).all() and image.min() == 0 and image.max() == 1
    assert image[2, 2] == pytest.approx(0.5)


def test_corrupt_exif_data_is_one_note_naming_the_file(tmp_path, capsys):
    ifd = b"MM\x00*\x00\x00\x00\x08" + b"\x00\x05" + b"\x01\x12\x00\x03\x00\x00\x00\x01\x00\x06\x00\x00"
    Image.open(RA).save(tmp_path / "phone.jpg", exif=b"Exif\x00\x00" + ifd)   # says 5 entries, holds 1
    code, out, err = run(["predict", tmp_path / "phone.jpg"], capsys)
    assert code == 0 and str(tmp_path / "phone.jpg") in out
    notes = [line for line in err.splitlines() if line.startswith("minivgg: note:")]
    assert notes == [f"minivgg: note: {tmp_path / 'phone.jpg'}: Corrupt EXIF data.  Expecting to read 12 bytes but "
                     f"only got 0; the rest of the file was read"]
    assert "UserWarning" not in err
