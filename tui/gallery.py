"""The sample list of ``g``: the phantoms that ship with minivgg."""

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList


class Gallery(ModalScreen):
    """Choose one of ``samples`` (paths under a folder named after the true class); dismisses with its path."""

    BINDINGS = [Binding("escape", "dismiss", "Close")]

    def __init__(self, samples):
        super().__init__()
        self.samples = samples

    def compose(self) -> ComposeResult:
        with Vertical(id="gallery"):
            yield Label("Bundled sample phantoms (true class / file)")
            yield OptionList(*[f"{p.parent.name} / {p.name}" for p in self.samples])

    def on_option_list_option_selected(self, event):
        self.dismiss(self.samples[event.option_index])
