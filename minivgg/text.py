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


# Characters that move the cursor, recolour or rewrite a terminal, or reorder the text around them:
# the C0 and C1 controls (ESC starts every ANSI sequence; a newline would split a one-line message),
# the Unicode line and paragraph separators, and the bidirectional overrides ("Trojan Source").
# Undecodable bytes of a file name reach Python as lone surrogates (U+DC80-U+DCFF, the
# ``surrogateescape`` of :func:`os.fsdecode`): they are no text at all, and fonts and encoders
# refuse them.
_ESCAPED = set("\u2028\u2029\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _shown(ch):
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:
        return f"\\x{code - 0xDC00:02x}"            # the byte the file name really holds
    if code < 0x20 or 0x7F <= code < 0xA0 or ch in _ESCAPED or 0xD800 <= code < 0xE000:
        return ascii(ch)[1:-1]                      # \x1b, \n, \u202e ...
    return ch


def printable(text):
    """``text`` safe to print on a terminal or draw in a picture: every control character written out.

    File names and a model's class names are data: ``a\\x1b[2Jb.png`` must not clear the
    screen, and ``a\\nb.png`` must not look like two results. Each control character,
    bidirectional override or undecodable byte becomes its escape (``\\x1b``, ``\\n``,
    ``\\u202e``, ``\\xff``); everything else, accents and CJK included, is kept.

    >>> printable("ra\\x1b[31m.png")
    'ra\\\\x1b[31m.png'
    """
    text = str(text)
    return text if text.isprintable() else "".join(map(_shown, text))
