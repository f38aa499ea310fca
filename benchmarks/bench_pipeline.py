"""Cost of the data pipeline next to a training step of the paper's VGG8 (224 x 224).

    python benchmarks/bench_pipeline.py [--images DIR] [--json]

Measures, per image:
* load: reading the file and resizing to 256 (done once per image, before training);
* augment+preprocess: rotation/brightness, centre crop, sym8 wavelet step,
  normalisation (done for every image in every epoch);
* a training step (forward + backward + Adam) of the paper's VGG8 at batch 8.

The target: the per-epoch part (augment+preprocess) costs at most 10% of a step. By
default the images are 16 phantoms of 600 x 600 written to a temporary folder; pass
``--images`` for a folder of your own (searched recursively).
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from minivgg import VGG8, Adam, Tape, softmax_cross_entropy  # noqa: E402
from minivgg.imaging.augment import augment  # noqa: E402
from minivgg.imaging.imageio import is_image_path, load_image  # noqa: E402
from minivgg.imaging.phantoms import write_phantoms  # noqa: E402
from minivgg.imaging.preprocess import finish, preprocessing_settings, resize  # noqa: E402


def per_image_ms(fn, items, repeat=1):
    start = time.perf_counter()
    for _ in range(repeat):
        out = [fn(i) for i in items]
    return (time.perf_counter() - start) * 1000 / (len(items) * repeat), out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", help="folder of images (default: 16 generated phantoms)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.images:
            files = sorted(p for p in Path(args.images).rglob("*") if p.is_file() and is_image_path(p))
        else:
            files = write_phantoms(tmp, 16, seed=0, size=600)
        settings = preprocessing_settings(224)
        load_ms, resized = per_image_ms(lambda f: resize(load_image(f), settings["resize"]), files)
    rng = np.random.default_rng(0)
    finish(augment(resized[0], rng)[0], settings)               # warm caches
    prep_ms, _ = per_image_ms(lambda img: finish(augment(img, rng)[0], settings), resized, repeat=3)

    model = VGG8(seed=0)
    opt = Adam(model.parameters(), lr=1e-4)
    x = np.stack([finish(img, settings) for img in resized[:8]])
    y = np.arange(8) % 2
    steps = []
    for _ in range(3):                                           # the first one is a warm-up
        t = time.perf_counter()
        tape = Tape()
        _, d = softmax_cross_entropy(model.forward(x, train=True, tape=tape, rng=rng), y)
        opt.step(model.backward(d, tape, need_input_grad=False)[1])
        steps.append((time.perf_counter() - t) * 1000 / len(x))
    step_ms = min(steps[1:])
    result = {"images": len(files), "load_ms_per_img": load_ms, "augment_preprocess_ms_per_img": prep_ms,
              "train_step_ms_per_img": step_ms, "pipeline_fraction_of_step": prep_ms / step_ms}
    if args.json:
        print(json.dumps(result))
        return
    print(f"{len(files)} images")
    print(f"load + resize (once per image)          {load_ms:8.1f} ms/image")
    print(f"augment + preprocess (every epoch)      {prep_ms:8.1f} ms/image")
    print(f"paper VGG8 training step, batch 8       {step_ms:8.1f} ms/image")
    print(f"pipeline / training step                {100 * prep_ms / step_ms:8.1f} %  (target <= 10 %)")


if __name__ == "__main__":
    main()
