"""Draw the README's picture of twin phantoms: RA image | healthy twin | lesion mask | difference.

    python scripts/make_phantom_figure.py [--out docs/images/twin_phantoms.png]

Three RA phantoms of the bundled model's held-out set (seed 1, easy), and one with a side
marker (``--shortcut``), at 256 pixels. Our own synthetic data only.
"""

import argparse
from pathlib import Path

import numpy as np

from minivgg.atomic import atomic_write
from minivgg.imaging.phantoms import PhantomSettings, make_phantom

ROOT = Path(__file__).resolve().parents[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "docs" / "images" / "twin_phantoms.png"))
    out = Path(parser.parse_args().out)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    held_out = PhantomSettings(difficulty="easy")          # as scripts/make_bundled_model.py draws them
    rows = [(make_phantom(1, i, 1, held_out), "") for i in (1, 3, 5)]
    rows.append((make_phantom(1, 7, 1, PhantomSettings(difficulty="easy", shortcut_share=1.0)), " + side marker"))
    fig, axes = plt.subplots(len(rows), 4, figsize=(7.2, 1.85 * len(rows)))
    for (p, note), ax in zip(rows, axes):
        joints = ", ".join(r["joint"] for r in p.params["lesions"])
        overlay = np.repeat(p.image[..., None], 3, axis=2)
        overlay[p.mask] = [1.0, 0.15, 0.1]
        if p.shortcut_mask is not None:
            overlay[p.shortcut_mask] = 0.55 * overlay[p.shortcut_mask] + [0.0, 0.3, 0.45]
        panels = [(p.image, f"RA{note}", "gray"), (p.twin, "healthy twin", "gray"),
                  (overlay, f"mask: {joints}", None), (np.abs(p.image - p.twin), "|RA - twin|", "magma")]
        for a, (img, title, cmap) in zip(ax, panels):
            a.imshow(img, cmap=cmap, vmin=0, vmax=1 if cmap != "magma" else 0.25)
            a.set_title(title, fontsize=7)
            a.axis("off")
    fig.tight_layout(pad=0.3)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out) as f:
        fig.savefig(f, format="png", dpi=90)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
