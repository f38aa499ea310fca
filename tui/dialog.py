"""The pop-ups' common shape: a modal screen with a footer of its own keys.

A modal screen is drawn over the main screen, whose footer would otherwise stay visible
below it listing keys that do nothing while the pop-up is open; each pop-up composes its
own :class:`~textual.widgets.Footer`, which lists the pop-up's keys.

A pop-up that opens an image does so inside the key's own handling (a *priority* binding
runs as the key arrives, before any key typed after it): the image is open and the
pop-up gone before the next key is read, so ``g Enter c`` typed in one go computes the
map of the image just chosen, never the previous one's.
"""

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import Footer


class Dialog(ModalScreen):
    """A pop-up: ``body()`` yields its widgets, and a footer shows its keys; Escape closes it."""

    BINDINGS = [Binding("escape", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        yield from self.body()
        yield Footer()

    def body(self) -> ComposeResult:
        raise NotImplementedError


class Chooser(Dialog):
    """A pop-up that opens a file: ``choose(path)`` calls ``open_path(path)`` and closes the pop-up at once."""

    def __init__(self, open_path):
        super().__init__()
        self.open_path = open_path

    def choose(self, path):
        self.open_path(path)
        self.dismiss()

