"""The sample list of ``g``: the phantoms that ship with minivgg."""

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Label, OptionList

from minivgg.tui.dialog import Chooser


class Gallery(Chooser):
    """Choose one of ``samples`` (paths under a folder named after the true class) to open with ``open_path``.

    Enter opens the highlighted sample as soon as it is pressed, even before the list is
    drawn (see :mod:`minivgg.tui.dialog`): the first sample is highlighted from the start.
    """

    BINDINGS = [Binding("enter", "open_highlighted", "Open", priority=True)]

    def __init__(self, samples, open_path):
        super().__init__(open_path)
        self.samples = samples
        self.highlighted = 0

    def body(self) -> ComposeResult:
        with Vertical(id="gallery"):
            yield Label("Bundled sample phantoms (true class / file)")
            yield OptionList(*[f"{p.parent.name} / {p.name}" for p in self.samples])

    def on_option_list_option_highlighted(self, event):
        self.highlighted = event.option_index

    def action_open_highlighted(self):
        self.choose(self.samples[self.highlighted])

    def on_option_list_option_selected(self, event):
        self.choose(self.samples[event.option_index])
