"""The course in docs/ and the README's code, executed: what a reader pastes must run.

* Each chapter (docs/NN-*.md) runs top to bottom, its Python blocks sharing one
  namespace, in a fresh working folder (where the chapter writes its figures).
* Each Python block of the README runs on its own, in a fresh namespace and folder:
  a reader pastes one block at a time.
* Each ``minivgg ...`` command line in the README parses with the real command-line
  parser (running them all would mean training for minutes; the ones that matter run in
  tests/test_cli.py and tests/test_training.py).
* Each chapter opens as a notebook with jupytext (``pip install -e ".[course]"``), its
  code cells exactly its Python blocks; skipped when jupytext is not installed.

A failure's traceback names the Markdown file and line.
"""

import importlib.util
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```", re.M | re.S)
CHAPTERS = sorted((ROOT / "docs").glob("[0-9][0-9]-*.md"))


def python_blocks(path):
    """``(first line number, code)`` of every fenced Python block in a Markdown file."""
    text = path.read_text()
    return [(text.count("\n", 0, m.start(1)) + 1, m.group(1)) for m in FENCE.finditer(text)]


def run_block(path, line, code, namespace):
    # Blank lines in front make the traceback's line numbers those of the Markdown file.
    exec(compile("\n" * (line - 1) + code, str(path), "exec"), namespace)


def test_there_is_a_course():
    assert len(CHAPTERS) >= 1 and all(python_blocks(c) for c in CHAPTERS)


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_runs_top_to_bottom(chapter, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__main__"}
    for line, code in python_blocks(chapter):
        run_block(chapter, line, code, namespace)


@pytest.mark.skipif(importlib.util.find_spec("jupytext") is None,
                    reason='jupytext is not installed (pip install -e ".[course]")')
@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_opens_as_a_notebook(chapter, tmp_path):
    """jupytext reads the chapter as a notebook whose code cells are its Python blocks, and writes a valid .ipynb."""
    import jupytext
    import nbformat
    notebook = jupytext.read(chapter)
    code = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    assert code == [block.rstrip("\n") for _, block in python_blocks(chapter)]
    assert any(cell.cell_type == "markdown" and cell.source.startswith("# Chapter") for cell in notebook.cells)
    jupytext.write(notebook, tmp_path / f"{chapter.stem}.ipynb")
    nbformat.validate(nbformat.read(tmp_path / f"{chapter.stem}.ipynb", as_version=4))


README_BLOCKS = python_blocks(ROOT / "README.md")


@pytest.mark.parametrize("line,code", README_BLOCKS, ids=[f"README.md:{line}" for line, _ in README_BLOCKS])
def test_readme_block_runs_on_its_own(line, code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_block(ROOT / "README.md", line, code, {"__name__": "__main__"})


def readme_commands():
    text = (ROOT / "README.md").read_text()
    found = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip().split("  #")[0].strip()
        if line.startswith("minivgg ") and not line.startswith("minivgg tui"):
            found.append((number, line))
    return found


@pytest.mark.parametrize("line,command", readme_commands(), ids=[f"README.md:{n}" for n, _ in readme_commands()])
def test_readme_commands_parse(line, command):
    from minivgg.cli import build_parser
    words = []
    for word in shlex.split(command)[1:]:
        if word in (">", "|", "2>"):                # the shell's part of the line: redirections and pipes
            break
        if word != "...":
            words.append(word)
    build_parser().parse_args(words)            # argparse exits (a failure) on an unknown option
