"""The file picker of ``o``: a directory tree that lists only folders and image files."""

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DirectoryTree, Label

from minivgg.imaging.imageio import is_image_path


class ImageTree(DirectoryTree):
    """A directory tree without the files the model cannot read."""

    def filter_paths(self, paths):
        return [p for p in paths if p.is_dir() or is_image_path(p)]


class ImagePicker(ModalScreen):
    """Pick an image under the folder ``start``; Enter on a file dismisses the screen with its path."""

    BINDINGS = [Binding("escape", "dismiss", "Close")]

    def __init__(self, start):
        super().__init__()
        self.start = start

    def compose(self) -> ComposeResult:
        with Vertical(id="picker"):
            yield Label("Open an image (Enter), Esc to close")
            yield ImageTree(self.start)

    def on_directory_tree_file_selected(self, event):
        self.dismiss(Path(event.path))
