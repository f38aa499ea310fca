"""Speed and faithfulness of the explanations.

    python benchmarks/bench_explain.py speed [--image-size 224] [--budget 1000] [--regions 50]
    python benchmarks/bench_explain.py table [--json] [--model M] [--n 200] [--budget 1000] [--wrist-model W]

``speed`` (paper VGG8 by default) reports three ratios:
* Grad-CAM for one image / one forward + backward pass of that image (target <= 1.5);
* Kernel-SHAP with M regions and B coalitions / the B batched forward passes it needs
  (target <= 1.2);
* Kernel-SHAP / ``shap.KernelExplainer`` driving the same model with the same regions,
  baseline and budget (``l1_reg=False``), when shap is installed (target < 1).

``table`` draws ``--n`` fresh twin phantoms (half of them RA; seed 2, which the bundled
model never saw) and reports, for the bundled model by default:

* the model's AUC and accuracy, and the twin-swap flip rate (the share of RA phantoms
  whose p(RA) falls below 0.5 once their lesions are replaced by their twin's pixels);
* mean p(RA) of the Normal phantoms upright, transposed, and in the worst of their
  eight orientations (is orientation a class cue?);
* for Grad-CAM, Kernel-SHAP and a random map, on the RA phantoms: the pointing game,
  the lesion mass ratio (positive map mass on the lesion mask / the mask's area share;
  1 = no better than uniform), deletion and insertion AUC;
* the cascading-randomisation Spearman correlations on one RA phantom.

``--json`` prints the same as one JSON object. With ``--wrist-model`` also deletion /
insertion and randomisation on ../shared/data/ramw600-wrist-sample (a real data set; no
lesion masks there).
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from minivgg.explain import GradCAM, KernelSHAP  # noqa: E402
from minivgg.explain.checks import (cascading_randomization, deletion_insertion, lesion_mass_ratio,  # noqa: E402
                                    mask_for_model, pointing_game, twin_swap)
from minivgg import VGG8, Tape, load_model  # noqa: E402
from minivgg.augment import orient  # noqa: E402
from minivgg.files import json_safe  # noqa: E402
from minivgg.imageio import load_image  # noqa: E402
from minivgg.metrics import auc_score  # noqa: E402
from minivgg.phantoms import DIFFICULTIES, PhantomSettings, make_phantom, phantom  # noqa: E402
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


def _maps(model, x, target, shap):
    cam = GradCAM(model)(x[None], target).raw[0]
    shap_map = shap(x, target).pixel_map()
    return {"Grad-CAM": cam, "SHAP": shap_map}


def _shap_explainer(model, args):
    baseline = args.baseline if args.baseline in ("mean", "blur") else float(args.baseline)
    return KernelSHAP(model, n_regions=args.regions, segmentation=args.segmentation, baseline=baseline,
                      budget=args.budget)


def phantom_table(model, args):
    """Every number of ``table`` on ``args.n`` fresh twin phantoms (seed ``args.seed``), as one dict."""
    settings = model.preprocessing
    ra = model.class_names.index("RA")
    shap = _shap_explainer(model, args)
    phantoms = [make_phantom(args.seed, i, i % 2, PhantomSettings(difficulty=args.difficulty))
                for i in range(args.n)]
    x = np.stack([preprocess(p.image, settings) for p in phantoms])
    labels = np.array([p.label for p in phantoms])
    p_ra = model.predict_proba(x)[:, ra]
    sick = [p for p in phantoms if p.label == 1]
    swap = twin_swap(model, [p.image for p in sick], [p.twin for p in sick], [p.mask for p in sick], ra)
    rows = {k: {"pointing_game": [], "lesion_mass_ratio": [], "deletion_auc": [], "insertion_auc": []}
            for k in ("Grad-CAM", "SHAP", "random")}
    rng = np.random.default_rng(0)
    for p, xi in zip(sick, x[labels == 1]):
        lesions = mask_for_model(p.mask, settings)
        maps = _maps(model, xi, ra, shap)
        maps["random"] = rng.random(lesions.shape)
        for name, sal in maps.items():
            r = rows[name]
            faithfulness = deletion_insertion(model, xi, sal, ra)
            r["deletion_auc"].append(faithfulness["deletion"])
            r["insertion_auc"].append(faithfulness["insertion"])
            r["pointing_game"].append(pointing_game(sal, lesions))
            r["lesion_mass_ratio"].append(lesion_mass_ratio(sal, lesions))
    normal = x[labels == 0]
    turned = model.predict_proba(np.ascontiguousarray(normal.transpose(0, 1, 3, 2)))[:, ra]
    every = np.stack([model.predict_proba(np.ascontiguousarray(orient(normal.transpose(2, 3, 0, 1), k, m)
                                                               .transpose(2, 3, 0, 1)))[:, ra]
                      for k in range(4) for m in (False, True)])
    result = {"model": str(args.model or "bundled"), "phantoms": {"n": args.n, "ra": len(sick), "seed": args.seed,
                                                                 "difficulty": args.difficulty},
              "auc": auc_score(labels, p_ra), "accuracy": float(np.mean((p_ra > 0.5) == labels)),
              "twin_swap_flip_rate": swap["flip_rate"], "twin_swap_mean_drop": swap["mean_drop"],
              "orientation": {"normal_p_ra": float(p_ra[labels == 0].mean()),
                              "normal_transposed_p_ra": float(turned.mean()),
                              "normal_worst_orientation_p_ra": float(every.max(axis=0).mean())}}
    for name, key in (("Grad-CAM", "gradcam"), ("SHAP", "shap"), ("random", "random")):
        result[key] = {k: float(np.nanmean(v)) for k, v in rows[name].items()}
    result["gradcam"]["layer"] = GradCAM(model).layer
    result["shap"]["settings"] = {"n_regions": args.regions, "segmentation": args.segmentation,
                                  "baseline": args.baseline, "budget": args.budget}
    result["randomization"] = _randomization(model, x[labels == 1][0], ra, args)
    return result


def table(args):
    model = load_model(args.model) if args.model else load_model(ROOT / "minivgg" / "data" / "model.npz")
    result = phantom_table(model, args)
    if args.json:
        print(json.dumps(json_safe(result)))
        return
    ph = result["phantoms"]
    print(f"Phantoms: {ph['n']} fresh twin phantoms (seed {ph['seed']}, {ph['difficulty']}), maps for class RA "
          f"on the {ph['ra']} RA ones; model {result['model']}")
    print(f"AUC {result['auc']:.3f}, accuracy {result['accuracy']:.3f}; twin swap: p(RA) < 0.5 for "
          f"{result['twin_swap_flip_rate']:.2f} of the RA phantoms (mean fall {result['twin_swap_mean_drop']:.3f})")
    o = result["orientation"]
    print(f"Normal phantoms, mean p(RA): upright {o['normal_p_ra']:.3f}, transposed {o['normal_transposed_p_ra']:.3f}, "
          f"worst of 8 orientations {o['normal_worst_orientation_p_ra']:.3f}")
    print(f"Grad-CAM at {result['gradcam']['layer']}; SHAP {result['shap']['settings']}")
    print(f"\n{'map':10}{'pointing game':>15}{'lesion mass ratio':>19}{'deletion AUC':>14}{'insertion AUC':>15}")
    for key in ("gradcam", "shap", "random"):
        r = result[key]
        print(f"{key:10}{r['pointing_game']:15.2f}{r['lesion_mass_ratio']:19.2f}{r['deletion_auc']:14.3f}"
              f"{r['insertion_auc']:15.3f}")
    _print_randomization(result["randomization"])
    if args.wrist_model:
        wrist(args)


def _randomization(model, x, target, args):
    """Cascading-randomisation rows of Grad-CAM and SHAP for one image: {method: {layer: rho}}."""
    return {"gradcam": dict(cascading_randomization(model, lambda m, im, t: GradCAM(m)(im[None], t).raw[0], x,
                                                    target)),
            "shap": dict(cascading_randomization(model, lambda m, im, t: _shap_explainer(m, args)(im, t).pixel_map(),
                                                 x, target))}


def _print_randomization(rows):
    print("\nCascading randomisation (Spearman rho with the original map; near 0 = passes)")
    print(f"{'randomised down to':20}{'Grad-CAM':>10}{'SHAP':>10}")
    for name, rho in rows["gradcam"].items():
        print(f"{name:20}{rho:10.3f}{rows['shap'][name]:10.3f}")


def wrist(args):
    model = load_model(args.wrist_model)
    root = ROOT.parent / "shared" / "data" / "ramw600-wrist-sample"
    target = model.class_names.index("erosive")
    files = sorted((root / "erosive").glob("*.png"))[:args.n]
    rows = {k: {"deletion": [], "insertion": []} for k in ("Grad-CAM", "SHAP", "random")}
    rng = np.random.default_rng(0)
    shap = _shap_explainer(model, args)
    for f in files:
        x = preprocess(load_image(f), model.preprocessing)
        maps = _maps(model, x, target, shap)
        maps["random"] = rng.random(x.shape[1:])
        for name, sal in maps.items():
            for k, v in deletion_insertion(model, x, sal, target).items():
                rows[name][k].append(v)
    print(f"\nReal wrist sample: {len(files)} erosive images, class erosive, model {args.wrist_model}")
    print(f"{'map':10}{'deletion AUC':>14}{'insertion AUC':>15}")
    for name, r in rows.items():
        print(f"{name:10}{np.mean(r['deletion']):14.3f}{np.mean(r['insertion']):15.3f}")
    _print_randomization(_randomization(model, preprocess(load_image(files[0]), model.preprocessing), target, args))


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
    p.add_argument("--n", type=int, default=200, help="fresh phantoms, half of them RA (and wrist images)")
    p.add_argument("--seed", type=int, default=2, help="phantom seed (the bundled model saw seeds 0 and 1)")
    p.add_argument("--difficulty", choices=sorted(DIFFICULTIES), default="medium")
    p.add_argument("--budget", type=int, default=1000, help="SHAP coalitions per image")
    p.add_argument("--regions", type=int, default=50, help="SHAP regions aimed at")
    p.add_argument("--segmentation", choices=["superpixels", "grid"], default="superpixels")
    p.add_argument("--baseline", default="mean", help="SHAP baseline: mean, blur or a number")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    args = parser.parse_args()
    speed(args) if args.what == "speed" else table(args)


if __name__ == "__main__":
    main()
