"""What the terminal app knows about the image on screen: :class:`Opened`, one record per opened image.

Every result belongs to the image it was computed for: opening an image makes a new
record, and a worker hands its result back together with the record it started from,
so a late result for an image no longer on screen is kept with that image and not drawn.

SHAP runs in rounds and can be stopped or started again, so the map an image holds is
one of several states, and saving says which (:meth:`Opened.map_words`): finished; a
round's partial estimate while its run goes on; a stopped run's; or, while a new run has
not yet delivered its first round, the previous run's.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from minivgg.deploy.classifier import Assessment, Explanation


@dataclass(eq=False)
class Opened:
    """One opened image and what has been computed for it (compared by identity).

    Attributes
    ----------
    path : Path, the file
    x : (3, S, S) the model input (``model.read``)
    gray : (S, S) what the model saw, for display
    stem : the name its saved pictures start with (the command line's naming rule)
    found : Assessment of ``x`` (one image's), or None while the prediction runs
    cam_explanation : Explanation holding the class-activation map, or None
    shap_explanation : Explanation holding the latest Kernel-SHAP estimate, or None
    shap_state : what that estimate is: "round" (a run's partial estimate), "done" or "stopped"
    shap_of_run : the number of the run it came from
    shap_running : the number of the SHAP run computing now, or None
    """
    path: Path
    x: np.ndarray
    gray: np.ndarray
    stem: str
    found: Assessment = None
    cam_explanation: Explanation = None
    shap_explanation: Explanation = None
    shap_state: str = None
    shap_of_run: int = 0
    shap_running: int = None

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

    def keep_shap(self, explanation, state, run):
        """Keep run ``run``'s estimate (``state`` "round", "done" or "stopped") unless a later run's is kept already.

        Returns whether it was kept. A run superseded by a new ``s`` may still deliver
        its stopped estimate after the new run's first round: that one is dropped.
        """
        if run < self.shap_of_run:
            return False
        self.shap_explanation, self.shap_state, self.shap_of_run = explanation, state, run
        if state != "round" and self.shap_running == run:
            self.shap_running = None
        return True

    def explanation(self):
        """Every map computed so far as one :class:`Explanation` (what saving writes), or None."""
        cam, shap = self.cam_explanation, self.shap_explanation
        if cam is None or shap is None:
            return shap if cam is None else cam
        return cam.merged(shap)

    def map_words(self):
        """Which maps saving writes now, and in which state ("HiResCAM and SHAP after 80 of 202 model calls ...")."""
        maps = [self.cam_explanation.cam_name] if self.cam_explanation is not None else []
        shap = self.shap
        if shap is not None:
            calls = f"{shap.n_evaluations} of {shap.budget} model calls"
            if self.shap_running is not None and self.shap_of_run < self.shap_running:
                maps.append(f"the previous SHAP run's map ({calls}; the new run has no map yet)")
            elif self.shap_state == "round":
                maps.append(f"partial SHAP after {calls} (still computing)")
            elif self.shap_state == "stopped":
                maps.append(f"partial SHAP after {calls} (stopped)")
            else:
                maps.append(f"finished SHAP ({calls})")
        return " and ".join(maps)
