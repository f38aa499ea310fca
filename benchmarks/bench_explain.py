"""Speed and faithfulness of the explanations.

    python benchmarks/bench_explain.py speed [--image-size 224] [--budget 1000] [--regions 50]
    python benchmarks/bench_explain.py table [--model M] [--n 10] [--wrist-model W]

``speed`` (paper VGG8 by default) reports three ratios:
* Grad-CAM for one image / one forward + backward pass of that image (target <= 1.5);
* Kernel-SHAP with M regions and B coalitions / the B batched forward passes it needs
  (target <= 1.2);
* Kernel-SHAP / ``shap.KernelExplainer`` driving the same model with the same regions,
  baseline and budget (``l1_reg=False``), when shap is installed (target < 1).

``table`` prints deletion / insertion AUC, the pointing game and the share of the map on
lesions for Grad-CAM, SHAP and a random map on held-out phantoms (bundled model by
default), and the cascading-randomisation Spearman correlations; with ``--wrist-model``
also deletion / insertion and randomisation on ../shared/data/ramw600-wrist-sample
(a real data set; no lesion masks there).
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from minivgg.explain import GradCAM, KernelSHAP  # noqa: E402
from minivgg.explain.checks import cascading_randomization, deletion_insertion, mask_for_model, mass_on_lesions, pointing_game  # noqa: E402,E501
from minivgg import VGG8, Tape, load_model  # noqa: E402
from minivgg.imageio import load_image  # noqa: E402
from minivgg.phantoms import phantom  # noqa: E402
from minivgg.preprocess import preprocess, preprocessing_settings  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def speed(args):
    model = VGG8(image_size=args.image_size, seed=0)
    # A phantom radiograph, so the superpixels follow anatomy as they would in use.
    x = preprocess(phantom(2, 1, 1, 256)[0], preprocessing_settings(args.image_size))[None]
    cam = GradCAM(model)
    cam(x)                                                       # warm-up (numba cache)

    def forward_backward():
        tape = Tape()
        logits = model.forward(x, tape=tape)
        return model.backward(np.ones_like(logits), tape)
    fb = min(timed(forward_backward)[0] for _ in range(3))
    gc = min(timed(lambda: cam(x))[0] for _ in range(3))
    print(f"Grad-CAM {gc * 1000:.0f} ms, forward+backward {fb * 1000:.0f} ms: ratio {gc / fb:.2f} (target <= 1.5)")

    explainer = KernelSHAP(model, n_regions=args.regions, budget=args.budget, batch_size=32)
    regions = explainer.regions_for(x[0])
    m = int(regions.max()) + 1
    batch = np.repeat(x, 32, axis=0)
    calls = explainer.budget + 2
    t_fwd = timed(lambda: [model.forward(batch[:min(32, calls - i)]) for i in range(0, calls, 32)])[0]
    t_ours, result = timed(lambda: explainer(x[0], target=1, regions=regions))
    print(f"Kernel-SHAP M={m}, {result.n_evaluations} model calls: {t_ours:.1f} s; "
          f"the same forward passes alone {t_fwd:.1f} s: ratio {t_ours / t_fwd:.2f} (target <= 1.2)")
    try:
        import shap
    except ImportError:
        print("shap not installed: KernelExplainer comparison skipped (pip install shap)")
        return
    background = explainer.baseline_for(x[0])

    def f(z):
        out = []
        for i in range(0, len(z), 32):
            keep = np.asarray(z[i:i + 32])[:, regions] > 0.5
            b = np.where(keep[:, None], x[0][None], background[None]).astype(np.float32)
            out.append(model.predict_proba(b, 32)[:, 1])
        return np.concatenate(out)
    ke = shap.KernelExplainer(f, np.zeros((1, m)))
    t_shap, _ = timed(lambda: ke.shap_values(np.ones((1, m)), nsamples=args.budget, l1_reg=False, silent=True))
    print(f"shap.KernelExplainer, same budget: {t_shap:.1f} s: ours / shap = {t_ours / t_shap:.2f} (target < 1)")


def _maps(model, x, target, budget):
    cam = GradCAM(model)(x[None], target).raw[0]
    shap_map = KernelSHAP(model, budget=budget)(x, target).pixel_map()
    return {"Grad-CAM": cam, "SHAP": shap_map}


def table(args):
    model = load_model(args.model) if args.model else load_model(ROOT / "minivgg" / "data" / "model.npz")
    settings = model.preprocessing
    rows = {k: {"deletion": [], "insertion": [], "pointing": [], "mass": [], "area": []}
            for k in ("Grad-CAM", "SHAP", "random")}
    rng = np.random.default_rng(0)
    ra = model.class_names.index("RA")
    for i in range(args.n):
        gray, mask = phantom(2, 2 * i + 1, 1, 256)                  # held-out RA phantoms (seed 2)
        x = preprocess(gray, settings)
        lesions = mask_for_model(mask, settings)
        maps = _maps(model, x, ra, args.budget)
        maps["random"] = rng.random(lesions.shape)
        for name, sal in maps.items():
            r = rows[name]
            r.update({k: r[k] + [v] for k, v in deletion_insertion(model, x, sal, ra).items()})
            r["pointing"].append(pointing_game(sal, lesions))
            share, area = mass_on_lesions(sal, lesions)
            r["mass"].append(share)
            r["area"].append(area)
    print(f"\nPhantoms: {args.n} held-out RA phantoms, class RA, model {args.model or 'bundled'}")
    print(f"{'map':10}{'deletion AUC':>14}{'insertion AUC':>15}{'pointing game':>15}{'mass on lesions':>17}{'lesion area':>13}")
    for name, r in rows.items():
        print(f"{name:10}{np.mean(r['deletion']):14.3f}{np.mean(r['insertion']):15.3f}{np.mean(r['pointing']):15.2f}"
              f"{np.nanmean(r['mass']):17.3f}{np.mean(r['area']):13.3f}")
    gray, _ = phantom(2, 1, 1, 256)
    x = preprocess(gray, settings)
    _print_randomization(model, x, ra, args.budget)
    if args.wrist_model:
        wrist(args)


def _print_randomization(model, x, target, budget):
    cam_rows = cascading_randomization(model, lambda m, im, t: GradCAM(m)(im[None], t).raw[0], x, target)
    shap_rows = cascading_randomization(model, lambda m, im, t: KernelSHAP(m, budget=budget)(im, t).pixel_map(),
                                        x, target)
    print("\nCascading randomisation (Spearman rho with the original map; near 0 = passes)")
    print(f"{'randomised down to':20}{'Grad-CAM':>10}{'SHAP':>10}")
    for (name, a), (_, b) in zip(cam_rows, shap_rows):
        print(f"{name:20}{a:10.3f}{b:10.3f}")


def wrist(args):
    model = load_model(args.wrist_model)
    root = ROOT.parent / "shared" / "data" / "ramw600-wrist-sample"
    target = model.class_names.index("erosive")
    files = sorted((root / "erosive").glob("*.png"))[:args.n]
    rows = {k: {"deletion": [], "insertion": []} for k in ("Grad-CAM", "SHAP", "random")}
    rng = np.random.default_rng(0)
    for f in files:
        x = preprocess(load_image(f), model.preprocessing)
        maps = _maps(model, x, target, args.budget)
        maps["random"] = rng.random(x.shape[1:])
        for name, sal in maps.items():
            for k, v in deletion_insertion(model, x, sal, target).items():
                rows[name][k].append(v)
    print(f"\nReal wrist sample: {len(files)} erosive images, class erosive, model {args.wrist_model}")
    print(f"{'map':10}{'deletion AUC':>14}{'insertion AUC':>15}")
    for name, r in rows.items():
        print(f"{name:10}{np.mean(r['deletion']):14.3f}{np.mean(r['insertion']):15.3f}")
    _print_randomization(model, preprocess(load_image(files[0]), model.preprocessing), target, args.budget)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("speed")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--budget", type=int, default=1000)
    p.add_argument("--regions", type=int, default=50)
    p = sub.add_parser("table")
    p.add_argument("--model")
    p.add_argument("--wrist-model")
    p.add_argument("--n", type=int, default=10)
    p.add_argument("--budget", type=int, default=500)
    args = parser.parse_args()
    speed(args) if args.what == "speed" else table(args)


if __name__ == "__main__":
    main()
