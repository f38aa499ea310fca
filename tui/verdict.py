"""The verdict: each class's probability as a bar, the predicted class, and any out-of-distribution warning.

The bars take the width there is; the warning wraps rather than being cut, so it is read
whole at 80 columns too.
"""

from textual.widgets import Static

from minivgg.text import NOT_TRAINED_ON_THIS, format_probability, printable

WAITING = "Open a radiograph: o (file), g (samples), ? (help)"


class Verdict(Static):
    """What the model says about the image on screen (``show``), redrawn to fit its width."""

    def __init__(self, class_names, cam_name, **kwargs):
        super().__init__(WAITING, **kwargs)
        self.class_names, self.cam_name = [printable(c) for c in class_names], cam_name
        self.found = None

    def show(self, found):
        """Draw ``found`` (one image's Assessment), or the waiting hint for None (a prediction running)."""
        self.found = found
        self.update(self.text())

    def on_resize(self):
        if self.found is not None:
            self.update(self.text())

    def text(self):
        if self.found is None:
            return "[dim]predicting ...[/]"
        probs = self.found.probs
        best = int(probs.argmax())
        width = max(len(c) for c in self.class_names)
        bar_width = max(4, min(40, self.content_size.width - width - 11))
        lines = []
        for i, (name, p) in enumerate(zip(self.class_names, probs)):
            style = "b green" if i == best else "dim"
            lines.append(f"[{style}]{name:>{width}} {'█' * round(p * bar_width):<{bar_width}} "
                         f"{format_probability(p):>8}[/]")
        lines.append(f"predicted: [b]{self.class_names[best]}[/]  (c {self.cam_name}, s SHAP, w save)")
        if self.found.flagged:
            lines.append(f"[b red]⚠ OUT OF DISTRIBUTION:[/] [red]{NOT_TRAINED_ON_THIS}[/]")
        return "\n".join(lines)
