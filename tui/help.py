"""The help screen of ``?``: the app's keys, from its bindings, and how to read the pictures."""

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.keys import format_key
from textual.widgets import Markdown

from minivgg.tui.dialog import Dialog

INTRO = """\
# minivgg: terminal app

Classifies a hand radiograph with a VGG8 and explains the prediction.
"""

READING = """\
The class-activation map: warm colours = strong evidence *for* the explained class.
SHAP: red pushes towards the class, blue against it; faded regions have no established sign.
The SHAP table lists the regions by the size of their effect, with +-2 standard-error bars;
highlighting a row outlines its region on the pictures. Without colour (`NO_COLOR`), SHAP's
sign is a pattern: a grid where a region pushes towards the class, lines where against.
The model's output is not a diagnosis. Read the model's intended use (under the verdict).
A red **out of distribution** warning means the image is not like the model's training
images: the model was not trained on images like it, and its prediction is not reliable.
"""


def key_text(key):
    """A key as the help spells it: ``?`` for question_mark, ``ctrl+q`` in full (the footer abbreviates it)."""
    return ", ".join("+".join([*modifiers, format_key(name)])
                     for *modifiers, name in (k.split("+") for k in key.split(",")))


def key_table(rows):
    """A Markdown table of ``(key, what it does)`` rows."""
    return "\n".join(["| key | action |", "|---|---|", *(f"| `{key_text(k)}` | {text} |" for k, text in rows)])


class HelpScreen(Dialog):
    """The keys of ``bindings`` (each Binding's tooltip says what it does), then how to read the maps."""

    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def __init__(self, bindings):
        super().__init__()
        self.app_bindings = bindings

    def body(self) -> ComposeResult:
        rows = [(b.key, b.tooltip) for b in self.app_bindings]
        rows.append((self.app.COMMAND_PALETTE_BINDING, "command palette: every action above by name"))
        with VerticalScroll(id="help"):
            yield Markdown("\n".join([INTRO, key_table(rows), "", READING]))
