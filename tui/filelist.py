"""The file list of folder mode: every image with its prediction as it arrives, in the order the user picks.

Predictions come in from a background worker (:meth:`FileList.set_found`); until then a row
shows ``…``. The list is sorted by name, by the probability of the class of interest (highest
first) or by out-of-distribution score (most unusual first); rows not predicted yet, and
unreadable files (``✗``), go last. An out-of-distribution image is marked ``⚠``.
Choosing a row (Enter, a click) posts :class:`FileList.Chosen`.
"""

import os

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Label, OptionList

from minivgg.text import format_probability, printable


class FileList(Vertical):
    """The images ``files`` (paths), scored for class ``positive`` (an index into the model's classes).

    Parameters
    ----------
    files : list of Path
    class_name : the class whose probability is shown and sorted on
    positive : its index
    ood : whether the model has an out-of-distribution detector (else that order is not offered)
    """

    class Chosen(Message):
        """The user chose the image at ``path``."""

        def __init__(self, path):
            super().__init__()
            self.path = path

    def __init__(self, files, class_name, positive, ood, **kwargs):
        super().__init__(**kwargs)
        self.files, self.class_name, self.positive = list(files), class_name, positive
        self.sorts = ("name", "probability", "ood") if ood else ("name", "probability")
        self.sort = "name"
        self.found = {}                 # {path: Assessment of one image, or an ImageError}
        self.current = None
        common = os.path.commonpath([str(f.parent) for f in self.files]) if self.files else ""
        self.names = {f: printable(os.path.relpath(f, common) if common else f) for f in self.files}
        self.order = sorted(self.files, key=self.sort_key)

    def compose(self) -> ComposeResult:
        yield Label(self.title(), id="files-title")
        yield OptionList(*[self.row(f) for f in self.order], id="file-rows")

    # ------------------------------------------------------------------ contents

    def set_found(self, pairs):
        """Record ``(path, Assessment or ImageError)`` pairs and redraw (re-sorting when sorted on a score)."""
        self.found.update(pairs)
        if self.sort == "name":
            rows = self.query_one("#file-rows", OptionList)
            index = {f: i for i, f in enumerate(self.order)}
            for path, _ in pairs:
                rows.replace_option_prompt_at_index(index[path], self.row(path))
        else:
            self.resort()
        self.query_one("#files-title", Label).update(self.title())

    def cycle_sort(self):
        """Sort by the next order (name, probability, out-of-distribution score); returns its description."""
        self.sort = self.sorts[(self.sorts.index(self.sort) + 1) % len(self.sorts)]
        self.resort()
        self.query_one("#files-title", Label).update(self.title())
        return self.sort_words()

    def sort_key(self, path):
        """Where ``path`` goes in the order chosen: by score (highest first; not yet known, last), then by name."""
        found = self.found.get(path)
        if self.sort == "name":
            return (0, 0.0, self.names[path])
        if found is None or isinstance(found, Exception):
            return (1, 0.0, self.names[path])
        score = found.probs[self.positive] if self.sort == "probability" else found.ood_score
        return (0, -float(score), self.names[path])

    def resort(self):
        self.order = sorted(self.files, key=self.sort_key)
        rows = self.query_one("#file-rows", OptionList)
        rows.set_options([self.row(f) for f in self.order])
        self.mark(self.current)

    def mark(self, path):
        """Highlight ``path``'s row (the image on screen), scrolled into view."""
        self.current = path
        if path in self.order:
            rows = self.query_one("#file-rows", OptionList)
            rows.highlighted = self.order.index(path)
            self.call_after_refresh(rows.scroll_to_highlight)    # once the new rows are laid out

    def on_resize(self):
        # Laid out at last (or again, in another arrangement): the image on screen comes into view.
        self.query_one("#file-rows", OptionList).scroll_to_highlight()

    def step(self, steps, start=None):
        """The next image ``steps`` (1 or -1) rows on from ``start`` (default: the one on screen), in the shown order.

        Files found unreadable are passed over; None past either end of the list.
        """
        start = self.current if start is None else start
        i = self.order.index(start) if start in self.order else (-1 if steps > 0 else len(self.order))
        while 0 <= (i := i + steps) < len(self.order):
            if not isinstance(self.found.get(self.order[i]), Exception):
                return self.order[i]
        return None

    # ------------------------------------------------------------------ text

    def sort_words(self, short=False):
        """The order, in words: in full for the status line, ``short`` for the list's title."""
        if short:
            return {"name": "name", "probability": f"p({self.class_name}) ↓", "ood": "OOD score ↓"}[self.sort]
        return {"name": "name", "probability": f"p({self.class_name}), highest first",
                "ood": "out-of-distribution score, most unusual first"}[self.sort]

    def title(self):
        done = sum(1 for f in self.files if f in self.found)
        counted = "" if done == len(self.files) else f", {done} predicted"
        return f"{len(self.files)} images{counted}, by {self.sort_words(short=True)} (r)"

    def row(self, path):
        found = self.found.get(path)
        if found is None:
            mark, shown = " ", "…"
        elif isinstance(found, Exception):
            mark, shown = "✗", "error"
        else:
            mark, shown = "⚠" if found.flagged else " ", format_probability(found.probs[self.positive])
        # 8 characters hold every probability format_probability writes (0.999999), so the names line up.
        return Text.assemble((mark, "b red"), f" {shown:<8} ", self.names[path], no_wrap=True, overflow="ellipsis")

    def on_option_list_option_selected(self, event):
        event.stop()
        self.post_message(self.Chosen(self.order[event.option_index]))

    @staticmethod
    def positive_class(class_names):
        """The class whose probability the list shows: RA when the model has it, else the last class."""
        return class_names.index("RA") if "RA" in class_names else len(class_names) - 1

