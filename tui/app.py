"""``minivgg tui``: open a radiograph, see the class probabilities and the heatmaps, save them.

Layout::

    +-------------------------------------------------------------+
    | radiograph        | Grad-CAM           | SHAP               |
    | (half-block or    |                    |                    |
    |  graphics)        |                    |                    |
    +-------------------------------------------------------------+
    | probabilities (bars)           | status / progress          |
    +-------------------------------------------------------------+
    | footer: key bindings                                        |

Pictures use coloured half-blocks, which work over any SSH connection; a terminal
graphics protocol (kitty, sixel) is used only when the terminal announces one.
Prediction, Grad-CAM and SHAP run in background threads, so the interface never
freezes; SHAP reports progress and can be cancelled. Widgets are only touched from
the interface thread (``call_from_thread``).

The model's name and intended use (from its card) are always on screen, and an image the
model's out-of-distribution detector flags gets a red warning and a red frame: the model
was not trained on images like it.

Every result belongs to the image it was computed for: opening an image makes a new
:class:`Opened` record and cancels the workers of the previous one, and a worker hands
its result back together with the record it started from, so a late result for an
image no longer on screen is dropped. Saving writes only the current record's maps,
under the current record's name.
"""

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DirectoryTree, Footer, Header, Label, Markdown, OptionList, ProgressBar, Static
from textual.worker import get_current_worker
from textual_image.renderable import Image as AutoRenderable
from textual_image.renderable.halfcell import Image as HalfcellRenderable
from textual_image.renderable.unicode import Image as UnicodeRenderable
from textual_image.widget import HalfcellImage
from textual_image.widget import Image as AutoImage

from minivgg.explain import GradCAM, KernelSHAP
from minivgg.explain.kernelshap import DEFAULT_BUDGET, DEFAULT_REGIONS
from minivgg.explain.render import gradcam_overlay, save_explanation, shap_overlay
from minivgg.files import OutputError, prepare_output_dir
from minivgg.imageio import ImageError, is_image_path
from minivgg.layers import MaxPool2x2
from minivgg.modelcard import model_name
from minivgg.predict import NOT_TRAINED_ON_THIS, assess, format_probability, load_for_model
from minivgg.preprocess import to_display

# textual-image 0.12 (the last for Python 3.11) calls Pillow's getdata(), deprecated in
# Pillow 13 and removed in 14 (pyproject bounds Pillow below 14).
warnings.filterwarnings("ignore", message=r".*getdata is deprecated", category=DeprecationWarning)

PANEL_W, PANEL_H = 36, 18          # picture panels, in terminal cells


def picture_widget_class(graphics="auto"):
    """HalfcellImage unless the terminal speaks a graphics protocol (and ``graphics`` allows it)."""
    if graphics == "auto" and AutoRenderable not in (HalfcellRenderable, UnicodeRenderable):
        return AutoImage
    return HalfcellImage


def to_pil(rgb_or_gray):
    """Float image in [0, 1], (S, S) or (S, S, 3), to a PIL image."""
    a = (np.clip(rgb_or_gray, 0, 1) * 255 + 0.5).astype(np.uint8)
    return PILImage.fromarray(a)


class Cancelled(Exception):
    """Raised inside a worker when the user cancelled it."""


@dataclass(eq=False)
class Opened:
    """One opened image and what has been computed for it (compared by identity)."""
    path: Path
    x: np.ndarray              # the model input (3, S, S)
    gray: np.ndarray           # what the model saw, for display (S, S)
    probs: np.ndarray = None
    in_distribution: bool = None   # None: not known (a model without a detector)
    cam: np.ndarray = None     # normalised Grad-CAM map (S, S)
    shap: object = None        # SHAPResult

    @property
    def flagged(self):
        """True when the model's detector found the image unlike its training images."""
        return self.in_distribution is not None and not self.in_distribution

    def target(self, model):
        """The explained class: the predicted one (predicting now if the prediction is still running)."""
        probs = self.probs if self.probs is not None else model.predict_proba(self.x[None])[0]
        return int(probs.argmax())


HELP = """\
# minivgg: terminal app

Classifies a hand radiograph with a VGG8 and explains the prediction.

| key | action |
|---|---|
| `o` | open an image file (file picker, images only) |
| `g` | open one of the bundled sample phantoms |
| `c` | compute Grad-CAM (where a deep conv layer with maps of at least 14x14 looks) |
| `s` | compute Kernel-SHAP (which regions push towards the class) |
| `x` | cancel a running computation |
| `w` | write the heatmaps and the combined figure to the output folder |
| `l` | layers: what each conv block sees (its feature maps) |
| `?` | this help |
| `ctrl+p` | command palette |
| `ctrl+q` | quit |

Grad-CAM: bright = strong evidence *for* the predicted class.
SHAP: red pushes towards the class, blue against it.
The model's output is not a diagnosis. Read the model's intended use (bottom right).
A red **out of distribution** warning means the image is not like the model's training
images: the model was not trained on images like it, and its prediction is not reliable.
"""


class HelpScreen(ModalScreen):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Markdown(HELP)


class ImagePicker(ModalScreen):
    """A directory tree that lists only folders and image files; Enter on a file opens it."""
    BINDINGS = [Binding("escape", "dismiss", "Close")]

    class ImageTree(DirectoryTree):
        def filter_paths(self, paths):
            return [p for p in paths if p.is_dir() or is_image_path(p)]

    def __init__(self, start):
        super().__init__()
        self.start = start

    def compose(self) -> ComposeResult:
        with Vertical(id="picker"):
            yield Label("Open an image (Enter), Esc to close")
            yield self.ImageTree(self.start)

    def on_directory_tree_file_selected(self, event):
        self.dismiss(Path(event.path))


class Gallery(ModalScreen):
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


class LayersScreen(ModalScreen):
    """The feature maps after each conv block's last ReLU: the first 8 channels, each scaled to [0, 1]."""
    BINDINGS = [Binding("escape,l", "dismiss", "Close")]

    def __init__(self, model, x, picture_class):
        super().__init__()
        self.model, self.x, self.picture_class = model, x, picture_class

    def block_outputs(self):
        """{layer name: (C, h, w)} for the ReLU that ends each block (the layer before each pool)."""
        layers = self.model.layers
        ends = [layers[i][0] for i in range(len(layers) - 1) if isinstance(layers[i + 1][1], MaxPool2x2)]
        _, outputs = self.model.infer(self.x[None], capture=ends)
        return {n: outputs[n][0] for n in ends}

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="layers"):
            yield Label("What each conv block sees: 8 feature maps per block (bright = strong response)")
            for i, (name, maps) in enumerate(self.block_outputs().items(), 1):
                tiles = []
                for m in maps[:8]:
                    lo, hi = float(m.min()), float(m.max())
                    tiles.append((m - lo) / (hi - lo) if hi > lo else np.zeros_like(m))
                while len(tiles) < 8:
                    tiles.append(np.zeros_like(maps[0]))
                grid = np.concatenate([np.concatenate(tiles[:4], 1), np.concatenate(tiles[4:], 1)], 0)
                yield Label(f"block {i} ({name}): {maps.shape[0]} channels of {maps.shape[1]}x{maps.shape[2]}")
                yield self.picture_class(to_pil(grid), classes="layer-grid")


class MiniVGGApp(App):
    """The minivgg terminal app. ``model`` is a VGG8; ``image`` an optional path to open at start."""

    TITLE = "minivgg"
    SUB_TITLE = "VGG8 hand-radiograph classifier"
    CSS = f"""
    #pictures {{ height: {PANEL_H + 2}; }}
    .panel {{ width: {PANEL_W + 2}; height: {PANEL_H + 2}; border: round $primary; }}
    .panel > .picture {{ width: {PANEL_W}; height: {PANEL_H}; }}
    #bottom {{ height: auto; }}
    #probs {{ width: 1fr; height: auto; padding: 0 1; }}
    #status-box {{ width: 1fr; height: auto; padding: 0 1; }}
    #model-card {{ color: $text-muted; }}
    .panel.flagged {{ border: heavy $error; }}
    #progress {{ width: 40; }}
    HelpScreen, ImagePicker, Gallery, LayersScreen {{ align: center middle; }}
    #help, #picker, #gallery, #layers {{ width: 90%; height: 85%; border: thick $primary; background: $surface; }}
    .layer-grid {{ width: 72; height: 12; }}
    """
    BINDINGS = [
        Binding("o", "open", "Open"),
        Binding("g", "gallery", "Samples"),
        Binding("c", "gradcam", "Grad-CAM"),
        Binding("s", "shap", "SHAP"),
        Binding("x", "cancel", "Cancel"),
        Binding("w", "save", "Save"),
        Binding("l", "layers", "Layers"),
        Binding("question_mark", "help", "Help"),
        Binding("ctrl+q", "quit", "Quit"),
    ]

    def __init__(self, model, image=None, out_dir="minivgg-output", samples=(), graphics="auto",
                 shap_budget=DEFAULT_BUDGET, shap_regions=DEFAULT_REGIONS, cam="gradcam"):
        super().__init__()
        self.model = model
        self.cam = GradCAM(model, method=cam)      # holds no state of a call: shared by the workers
        self.start_image = Path(image) if image else None
        self.out_dir = Path(out_dir)
        self.samples = list(samples)
        self.picture_class = picture_widget_class(graphics)
        self.shap_budget, self.shap_regions = shap_budget, shap_regions
        self.current = None        # the Opened image on screen
        self.saved = []

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="pictures"):
            for key, title in (("image", "radiograph"), ("gradcam", self.cam.name), ("shap", "SHAP")):
                with Vertical(classes="panel", id=f"panel-{key}") as panel:
                    panel.border_title = title
                    yield self.picture_class(None, id=f"pic-{key}", classes="picture")
        with Horizontal(id="bottom"):
            yield Static("Open a radiograph: o (file), g (samples), ? (help)", id="probs")
            with Vertical(id="status-box"):
                intended = (self.model.card or {}).get("intended_use", "not known (a model file without a card)")
                yield Static(f"model: {model_name(self.model)}\nintended use: {intended}", id="model-card", markup=False)
                yield Static("ready", id="status")
                yield ProgressBar(total=100, show_eta=False, id="progress")
        yield Footer()

    def on_mount(self):
        if self.start_image:
            self.open_image(self.start_image)

    def get_system_commands(self, screen):
        yield from super().get_system_commands(screen)
        for title, help_text, action in [
            ("Open image", "Pick a radiograph from disk", self.action_open),
            ("Open sample", "One of the bundled phantoms", self.action_gallery),
            ("Grad-CAM", "Compute the Grad-CAM heatmap", self.action_gradcam),
            ("SHAP", "Compute Kernel-SHAP region values", self.action_shap),
            ("Save heatmaps", f"Write PNGs to {self.out_dir}", self.action_save),
            ("Layers", "Feature maps of each conv block", self.action_layers),
        ]:
            yield SystemCommand(title, help_text, action)

    def set_status(self, text):
        self.query_one("#status", Static).update(text)

    def set_progress(self, done, total):
        self.query_one("#progress", ProgressBar).update(total=total, progress=done)

    def show(self, key, array):
        self.query_one(f"#pic-{key}").image = to_pil(array)

    # ------------------------------------------------------------------ opening and predicting

    def open_image(self, path):
        path = Path(path)
        try:
            x = load_for_model(path, self.model)
        except ImageError as e:
            self.set_status(f"[b red]error:[/] {e}")
            self.notify(str(e), title="Cannot open", severity="error")
            return
        for group in ("predict", "gradcam", "shap"):        # their results would be for the old image
            self.workers.cancel_group(self, group)
        self.current = item = Opened(path, x, to_display(x, self.model.preprocessing))
        self.show_flag(False)
        self.query_one("#pic-gradcam").image = None
        self.query_one("#pic-shap").image = None
        self.set_progress(0, 100)
        self.show("image", item.gray)
        self.sub_title = str(path)
        self.set_status(f"predicting {path.name} ...")
        self.predict(item)

    @work(thread=True, exclusive=True, exit_on_error=False, group="predict")
    def predict(self, item):
        found = assess(self.model, item.x[None])[0]
        self.call_from_thread(self.show_probabilities, item, found.probs, found.in_distribution)

    def show_probabilities(self, item, probs, in_distribution=None):
        item.probs, item.in_distribution = probs, in_distribution
        if item is not self.current:
            return
        best = int(probs.argmax())
        lines = []
        for i, (name, p) in enumerate(zip(self.model.class_names, probs)):
            bar = "█" * int(round(p * 30))
            style = "b green" if i == best else "dim"
            lines.append(f"[{style}]{name:>12} {bar:<30} {format_probability(p):>8}[/]")
        lines.append(f"predicted: [b]{self.model.class_names[best]}[/]  (c: Grad-CAM, s: SHAP, w: save)")
        if item.flagged:
            lines.append(f"[b red]⚠ OUT OF DISTRIBUTION:[/] [red]{NOT_TRAINED_ON_THIS}[/]")
        self.query_one("#probs", Static).update("\n".join(lines))
        self.show_flag(item.flagged)
        self.set_status(f"{item.path.name}: predicted {self.model.class_names[best]}"
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
        self.push_screen(HelpScreen())

    def action_layers(self):
        if not self._need_image():
            self.push_screen(LayersScreen(self.model, self.current.x, self.picture_class))

    def action_gradcam(self):
        if not self._need_image():
            self.set_status("Grad-CAM: computing ...")
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

    @work(thread=True, exclusive=True, exit_on_error=False, group="gradcam")
    def gradcam(self, item):
        result = self.cam(item.x[None], item.target(self.model))
        if not get_current_worker().is_cancelled:
            self.call_from_thread(self.finish_gradcam, item, result.normalized[0], result.warnings)

    def finish_gradcam(self, item, cam, warnings):
        item.cam = cam
        if item is not self.current:
            return
        self.show("gradcam", gradcam_overlay(item.gray, cam))
        self.set_status("Grad-CAM done" + (f" ({warnings[0]})" if warnings else ""))

    @work(thread=True, exclusive=True, exit_on_error=False, group="shap")
    def shap(self, item):
        """Kernel-SHAP in rounds: the panel shows each round's estimate; x keeps the latest one."""
        worker = get_current_worker()

        def progress(done, total):
            if worker.is_cancelled:
                raise Cancelled()
            self.call_from_thread(self.show_progress, item, done, total)
        explainer = KernelSHAP(self.model, n_regions=self.shap_regions, budget=self.shap_budget)
        result, state = None, "done"
        try:
            for result in explainer.rounds(item.x, item.target(self.model), progress=progress):
                self.call_from_thread(self.show_shap, item, result, "round")
        except Cancelled:
            state = "stopped"
        if result is not None:
            self.call_from_thread(self.show_shap, item, result, state)

    def show_progress(self, item, done, total):
        if item is self.current:
            self.set_progress(done, total)

    def show_shap(self, item, result, state):
        """Draw a SHAP estimate of ``item``: a round's (``state`` "round"), or the last ("done", "stopped")."""
        item.shap = result
        if item is not self.current:
            return
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
            self.set_status(f"[b red]error:[/] {event.worker.error}")
            self.notify(str(event.worker.error), title="Computation failed", severity="error")

    def action_save(self):
        if self._need_image():
            return
        item = self.current
        if item.cam is None and item.shap is None:
            self.notify("Compute Grad-CAM (c) or SHAP (s) first", severity="warning")
            return
        target = item.target(self.model)
        name = self.model.class_names[target]
        probs = item.probs if item.probs is not None else self.model.predict_proba(item.x[None])[0]
        try:
            written = save_explanation(prepare_output_dir(self.out_dir), item.path.stem, item.gray, name,
                                       float(probs[target]), cam=item.cam, shap=item.shap, title=item.path.name,
                                       warning=f"Out of distribution: {NOT_TRAINED_ON_THIS}." if item.flagged else None,
                                       cam_name=self.cam.name)
        except (OutputError, OSError) as e:
            self.set_status(f"[b red]error:[/] {e}")
            self.notify(str(e), title="Cannot save", severity="error")
            return
        self.saved = written
        self.set_status(f"saved {len(written)} files to {self.out_dir.resolve()}")
        self.notify("\n".join(str(p) for p in written), title=f"Saved to {self.out_dir}")
