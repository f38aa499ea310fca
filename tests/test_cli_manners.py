"""The command line's manners: progress off the result lines, names from stdin, folders walked once, help,
the detector's threshold in the JSON, and the terminal app under redirections (on a pseudo-terminal)."""

import fcntl
import io
import json
import os
import pty
import select
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import termios
import time

import numpy as np
import pytest

from minivgg import save_model
from minivgg.cli import BUNDLED_SAMPLES, main
from minivgg.cli.common import input_files
from minivgg.cli.parser import EXAMPLES, build_parser
from minivgg.progress import CLEAR_LINE, Progress
from tests.test_tui import tiny_model

SAMPLES = sorted(BUNDLED_SAMPLES.rglob("*.png"))
MINIVGG = [sys.executable, "-m", "minivgg.cli"]


def copies(folder, n=None):
    """``n`` copies of the bundled samples (all of them by default) in ``folder``, named 00.png, 01.png ..."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n or len(SAMPLES)):
        shutil.copy(SAMPLES[i % len(SAMPLES)], folder / f"{i:02d}.png")
    return sorted(folder.glob("*.png"))


def on_terminal(argv, stdin=None, stdout=None, stderr=None, until=None, keys=b"", timeout=120, size=(100, 30)):
    """Run ``minivgg argv`` on a new pseudo-terminal; returns (exit status, what the terminal received).

    ``stdin``: bytes to pipe in instead of the terminal; ``stdout``/``stderr``: files to redirect them
    to; once ``until`` (bytes) has been received, ``keys`` are typed.
    """
    pipe = os.pipe() if stdin is not None else None
    pid, fd = pty.fork()
    if pid == 0:                                          # the child: its terminal is the pty
        if pipe:
            os.dup2(pipe[0], 0)
        for target, path in ((1, stdout), (2, stderr)):
            if path is not None:
                os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), target)
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        os.execvpe(MINIVGG[0], [*MINIVGG, *argv], {**env, "TERM": "xterm-256color"})
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))
    if pipe:
        os.close(pipe[0])
        os.write(pipe[1], stdin)
        os.close(pipe[1])
    received, typed, deadline = b"", False, time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if until is not None and not typed and until in received:
                time.sleep(0.5)
                os.write(fd, keys)
                typed = True
            if select.select([fd], [], [], 0.2)[0]:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:                           # the child closed the terminal: it ended
                    break
                if not chunk:
                    break
                received += chunk
        else:
            os.kill(pid, signal.SIGKILL)
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), received


def screen_lines(raw):
    """The lines a terminal shows for ``raw`` output: carriage returns overwrite, ``ESC [K`` erases."""
    lines, line, col = [], [], 0
    text = raw.decode(errors="replace")
    i = 0
    while i < len(text):
        if text.startswith(CLEAR_LINE[1:], i):
            del line[col:]
            i += len(CLEAR_LINE) - 1
            continue
        ch = text[i]
        if ch == "\r":
            col = 0
        elif ch == "\n":
            lines.append("".join(line))
            line, col = [], 0
        else:
            line[col:col + 1] = [ch]
            col += 1
        i += 1
    return [*lines, "".join(line)]


# ---------------------------------------------------------------- progress and results


def test_progress_is_cleared_before_each_result_and_keeps_its_eta():
    class Terminal(io.StringIO):
        def isatty(self):
            return True
    stream = Terminal()
    progress = Progress(stream)
    progress.update("predict", 1, 3)
    started = progress._started
    progress.clear()
    progress.problem("minivgg: error: bad.png: not an image")
    progress.update("predict", 2, 3)
    assert progress._started == started                     # one ETA over the whole run
    assert stream.getvalue().count(CLEAR_LINE) == 1         # cleared once: the problem line found it clean
    problem, drawn = screen_lines(stream.getvalue().encode())
    assert problem == "minivgg: error: bad.png: not an image" and drawn.startswith("predict [######")


def test_predict_on_a_terminal_prints_result_lines_free_of_progress_text(tmp_path):
    files = copies(tmp_path / "scans")
    code, raw = on_terminal(["predict", str(tmp_path / "scans"), "--batch-size", "1"])
    assert code == 0, raw
    shown = screen_lines(raw)
    results = [line for line in shown if line.startswith(str(tmp_path / "scans"))]
    assert len(results) == len(files)
    for line in results:
        assert "predict [" not in line and "ETA" not in line and line.rstrip().endswith(")")
    assert b"ETA" in raw                                     # the progress line was drawn meanwhile
    # Redirected, stdout gets the same result lines and nothing else.
    code, raw = on_terminal(["predict", str(tmp_path / "scans"), "--batch-size", "1"], stdout=tmp_path / "out.txt")
    written = (tmp_path / "out.txt").read_text().splitlines()
    assert code == 0 and written == [line.rstrip() for line in results]


def test_file_names_from_stdin(tmp_path):
    files = copies(tmp_path / "scans")
    run = subprocess.run(f"ls | {shlex.join(MINIVGG)} predict - --json", shell=True, cwd=tmp_path / "scans",
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert [json.loads(line)["file"] for line in run.stdout.splitlines()] == [f.name for f in files]
    names = b"\0".join(bytes(f) for f in files[:2])        # NUL-separated (find -print0, fd -0)
    run = subprocess.run([*MINIVGG, "predict", "-", files[2]], input=names, capture_output=True, timeout=300)
    assert run.returncode == 0 and len(run.stdout.splitlines()) == 3, run.stderr
    run = subprocess.run([*MINIVGG, "predict", "-"], input=b"", capture_output=True, timeout=300)
    assert run.returncode == 66 and b"no file names on stdin" in run.stderr


def test_folders_and_their_files_are_taken_once(tmp_path, capsys):
    """``minivgg predict dicoms/**/*`` names folders and the files inside them: each image once."""
    files = copies(tmp_path / "dicoms" / "a", 2) + copies(tmp_path / "dicoms" / "b", 2)
    (tmp_path / "link").symlink_to(tmp_path / "dicoms" / "b")
    named = [tmp_path / "dicoms", tmp_path / "dicoms" / "a", *files, tmp_path / "dicoms" / "b", tmp_path / "link",
             tmp_path / "link" / "00.png"]
    assert input_files(named) == files
    assert main(["predict", *map(str, named)]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 4


def test_a_dicom_without_a_suffix_is_found(tmp_path, capsys):
    """A PACS-style ``IM0001`` is found by its content (the ``DICM`` mark), in a folder and by name."""
    from PIL import Image

    from tests.test_edges import write_dicom
    folder = tmp_path / "pacs"
    folder.mkdir()
    write_dicom(folder / "IM0001", np.asarray(Image.open(SAMPLES[0])))
    (folder / "NOTES").write_text("not an image")
    assert input_files([folder]) == [folder / "IM0001"]
    assert main(["predict", str(folder)]) == 0
    assert capsys.readouterr().out.startswith(f"{folder / 'IM0001'}: ")


# ---------------------------------------------------------------- help and records


def test_bare_minivgg_shows_the_help_and_every_help_ends_with_examples(capsys):
    with pytest.raises(SystemExit) as stop:
        main([])
    out = capsys.readouterr().out
    assert stop.value.code == 0 and out.startswith("usage: minivgg") and "predict" in out and "examples:" in out
    commands = build_parser()._subparsers._group_actions[0].choices
    assert set(commands) == set(EXAMPLES) - {"minivgg"}
    for name in commands:
        with pytest.raises(SystemExit):
            main([name, "--help"])
        tail = capsys.readouterr().out.rstrip().split("examples:\n")[1].splitlines()
        assert 1 <= len(tail) <= 3 and all(line.startswith(f"  minivgg {name}") or "|" in line for line in tail)
    with pytest.raises(SystemExit) as stop:
        main(["predict"])                                    # a command without its inputs: still a usage error
    assert stop.value.code == 2


def test_json_records_carry_the_detectors_threshold(tmp_path, capsys):
    for threshold in (None, 3.5):
        save_model(tiny_model(threshold), tmp_path / "model.npz")
        assert main(["predict", str(SAMPLES[0]), "--model", str(tmp_path / "model.npz"), "--json"]) == 0
        record = json.loads(capsys.readouterr().out)
        assert record["ood_threshold"] == threshold
        if threshold is not None:
            assert record["in_distribution"] == (record["ood_score"] <= threshold)


# ---------------------------------------------------------------- the terminal app under redirections


QUIT = b"\x11"      # ctrl+q


@pytest.mark.parametrize("how", ["stderr to a log", "list on stdin"])
def test_tui_starts_on_the_terminal_when_stderr_or_stdin_is_redirected(tmp_path, how):
    files = copies(tmp_path / "scans", 2)
    save_model(tiny_model(), tmp_path / "model.npz")
    argv = ["tui", "--model", str(tmp_path / "model.npz"), "--out", str(tmp_path / "out")]
    if how == "stderr to a log":
        code, raw = on_terminal([*argv, str(files[0])], stderr=tmp_path / "log", until=b"predicted", keys=QUIT)
        assert (tmp_path / "log").read_bytes() == b""            # the screen went to the terminal, not the log
    else:
        names = "\n".join(map(str, files)).encode()
        code, raw = on_terminal([*argv, "-"], stdin=names, until=b"2 images", keys=QUIT)
    assert code == 0 and b"predicted" in raw, raw[-2000:]
