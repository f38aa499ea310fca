"""SHAP as numbers: the regions by the size of their effect, each value with its +-2 standard-error bar.

One row per region, largest |value| first::

     7  +0.214 ±0.031          │███████░░
    12  -0.052 ±0.040       ░░░│░

The bar grows from a zero axis (right: towards the class, red; left: against, blue);
``█`` is where the value is certain at 2 standard errors, ``░`` the rest of the +-2 SE
interval, so a bar that is all ``░`` and crosses the axis has no established sign. The
sign is also written, so the table reads the same without colour. Rows whose sign the
picture shows faded (outside the simultaneous 95% band, :attr:`SHAPResult.significant`)
are dim here too. Highlighting a row outlines its region on the pictures.
"""

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Label, OptionList

from minivgg.text import format_probability

SPREAD_SE = 2                  # the bars' half-width in standard errors
FOR, AGAINST = "red", "blue"   # SHAP's colours in the pictures (RdBu_r)
MAX_HALF = 20                  # the most cells a bar's half takes (a wider one only spreads the same numbers)


def bar(value, spread, scale, half):
    """The two halves of a row's bar, ``half`` cells each (against, for), as strings.

    A cell is ``█`` where the interval ``value +- spread`` lies wholly on the value's side
    of zero out to that cell, ``░`` where the interval covers it otherwise, blank beyond;
    ``scale`` is the value that fills a half.
    """
    lo, hi = value - spread, value + spread
    sure_lo, sure_hi = (0.0, lo) if lo > 0 else (hi, 0.0) if hi < 0 else (0.0, 0.0)
    unit = scale / half
    halves = []
    for side in (-1, 1):
        cells = []
        for j in range(half):
            m = side * (j + 0.5) * unit
            cells.append("█" if sure_lo < m < sure_hi else "░" if lo <= m <= hi else " ")
        halves.append("".join(reversed(cells)) if side < 0 else "".join(cells))
    return halves[0], halves[1]


class ShapTable(Vertical):
    """The regions of a SHAP estimate with their values and error bars (``show``); posts :class:`RegionSelected`."""

    class RegionSelected(Message):
        """The user highlighted a region's row (``region``: its label in ``SHAPResult.regions``)."""

        def __init__(self, region):
            super().__init__()
            self.region = region

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.result, self.order = None, []

    def compose(self) -> ComposeResult:
        yield Label("SHAP regions: s computes them", id="shap-title")
        yield OptionList(id="shap-rows")

    def show(self, result, class_name):
        """Rows for ``result`` (a :class:`SHAPResult`, possibly a round's), keeping the highlighted region."""
        rows = self.query_one("#shap-rows", OptionList)
        previous = self.order[rows.highlighted] if self.result is not None and rows.highlighted is not None else None
        self.result = result
        self.remove_class("-empty")
        self.order = [int(r) for r in np.argsort(-np.abs(result.values), kind="stable")]
        calls = "exact" if result.exact else f"{result.n_evaluations}/{result.budget} calls"
        shown = format_probability if result.output == "probability" else "{:.3g}".format
        self.query_one("#shap-title", Label).update(
            f"SHAP for {class_name}: {shown(result.base_value)} hidden → {shown(result.fx)} ({calls})\n"
            f"±{SPREAD_SE} SE; dim: sign not established")
        self.draw()
        if previous is not None:
            rows.highlighted = self.order.index(previous)

    def clear(self):
        """No SHAP for the image on screen: the table is hidden (its room goes to the file list)."""
        self.result, self.order = None, []
        self.add_class("-empty")
        self.query_one("#shap-title", Label).update("SHAP regions: s computes them")
        self.query_one("#shap-rows", OptionList).clear_options()

    def on_resize(self):
        if self.result is not None:
            self.draw()

    def draw(self):
        r = self.result
        spread = SPREAD_SE * r.stderr
        finite = spread[np.isfinite(spread)]
        scale = max(float(np.max(np.abs(r.values))) + (float(finite.max()) if finite.size else 0.0), 1e-12)
        # As many decimals as show the largest value with two significant digits (at least 3).
        digits = max(3, 1 - int(np.floor(np.log10(scale))))
        numbers = 3 + 2 * (digits + 4)            # the region, the value and its +- before the bar
        # The width less the axis and room for a scrollbar, which appears once the rows outnumber the lines.
        half = min(MAX_HALF, max(2, (self.content_size.width - numbers - 4) // 2))
        rows = self.query_one("#shap-rows", OptionList)
        highlighted = rows.highlighted
        rows.set_options([self.row(i, r.values[i], spread[i], scale, half, r.significant[i], digits)
                          for i in self.order])
        if highlighted is not None and highlighted < len(self.order):
            rows.highlighted = highlighted

    @staticmethod
    def row(region, value, spread, scale, half, significant, digits):
        against, towards = bar(value, min(spread, 2 * scale), scale, half)
        error = f"±{spread:.{digits}f}" if np.isfinite(spread) else "±inf"
        text = Text.assemble(f"{region:>3} ", (f"{value:+.{digits}f}", FOR if value > 0 else AGAINST),
                             f" {error:<{digits + 3}} ", (against, AGAINST), "│", (towards, FOR), no_wrap=True)
        if not significant:
            text.stylize("dim")
        return text

    def on_option_list_option_highlighted(self, event):
        event.stop()
        if self.result is not None and event.option_index is not None:
            self.post_message(self.RegionSelected(self.order[event.option_index]))
