"""The file picker of ``o``: a path box that completes from the file system, over a tree of folders and images.

Type a path (``~`` and paths relative to the folder shown work; Tab or Right accepts the
completion, Enter opens an image or shows a folder), or walk the tree: Enter opens an
image or unfolds a folder, Backspace shows the parent folder, so the picker can reach
any folder from wherever it started.
"""

import os
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.markup import escape
from textual.suggester import Suggester
from textual.widgets import DirectoryTree, Input, Label

from minivgg.imaging.imageio import is_image_path
from minivgg.text import printable
from minivgg.tui.dialog import Chooser


class ImageTree(DirectoryTree):
    """A directory tree without the files the model cannot read."""

    def filter_paths(self, paths):
        return [p for p in paths if p.is_dir() or is_image_path(p)]


class PathSuggester(Suggester):
    """Completes a path being typed: the first folder (with a ``/``) or image file whose name continues it.

    ``base()`` gives the folder relative paths start from. Hidden entries are offered only
    once a ``.`` is typed.
    """

    def __init__(self, base):
        super().__init__(use_cache=False, case_sensitive=True)
        self.base = base

    async def get_suggestion(self, value):
        folder, prefix = os.path.split(os.path.expanduser(value))
        where = Path(self.base(), folder)
        try:
            names = sorted(os.listdir(where))
        except OSError:
            return None
        for name in names:
            if not name.startswith(prefix) or (name.startswith(".") and not prefix.startswith(".")):
                continue
            if (where / name).is_dir():
                return value + name[len(prefix):] + "/"
            if is_image_path(where / name):
                return value + name[len(prefix):]
        return None


class PathInput(Input):
    """An input whose Tab accepts the completion on offer (and moves on when there is none)."""

    BINDINGS = [Binding("tab", "complete", "Complete", show=False)]

    def action_complete(self):
        if self._suggestion and self.cursor_at_end:
            self.action_cursor_right()              # Textual's own way to accept the suggestion
        else:
            self.screen.focus_next()


class ImagePicker(Chooser):
    """Pick an image, starting in the folder ``start``; ``open_path(path)`` opens it."""

    BINDINGS = [Binding("enter", "enter", "Open", priority=True),
                Binding("backspace", "up", "Parent folder")]

    def __init__(self, start, open_path):
        super().__init__(open_path)
        self.start = Path(start)

    def body(self) -> ComposeResult:
        with Vertical(id="picker"):
            yield PathInput(placeholder="a path: Tab completes, Enter opens", id="path",
                            suggester=PathSuggester(lambda: self.query_one(ImageTree).path))
            yield Label(self.where(self.start), id="where")
            yield ImageTree(self.start)

    def on_mount(self):
        self.query_one(ImageTree).focus()

    @staticmethod
    def where(folder):
        return f"in {escape(printable(Path(folder).resolve()))}  (Backspace: parent folder)"

    def show_folder(self, folder):
        tree = self.query_one(ImageTree)
        tree.path = folder
        self.query_one("#where", Label).update(self.where(folder))

    def action_up(self):
        folder = Path(self.query_one(ImageTree).path).resolve()
        self.show_folder(folder.parent)

    def action_enter(self):
        """Enter, as it is pressed: open the typed path or the image under the tree's cursor, or unfold a folder."""
        tree = self.query_one(ImageTree)
        if isinstance(self.focused, Input):
            self.open_typed(self.focused.value)
        elif tree.cursor_node is not None and tree.cursor_node.data is not None:
            path = Path(tree.cursor_node.data.path)
            if path.is_dir():
                tree.action_select_cursor()
            else:
                self.choose(path)

    def open_typed(self, text):
        """Open the image at the typed path, or show the typed folder (a relative path starts at the one shown)."""
        if not text:
            return
        path = Path(self.query_one(ImageTree).path) / os.path.expanduser(text)   # an absolute path replaces it
        if path.is_dir():
            self.show_folder(path)
            self.query_one("#path", Input).value = ""
        elif path.is_file():
            self.choose(path)
        else:
            self.notify(f"{printable(path)}: no such file or folder", severity="warning", markup=False)

    def on_directory_tree_file_selected(self, event):
        self.choose(Path(event.path))
