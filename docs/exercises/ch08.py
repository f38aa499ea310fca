"""Chapter 8, Are the explanations right?: exercises. Replace each TODO, then run ``python docs/exercises/ch08.py``.

Each checker calls your function on inputs of its own and says in words what differs.
A question to answer in words is in QUESTIONS. Worked answers: ``docs/solutions/ch08.py``
(look after you have tried).
"""

import numpy as np  # noqa: F401 (for your answers)

from minivgg.course.exercises import check_lesion_mass_ratio, check_twin_swap_image, run_exercises


def my_ratio(saliency, mask):
    """The lesion mass ratio: the share of the map's *positive* mass inside the mask, divided by the share of
    the pixels the mask covers. saliency (H, W) floats, mask (H, W) bool -> a float (1: no better than uniform)."""
    # TODO: two shares and a quotient.
    raise NotImplementedError


def swap_in_twin(image, twin, mask):
    """The RA image with its healthy twin's pixels inside the mask: image, twin (H, W), mask (H, W) bool."""
    # TODO: one line.
    raise NotImplementedError


EXERCISES = [(my_ratio, check_lesion_mass_ratio), (swap_in_twin, check_twin_swap_image)]

QUESTIONS = {
    "a confounder": """TODO: draw phantoms with PhantomSettings(difficulty="easy", global_osteopenia=True) (every
bone of an RA phantom is darker) and run the chapter's sections 1 and 2 on them with the bundled model. The
bundled model never saw global osteopenia: does p(RA) change, and do the maps move away from the lesions? Then
think of chapter 5's network, which was trained on such phantoms: what would its twin swap show, given that
a twin keeps the darker bones and loses only the lesions?""",
}

if __name__ == "__main__":
    run_exercises(EXERCISES)
