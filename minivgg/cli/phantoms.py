"""``minivgg phantoms``: synthetic hand radiographs with lesion masks and healthy twins."""

from minivgg.files import prepare_output_dir
from minivgg.imaging.phantoms import write_phantoms
from minivgg.progress import Progress


def run(args):
    """Write a folder data set of synthetic hand radiographs with lesion masks and healthy twins."""
    out = prepare_output_dir(args.out)
    progress = Progress(quiet=args.quiet)
    paths = write_phantoms(out, args.n, seed=args.seed, size=args.size,
                           progress=lambda done, total: progress.update("phantoms", done, total),
                           difficulty=args.difficulty, global_osteopenia=args.global_osteopenia,
                           shortcut_share=args.shortcut or 0.0, shortcut_class=args.shortcut_class)
    extra = ", side-marker masks in shortcut_masks" if args.shortcut else ""
    print(f"wrote {len(paths)} phantoms to {out / 'images'} (lesion masks in masks, healthy twins of the RA "
          f"images in twins{extra}; every draw in phantoms.json)")
    return 0
