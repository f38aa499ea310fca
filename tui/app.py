"""``minivgg tui``: open a radiograph, see the class probabilities and the heatmaps, save them.

Layout (``app.tcss``)::

    +-------------------------------------------------------------+
    | radiograph        | Grad-CAM           | SHAP               |
    | (half-block or    |                    |                    |
    |  graphics)        |                    |                    |
    +-------------------------------------------------------------+
    | probabilities (bars)           | model card, status,        |
    |                                | progress                   |
    +-------------------------------------------------------------+
    | footer: key bindings                                        |

The app computes and saves only through the model's own operations
(:class:`~minivgg.deploy.classifier.Classifier`), the ones ``minivgg explain`` uses:
``read`` a file, ``assess`` it, ``explain_rounds`` it with the app's
:class:`~minivgg.explain.settings.ExplainSettings` (one map per key: ``c`` the
class-activation map, ``s`` Kernel-SHAP), and ``save_explanation`` of both maps under the
name the command line gives the file. A picture saved here is the one the command line
writes, with the same stamp.

Prediction, the maps and saving run in background threads, so the interface never
freezes (matplotlib takes about a second per save); SHAP redraws after each round of
model calls, reports progress and can be stopped, keeping its latest map. Widgets are
only touched from the interface thread (``call_from_thread``).

The model's name and intended use (from its card) are always on screen, and an image the
model's out-of-distribution detector flags gets a red warning and a red frame: the model
was not trained on images like it.

Every result belongs to the image it was computed for: opening an image makes a new
:class:`Opened` record and cancels the workers of the previous one, and a worker hands
its result back together with the record it started from, so a late result for an
image no longer on screen is dropped. Saving writes only the current record's maps,
under the current record's name.
"""

import threading
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.markup import escape
from textual.widgets import Footer, Header, ProgressBar, Static
from textual.worker import get_current_worker

from minivgg.deploy.classifier import Assessment, Explanation
from minivgg.errors import ImageError
from minivgg.explain.gradcam import METHODS as CAM_NAMES
from minivgg.explain.render import gradcam_overlay, shap_overlay
from minivgg.explain.settings import ExplainSettings
from minivgg.files import distinct_stems, prepare_output_dir
from minivgg.text import NOT_TRAINED_ON_THIS, format_probability
from minivgg.tui.gallery import Gallery
from minivgg.tui.help import HelpScreen
from minivgg.tui.layers import LayersScreen
from minivgg.tui.picker import ImagePicker
from minivgg.tui.pictures import picture_widget_class, to_pil

# The worker groups whose results belong to one image: opening another cancels them.
# (Saving is not among them: a save in flight writes the image it was started for.)
COMPUTATIONS = ("predict", "gradcam", "shap")
# Actions of bindings that Textual's own command palette already offers.
PALETTE_HAS = {"quit"}


class Cancelled(Exception):
    """Raised inside a worker when the user cancelled it."""


@dataclass(eq=False)
class Opened:
    """One opened image and what has been computed for it (compared by identity).

    Attributes
    ----------
    path : Path, the file
    x : (3, S, S) the model input (``model.read``)
    gray : (S, S) what the model saw, for display
    found : Assessment of ``x`` (one image's), or None while the prediction runs
    cam_explanation : Explanation holding the class-activation map, or None
    shap_explanation : Explanation holding the latest Kernel-SHAP estimate, or None
    shap_done : whether that estimate is the finished one (not a round's, nor a stopped run's)
    """
    path: Path
    x: np.ndarray
    gray: np.ndarray
    found: Assessment = None
    cam_explanation: Explanation = None
    shap_explanation: Explanation = None
    shap_done: bool = False

    @property
    def probs(self):
        """(K,) the class probabilities, or None while the prediction runs."""
        return None if self.found is None else self.found.probs

    @property
    def cam(self):
        """(S, S) the normalised class-activation map, or None."""
        return None if self.cam_explanation is None else self.cam_explanation.cam

    @property
    def shap(self):
        """The latest :class:`~minivgg.explain.kernelshap.SHAPResult`, or None."""
        return None if self.shap_explanation is None else self.shap_explanation.shap

    @property
    def flagged(self):
        """True when the model's detector found the image unlike its training images."""
        return self.found is not None and self.found.flagged

    def target(self, model):
        """The predicted class; runs the model while the prediction is not back (so never on the interface thread)."""
        found = self.found if self.found is not None else model.assess(self.x[None])[0]
        return int(found.probs.argmax())

    def explanation(self):
        """Every map computed so far as one :class:`Explanation` (what saving writes), or None."""
        cam, shap = self.cam_explanation, self.shap_explanation
        if cam is None or shap is None:
            return shap if cam is None else cam
        return cam.merged(shap)


class MiniVGGApp(App):
    """The minivgg terminal app.

    Parameters
    ----------
    model : Classifier
    image : path of an image to open at start, optional
    out_dir : the folder ``w`` saves to (created when saving)
    samples : paths of the sample images ``g`` offers
    graphics : "auto" (a terminal graphics protocol when the terminal has one) or "halfcell"
    settings : ExplainSettings of both maps; each key computes one (``method`` is replaced)
    """

    TITLE = "minivgg"
    SUB_TITLE = "VGG8 hand-radiograph classifier"
    CSS_PATH = "app.tcss"
    # The one list of the app's actions: the footer shows the descriptions, and the help
    # screen's key table and the command palette are built from it (the tooltips).
    BINDINGS = [
        Binding("o", "open", "Open", tooltip="open an image file (file picker, images only)"),
        Binding("g", "gallery", "Samples", tooltip="open one of the bundled sample phantoms"),
        Binding("c", "gradcam", "Grad-CAM", tooltip="compute Grad-CAM, or HiResCAM with --cam hirescam "
                                                    "(where a deep conv layer with maps of at least 14x14 looks)"),
        Binding("s", "shap", "SHAP", tooltip="compute Kernel-SHAP (which regions push towards the class)"),
        Binding("x", "cancel", "Cancel", tooltip="cancel a running computation (SHAP keeps its latest map)"),
        Binding("w", "save", "Save", tooltip="write the heatmaps and the combined figure to the output folder"),
        Binding("l", "layers", "Layers", tooltip="layers: what each conv block sees (its feature maps)"),
        Binding("question_mark", "help", "Help", tooltip="show the keys and how to read the pictures"),
        Binding("ctrl+q", "quit", "Quit", tooltip="quit"),
    ]

    def __init__(self, model, image=None, out_dir="minivgg-output", samples=(), graphics="auto",
                 settings=ExplainSettings()):
        super().__init__()
        self.model = model
        self.start_image = Path(image) if image else None
        self.out_dir = Path(out_dir)
        self.samples = list(samples)
        self.picture_class = picture_widget_class(graphics)
        self.settings = settings
        self.current = None                 # the Opened image on screen
        self.saving = threading.Lock()      # matplotlib's pyplot is not thread-safe: one save at a time

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="pictures"):
            for key, title in (("image", "radiograph"), ("gradcam", CAM_NAMES[self.settings.cam]), ("shap", "SHAP")):
                with Vertical(classes="panel", id=f"panel-{key}") as panel:
                    panel.border_title = title
                    yield self.picture_class(None, id=f"pic-{key}", classes="picture")
        with Horizontal(id="bottom"):
            yield Static("Open a radiograph: o (file), g (samples), ? (help)", id="probs")
            with Vertical(id="status-box"):
                intended = (self.model.card or {}).get("intended_use", "not known (a model file without a card)")
                yield Static(f"model: {self.model.name}\nintended use: {intended}", id="model-card", markup=False)
                yield Static("ready", id="status")
                yield ProgressBar(total=100, show_eta=False, id="progress")
        yield Footer()

    def on_mount(self):
        if self.start_image:
            self.open_image(self.start_image)

    def get_system_commands(self, screen):
        yield from super().get_system_commands(screen)
        for binding in self.BINDINGS:
            if binding.action not in PALETTE_HAS:
                yield SystemCommand(binding.description, binding.tooltip, getattr(self, f"action_{binding.action}"))

    def set_status(self, text):
        self.query_one("#status", Static).update(text)

    def set_progress(self, done, total):
        self.query_one("#progress", ProgressBar).update(total=total, progress=done)

    def show(self, key, array):
        self.query_one(f"#pic-{key}").image = to_pil(array)

    def show_error(self, title, error):
        """Say what went wrong, in the status line and a notification; the app stays usable."""
        self.set_status(f"[b red]error:[/] {escape(str(error))}")
        self.notify(str(error), title=title, severity="error", markup=False)

    # ------------------------------------------------------------------ opening and predicting

    def open_image(self, path):
        """Show the image at ``path`` and start predicting; an unreadable file leaves the one on screen."""
        path = Path(path)
        try:
            x = self.model.read(path)           # reading and preprocessing is quick: no worker needed
        except ImageError as e:
            self.show_error("Cannot open", e)
            return
        for group in COMPUTATIONS:              # their results would be for the old image
            self.workers.cancel_group(self, group)
        self.current = item = Opened(path, x, self.model.display(x))
        self.show_flag(False)
        self.query_one("#pic-gradcam").image = None
        self.query_one("#pic-shap").image = None
        self.set_progress(0, 100)
        self.show("image", item.gray)
        self.sub_title = str(path)
        self.set_status(f"predicting {escape(path.name)} ...")
        self.predict(item)

    @work(thread=True, exclusive=True, exit_on_error=False, group="predict")
    def predict(self, item):
        """(worker) The model's probabilities and out-of-distribution verdict for ``item``."""
        self.call_from_thread(self.show_probabilities, item, self.model.assess(item.x[None])[0])

    def show_probabilities(self, item, found):
        """Keep ``item``'s assessment; while it is on screen, draw the bars and any out-of-distribution warning."""
        item.found = found
        if item is not self.current:
            return
        best = int(found.probs.argmax())
        lines = []
        for i, (name, p) in enumerate(zip(self.model.class_names, found.probs)):
            bar = "█" * int(round(p * 30))
            style = "b green" if i == best else "dim"
            lines.append(f"[{style}]{name:>12} {bar:<30} {format_probability(p):>8}[/]")
        lines.append(f"predicted: [b]{self.model.class_names[best]}[/]  (c: Grad-CAM, s: SHAP, w: save)")
        if item.flagged:
            lines.append(f"[b red]⚠ OUT OF DISTRIBUTION:[/] [red]{NOT_TRAINED_ON_THIS}[/]")
        self.query_one("#probs", Static).update("\n".join(lines))
        self.show_flag(item.flagged)
        self.set_status(f"{escape(item.path.name)}: predicted {self.model.class_names[best]}"
                        + (" (out of distribution)" if item.flagged else ""))

    def show_flag(self, flagged):
        """Frame the radiograph in red, titled, while the image on screen is out of distribution."""
        panel = self.query_one("#panel-image")
        panel.set_class(flagged, "flagged")
        panel.border_subtitle = "OUT OF DISTRIBUTION" if flagged else ""

    def _need_image(self):
        if self.current is None:
            self.notify("Open an image first (o or g)", severity="warning")
            return True
        return False

    # ------------------------------------------------------------------ actions

    def action_open(self):
        start = self.current.path.parent if self.current else Path.cwd()
        self.push_screen(ImagePicker(start), lambda p: p and self.open_image(p))

    def action_gallery(self):
        if not self.samples:
            self.notify("No bundled samples in this installation", severity="warning")
            return
        self.push_screen(Gallery(self.samples), lambda p: p and self.open_image(p))

    def action_help(self):
        self.push_screen(HelpScreen(self.BINDINGS))

    def action_layers(self):
        if not self._need_image():
            self.push_screen(LayersScreen(self.model, self.current.x, self.picture_class))

    def action_gradcam(self):
        if not self._need_image():
            self.set_status(f"{CAM_NAMES[self.settings.cam]}: computing ...")
            self.gradcam(self.current)

    def action_shap(self):
        if not self._need_image():
            self.set_status("SHAP: computing ... (x cancels)")
            self.set_progress(0, 100)
            self.shap(self.current)

    def action_cancel(self):
        running = [w for w in self.workers if w.group in ("gradcam", "shap") and w.is_running]
        for w in running:
            w.cancel()
        self.set_status("cancelled" if running else "nothing to cancel")

    # ------------------------------------------------------------------ explaining

    def explanations(self, item, method, progress=None):
        """``model.explain_rounds`` of ``item`` computing only ``method``'s map (call it in a worker).

        While the prediction is still running, ``explain_rounds`` predicts the target class
        itself, in the worker that calls it.
        """
        return self.model.explain_rounds(item.x, replace(self.settings, method=method), found=item.found,
                                         path=item.path, progress=progress)

    @work(thread=True, exclusive=True, exit_on_error=False, group="gradcam")
    def gradcam(self, item):
        """(worker) The class-activation map of ``item``: ``explain_rounds`` yields it once."""
        for explanation in self.explanations(item, "gradcam"):
            if not get_current_worker().is_cancelled:       # x pressed during the pass: the user gave up on it
                self.call_from_thread(self.show_gradcam, item, explanation)

    def show_gradcam(self, item, explanation):
        """Keep ``item``'s class-activation map; while it is on screen, draw it."""
        item.cam_explanation = explanation
        if item is not self.current:
            return
        self.show("gradcam", gradcam_overlay(item.gray, explanation.cam))
        notes = explanation.notes
        self.set_status(f"{explanation.cam_name} done" + (f" ({notes[0]})" if notes else ""))

    @work(thread=True, exclusive=True, exit_on_error=False, group="shap")
    def shap(self, item):
        """(worker) Kernel-SHAP in rounds: the panel shows each round's estimate; x keeps the latest one."""
        worker = get_current_worker()

        def progress(done, total):
            # Called between batches of model calls: the one place a running Kernel-SHAP can be stopped.
            if worker.is_cancelled:
                raise Cancelled()
            self.call_from_thread(self.show_progress, item, done, total)
        explanation, state = None, "done"
        try:
            for explanation in self.explanations(item, "shap", progress):
                self.call_from_thread(self.show_shap, item, explanation, "round")
        except Cancelled:
            state = "stopped"
        if explanation is not None:
            self.call_from_thread(self.show_shap, item, explanation, state)

    def show_progress(self, item, done, total):
        if item is self.current:
            self.set_progress(done, total)

    def show_shap(self, item, explanation, state):
        """Draw a SHAP estimate of ``item``: a round's (``state`` "round"), or the last ("done", "stopped")."""
        item.shap_explanation, item.shap_done = explanation, state == "done"
        if item is not self.current:
            return
        result = explanation.shap
        self.show("shap", shap_overlay(item.gray, result))
        error = "exact" if result.exact else f"largest stderr {result.max_stderr:.2g} (faded: within 2 stderr of 0)"
        calls = f"{result.n_evaluations}/{result.budget} model calls"
        if state == "round":
            self.set_status(f"SHAP: {calls}, {error}; x stops here")
        else:
            notes = "".join(f"; {w}" for w in result.warnings)
            self.set_status(f"SHAP {state}: {result.n_regions} regions, {calls}, {error}{notes}")

    def on_worker_state_changed(self, event):
        if event.state.name == "ERROR":
            self.show_error("Computation failed", event.worker.error)

    # ------------------------------------------------------------------ saving

    def action_save(self):
        """Save the maps of the image on screen, as they are now (a running SHAP's latest round)."""
        if self._need_image():
            return
        item = self.current
        explanation = item.explanation()
        if explanation is None:
            self.notify("Compute Grad-CAM (c) or SHAP (s) first", severity="warning")
            return
        shap = explanation.shap
        note = ("" if shap is None or item.shap_done
                else f" (partial SHAP after {shap.n_evaluations} of {shap.budget} model calls)")
        self.set_status("saving ...")
        self.save(explanation, note)

    @work(thread=True, exit_on_error=False, group="save")
    def save(self, explanation, note):
        """(worker) Write ``explanation``'s stamped pictures to the output folder, named as ``minivgg explain`` does.

        ``note`` is added to the status line afterwards (a partial SHAP map).
        """
        stem = distinct_stems([explanation.path])[explanation.path]
        try:
            with self.saving:
                written = self.model.save_explanation(explanation, prepare_output_dir(self.out_dir), stem)
        except OSError as e:                    # minivgg's OutputError is one
            self.call_from_thread(self.show_error, "Cannot save", e)
            return
        self.call_from_thread(self.show_saved, written, note)

    def show_saved(self, written, note):
        """Say where the files went; ``note`` qualifies them (a partial SHAP map)."""
        self.set_status(f"saved {len(written)} files to {escape(str(self.out_dir.resolve()))}{note}")
        self.notify("\n".join(str(p) for p in written), title=f"Saved to {self.out_dir}", markup=False)
