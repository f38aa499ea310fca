"""Words and numbers as minivgg shows them to people: probabilities, and what an unfamiliar image means."""

NOT_TRAINED_ON_THIS = "the model was not trained on images like this one; do not rely on this prediction"


def format_probability(p):
    """``p`` with 3 decimals, or as many more (up to 6) as it takes not to show a 0 or 1 it is not.

    0.9996 prints as 0.9996, not 1.000: a printed certainty should be one the model has.
    Only a probability within 5e-7 of 0 or 1 prints as 0.000000 or 1.000000.
    """
    for digits in range(3, 7):
        text = f"{p:.{digits}f}"
        if 0 < float(text) < 1:
            return text
    return text
