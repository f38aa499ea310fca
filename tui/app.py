"""``minivgg tui``: open a radiograph or a folder, see the class probabilities and the maps, save them.

Layout (``app.tcss``; :mod:`minivgg.tui.layout` picks the arrangement from the window)::

    row (120x40, 200x60)                          beside (80x24)
    +--------------------------------------+      +---------------------+------------+
    | radiograph | class-activation | SHAP |      | one picture         | verdict    |
    |            | map              |      |      | (v: the next one)   | model      |
    +------------+------------------+------+      |                     | status     |
    | verdict, model,| SHAP table |  file  |      |                     | SHAP table |
    | status         |            |  list  |      |                     | file list  |
    +--------------------------------------+      +---------------------+------------+
    | footer: the keys                     |      | footer              |            |

The verdict (the probabilities, the predicted class, any out-of-distribution warning)
and the model's name are on screen at every size; the pictures take the room left, keep
their aspect ratio, and zoom and pan together (:mod:`minivgg.tui.panels`).

``minivgg tui DIR`` (or a list of files, or ``-`` for names on stdin) opens folder mode:
a file list (:mod:`minivgg.tui.filelist`) that one background worker fills with
predictions, sortable, walked with ``n``/``p``.

The app computes and saves only through the model's own operations
(:class:`~minivgg.deploy.classifier.Classifier`), the ones ``minivgg explain`` uses:
``read`` a file, ``assess`` it, ``explain_rounds`` it with the app's
:class:`~minivgg.explain.settings.ExplainSettings` (one map per key: ``c`` the
class-activation map, ``s`` Kernel-SHAP), and ``save_explanation`` of the maps under the
name the command line gives the file (over the whole list in folder mode). A picture
saved here is the one the command line writes, with the same stamp, and the status says
which map state it saved (:meth:`~minivgg.tui.state.Opened.map_words`).

Prediction, the maps and saving run in background threads, so the interface never
freezes (a SHAP map takes seconds); SHAP redraws after each round of
model calls, reports progress and can be stopped, keeping its latest map. Widgets are
only touched from the interface thread (``call_from_thread``), and each result is handed
back with the :class:`~minivgg.tui.state.Opened` record it was computed for.
"""

import itertools
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Container, Vertical
from textual.markup import escape
from textual.widgets import Footer, Header, ProgressBar, Static
from textual.worker import get_current_worker

from minivgg.app.predict import predict_files
from minivgg.errors import ImageError
from minivgg.explain.gradcam import METHODS as CAM_NAMES
from minivgg.explain.render import gradcam_overlay, shap_overlay
from minivgg.explain.settings import ExplainSettings
from minivgg.files import distinct_stems, prepare_output_dir
from minivgg.text import printable
from minivgg.trust.modelcard import explanation_score
from minivgg.tui.filelist import FileList
from minivgg.tui.gallery import Gallery
from minivgg.tui.help import HelpScreen
from minivgg.tui.layers import LayersScreen
from minivgg.tui.layout import arrange
from minivgg.tui.panels import PicturePanels
from minivgg.tui.picker import ImagePicker
from minivgg.tui.pictures import picture_widget_class
from minivgg.tui.shaptable import ShapTable
from minivgg.tui.state import Opened
from minivgg.tui.verdict import Verdict

# The worker groups whose results belong to one image: opening another cancels them.
# (Saving is not among them: a save in flight writes the image it was started for.)
COMPUTATIONS = ("predict", "gradcam", "shap")
FOLDER_BATCH = 8           # images the folder worker scores at once (and hands to the list together)
# Actions of bindings that Textual's own command palette already offers.
PALETTE_HAS = {"quit"}
FOLDER_ACTIONS = {"next", "previous", "sort"}


class Cancelled(Exception):
    """Raised inside a worker when the user cancelled it."""


class MiniVGGApp(App):
    """The minivgg terminal app.

    Parameters
    ----------
    model : Classifier
    image : path of an image to open at start, optional
    files : paths of folder mode's list (the first is opened unless ``image`` is given); empty: no list
    out_dir : the folder ``w`` saves to (created when saving)
    samples : paths of the sample images ``g`` offers
    graphics : "auto" (a terminal graphics protocol when the terminal has one) or "halfcell"
    settings : ExplainSettings of both maps; each key computes one (``method`` is replaced)
    palette : "auto" (what the terminal announces), "truecolor" or "256" (pictures dithered to its colours)
    """

    TITLE = "minivgg"
    SUB_TITLE = "VGG8 hand-radiograph classifier"
    CSS_PATH = "app.tcss"
    # The one list of the app's actions: the footer shows the descriptions, and the help
    # screen's key table and the command palette are built from it (the tooltips).
    # Each is a priority binding, run as its key arrives, in the order keys were typed: a
    # plain binding waits for its key to travel through the focused widget first, and
    # "g Enter c" typed in one go lost the Enter to the main screen before the sample list
    # opened. While a pop-up is open they stand aside (check_action), so its keys are its own.
    BINDINGS = [replace(binding, priority=True) for binding in [
        Binding("o", "open", "Open", tooltip="open an image file (a path with completion, or a folder tree)"),
        Binding("g", "gallery", "Samples", show=False, tooltip="open one of the bundled sample phantoms"),
        Binding("c", "gradcam", "CAM", tooltip="compute the class-activation map (HiResCAM by default, or "
                                               "Grad-CAM with --cam gradcam): where a deep conv layer looks"),
        Binding("s", "shap", "SHAP", tooltip="compute Kernel-SHAP (which regions push towards the class)"),
        Binding("x", "cancel", "Cancel", show=False,
                tooltip="cancel a running computation (SHAP keeps its latest map)"),
        Binding("w", "save", "Save", tooltip="write the maps on screen, stamped, to the output folder (the "
                                             "status says which: a partial SHAP map says after how many calls)"),
        Binding("n", "next", "Next", tooltip="folder mode: open the next image of the list"),
        Binding("p", "previous", "Prev", show=False, tooltip="folder mode: open the previous image of the list"),
        Binding("r", "sort", "Sort", show=False, tooltip="folder mode: sort the list by name, by probability "
                                                         "or by out-of-distribution score"),
        Binding("plus,equals_sign", "zoom_in", "Zoom", tooltip="zoom in on the pictures (arrows pan)"),
        Binding("minus", "zoom_out", "Zoom out", show=False, tooltip="zoom out"),
        Binding("a", "opacity", "Opacity", show=False,
                tooltip="the maps' opacity over the radiograph: 100%, 50%, 0%, 150%"),
        Binding("v", "view", "View", tooltip="small window: show the next picture (radiograph, map, SHAP)"),
        Binding("l", "layers", "Layers", show=False, tooltip="layers: what each conv block sees (its feature maps)"),
        Binding("question_mark", "help", "Help", tooltip="show the keys and how to read the pictures"),
        Binding("ctrl+q", "quit", "Quit", tooltip="quit"),
    ]]
    MAIN_SCREEN_ACTIONS = frozenset(binding.action for binding in BINDINGS) - {"quit"}

    def __init__(self, model, image=None, files=(), out_dir="minivgg-output", samples=(), graphics="auto",
                 settings=ExplainSettings(), palette="auto"):
        super().__init__()
        self.model = model
        self.files = [Path(f) for f in files]
        self.start_image = Path(image) if image else (self.files[0] if self.files else None)
        self.stems = distinct_stems(self.files)       # the command line's names, over the whole list
        self.out_dir = Path(out_dir)
        self.samples = list(samples)
        self.picture_class = picture_widget_class(graphics)
        self.settings = settings
        self.palette = palette
        self.current = None                 # the Opened image on screen
        self.saving = threading.Lock()      # one save at a time: two saves of an image write the same files
        self.runs = itertools.count(1)      # SHAP runs, numbered (see Opened.keep_shap)
        self.beside = False

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        cam_name = CAM_NAMES[self.settings.cam]
        yield Header()
        with Container(id="main"):
            # Each map's title says how often its method found the lesions on this model's validation twins.
            size = self.model.image_size
            titles = {"image": f"model input ({size}x{size} crop)",
                      "gradcam": f"{cam_name}: {explanation_score(self.model, self.settings.cam)}",
                      "shap": f"SHAP: {explanation_score(self.model, 'shap')}"}
            yield PicturePanels(self.picture_class, titles, id="pictures")
            with Container(id="side"):
                with Vertical(id="info"):
                    yield Verdict(self.model.class_names, cam_name, id="verdict")
                    intended = (self.model.card or {}).get("intended_use", "not known (a model file without a card)")
                    yield Static(f"[b]model: {escape(printable(self.model.name))}[/]\n"
                                 f"[dim]intended use: {escape(printable(intended))}[/]", id="model-card")
                    yield Static("ready", id="status")
                    yield ProgressBar(total=100, show_eta=False, id="progress")
                yield ShapTable(id="shap", classes="-empty")
                if self.files:
                    names = self.model.class_names
                    positive = FileList.positive_class(names)
                    yield FileList(self.files, printable(names[positive]), positive, self.model.ood is not None,
                                   id="files")
        yield Footer(compact=True)               # (an 80-column footer holds every key shown)

    def on_mount(self):
        self.panels = self.query_one(PicturePanels)
        self.panels.focus()
        if self.palette == "auto":
            self.palette = "truecolor" if self.console.color_system == "truecolor" else "256"
        self.panels.dither = self.palette == "256"
        if self.files:
            self.predict_folder(self.files)
        if self.start_image:
            self.open_image(self.start_image)

    def on_resize(self, event):
        """Arrange the screen for the new size: the pictures as large as they can be, the verdict in view."""
        arrangement = arrange(event.size.width, event.size.height)
        self.beside = arrangement.beside
        self.query_one("#main").set_class(arrangement.beside, "-beside")
        self.query_one(PicturePanels).fit(arrangement)
        self.refresh_bindings()

    def check_action(self, action, parameters):
        """The app's keys work on the main screen only (not under a pop-up), and where they apply."""
        if action in self.MAIN_SCREEN_ACTIONS and self.screen is not self.default_screen:
            return False
        return self.applies(action)

    def applies(self, action):
        """Whether ``action`` means something now: the folder keys in folder mode, ``v`` when one picture is shown."""
        if action in FOLDER_ACTIONS:
            return bool(self.files)
        if action == "view":
            return self.beside
        return True

    def get_system_commands(self, screen):
        yield from super().get_system_commands(screen)
        for binding in self.BINDINGS:
            if binding.action not in PALETTE_HAS and self.applies(binding.action):
                yield SystemCommand(binding.description, binding.tooltip, getattr(self, f"action_{binding.action}"))

    def set_status(self, text):
        self.query_one("#status", Static).update(text)

    def set_progress(self, done, total):
        self.query_one("#progress", ProgressBar).update(total=total, progress=done)

    def show_error(self, title, error):
        """Say what went wrong, in the status line and a notification; the app stays usable."""
        self.set_status(f"[b red]error:[/] {escape(printable(error))}")
        self.notify(printable(error), title=title, severity="error", markup=False)

    # ------------------------------------------------------------------ opening and predicting

    def stem(self, path):
        """The name the pictures of ``path`` are saved under: as ``minivgg explain`` names it (over the list)."""
        return self.stems[path] if path in self.stems else distinct_stems([path])[path]

    def open_image(self, path):
        """Show the image at ``path`` and start predicting; returns whether it opened.

        An unreadable file leaves the image on screen, and is marked in the file list
        (``n``/``p`` pass over it from then on).
        """
        path = Path(path)
        files = self.query(FileList)
        try:
            x = self.model.read(path)           # reading and preprocessing is quick: no worker needed
        except ImageError as e:
            self.show_error("Cannot open", e)
            if files and path in files.first().names:
                files.first().set_found([(path, e)])
            return False
        for group in COMPUTATIONS:              # their results would be for the old image
            self.workers.cancel_group(self, group)
        known = files.first().found.get(path) if files else None
        self.current = item = Opened(path, x, self.model.display(x), self.stem(path))
        self.panels.show_image(item.gray)
        self.panels.flag(False)
        self.query_one(ShapTable).clear()
        self.set_progress(0, 100)
        self.sub_title = printable(path)
        if files:
            files.first().mark(path)
        if known is not None and not isinstance(known, Exception):
            self.show_probabilities(item, known)    # the folder worker's prediction of this very file
        else:
            self.query_one(Verdict).show(None)
            self.set_status(f"predicting {escape(printable(path.name))} ...")
            self.predict(item)
        return True

    @work(thread=True, exclusive=True, exit_on_error=False, group="predict")
    def predict(self, item):
        """(worker) The model's probabilities and out-of-distribution verdict for ``item``."""
        self.call_from_thread(self.show_probabilities, item, self.model.assess(item.x[None])[0])

    def show_probabilities(self, item, found):
        """Keep ``item``'s assessment; while it is on screen, draw the verdict and frame an unusual image."""
        item.found = found
        if item is not self.current:
            return
        self.query_one(Verdict).show(found)
        self.panels.flag(item.flagged)
        label = self.model.class_names[int(found.probs.argmax())]
        self.set_status(f"{escape(printable(item.path.name))}: predicted {escape(printable(label))}"
                        + (" (out of distribution)" if item.flagged else ""))

    @work(thread=True, exclusive=True, exit_on_error=False, group="folder")
    def predict_folder(self, files):
        """(worker) Predict every file of the list, a batch at a time, handing each batch to the list."""
        worker = get_current_worker()
        batch = []
        for path, found, _ in predict_files(self.model, files, FOLDER_BATCH):
            if worker.is_cancelled:
                return
            batch.append((path, found))
            if len(batch) == FOLDER_BATCH:
                self.call_from_thread(self.show_found, batch)
                batch = []
        if batch:
            self.call_from_thread(self.show_found, batch)

    def show_found(self, pairs):
        """The folder worker's ``(path, Assessment or ImageError)`` pairs, into the file list."""
        self.query_one(FileList).set_found(pairs)

    def _need_image(self):
        if self.current is None:
            self.notify("Open an image first (o or g)", severity="warning")
            return True
        return False

    # ------------------------------------------------------------------ actions

    def action_open(self):
        start = self.current.path.parent if self.current else Path.cwd()
        self.push_screen(ImagePicker(start, self.open_image))

    def action_gallery(self):
        if not self.samples:
            self.notify("No bundled samples in this installation", severity="warning")
            return
        self.push_screen(Gallery(self.samples, self.open_image))

    def action_help(self):
        self.push_screen(HelpScreen([*self.BINDINGS, *PicturePanels.BINDINGS]))

    def action_layers(self):
        if not self._need_image():
            self.push_screen(LayersScreen(self.model, self.current.x, self.picture_class))

    def action_next(self):
        self.step(1)

    def action_previous(self):
        self.step(-1)

    def step(self, steps):
        """Open the next readable image ``steps`` (1 or -1) rows on in the file list, as it is sorted."""
        listing = self.query_one(FileList)
        path = listing.step(steps)
        while path is not None and not self.open_image(path):
            path = listing.step(steps, start=path)
        if path is None:
            self.notify("the last image of the list" if steps > 0 else "the first image of the list")

    def on_file_list_chosen(self, event):
        self.open_image(event.path)

    def action_sort(self):
        self.set_status(f"list sorted by {self.query_one(FileList).cycle_sort()}")

    def action_zoom_in(self):
        self.zoom(1)

    def action_zoom_out(self):
        self.zoom(-1)

    def zoom(self, steps):
        self.panels.change_view(self.panels.view.zoomed(steps))
        zoom = self.panels.view.zoom
        self.set_status(f"zoom {zoom:g}x" + ("; arrows pan, - zooms out" if zoom > 1 else ""))

    def action_opacity(self):
        self.panels.change_view(self.panels.view.next_opacity())
        self.set_status(f"maps at {self.panels.view.opacity:.0%} of their saved opacity")

    def action_view(self):
        self.panels.next_panel()

    def on_shap_table_region_selected(self, event):
        self.panels.select_region(event.region)

    def action_gradcam(self):
        if not self._need_image():
            self.set_status(f"{CAM_NAMES[self.settings.cam]}: computing ...")
            self.gradcam(self.current)

    def action_shap(self):
        if not self._need_image():
            self.current.shap_running = run = next(self.runs)
            self.set_status("SHAP: computing ... (x cancels)")
            self.set_progress(0, 100)
            self.shap(self.current, run)

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
        self.panels.show_map("gradcam", gradcam_overlay(item.gray, explanation.cam))
        notes = explanation.notes
        self.set_status(f"{explanation.cam_name} done" + (f" ({escape(notes[0])})" if notes else ""))

    @work(thread=True, exclusive=True, exit_on_error=False, group="shap")
    def shap(self, item, run):
        """(worker) Kernel-SHAP run ``run`` in rounds: each round's estimate is drawn; x keeps the latest one."""
        worker = get_current_worker()

        def progress(done, total):
            # Called between batches of model calls: the one place a running Kernel-SHAP can be stopped.
            if worker.is_cancelled:
                raise Cancelled()
            self.call_from_thread(self.show_progress, item, done, total)
        explanation, state = None, "stopped"
        try:
            for explanation in self.explanations(item, "shap", progress):
                self.call_from_thread(self.show_shap, item, explanation, "round", run)
            state = "done"
        except Cancelled:
            pass
        finally:                                # also after an error (shown by on_worker_state_changed)
            self.call_from_thread(self.show_shap, item, explanation, state, run)

    def show_progress(self, item, done, total):
        if item is self.current:
            self.set_progress(done, total)

    def show_shap(self, item, explanation, state, run):
        """Keep SHAP run ``run``'s estimate of ``item`` (``state``: "round", "done", "stopped"); draw it if shown."""
        if explanation is None:                 # stopped before its first round: nothing to keep
            if item.shap_running == run:
                item.shap_running = None
            return
        if not item.keep_shap(explanation, state, run) or item is not self.current:
            return
        result = explanation.shap
        self.panels.show_map("shap", shap_overlay(item.gray, result))
        signs = np.where(result.significant & result.measurable, np.sign(result.values), 0).astype(int)
        self.panels.show_regions(result.regions, signs)
        self.query_one(ShapTable).show(result, printable(self.model.class_names[explanation.target]))
        error = "exact" if result.exact else f"largest stderr {result.max_stderr:.2g}"
        calls = f"{result.n_evaluations}/{result.budget} model calls"
        if state == "round":
            self.set_status(f"SHAP: {calls}, {error}; x stops here")
        else:
            notes = "".join(f"; {escape(w)}" for w in result.warnings)
            self.set_status(f"SHAP {state}: {result.n_regions} regions, {calls}, {error}{notes}")

    def on_worker_state_changed(self, event):
        if event.state.name == "ERROR":
            self.show_error("Computation failed", event.worker.error)

    # ------------------------------------------------------------------ saving

    def action_save(self):
        """Save the maps of the image on screen, as they are now, and say which (a running SHAP's latest round)."""
        if self._need_image():
            return
        item = self.current
        explanation = item.explanation()
        if explanation is None:
            self.notify("Compute the class-activation map (c) or SHAP (s) first", severity="warning")
            return
        words = item.map_words()
        self.set_status(f"saving {escape(words)} ...")
        self.save(explanation, item.stem, words)

    @work(thread=True, exit_on_error=False, group="save")
    def save(self, explanation, stem, words):
        """(worker) Write ``explanation``'s stamped pictures to the output folder as ``<stem>_*``.

        ``words`` say which maps in which state (:meth:`Opened.map_words`), for the status line.
        """
        try:
            with self.saving:
                written = self.model.save_explanation(explanation, prepare_output_dir(self.out_dir), stem)
        except OSError as e:                    # minivgg's OutputError is one
            self.call_from_thread(self.show_error, "Cannot save", e)
            return
        self.call_from_thread(self.show_saved, written, words)

    def show_saved(self, written, words):
        """Say where the files went and which maps they hold."""
        folder = escape(printable(self.out_dir.resolve()))
        self.set_status(f"saved {escape(words)}: {len(written)} files to {folder}")
        self.notify("\n".join(printable(p) for p in written), title=f"Saved to {printable(self.out_dir)}",
                    markup=False)
