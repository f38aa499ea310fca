"""Speed and faithfulness of the explanations.

    python benchmarks/bench_explain.py speed [--image-size 224] [--budget 1000] [--regions 50]
    python benchmarks/bench_explain.py table [--json] [--model M] [--n 200] [--regions 50] [--budget 2000]
                                             [--difficulty easy] [--wrist-model W]
    python benchmarks/bench_explain.py accuracy [--json] [--seeds 5] [--output probability|logit] [--cache DIR]
    python benchmarks/bench_explain.py stability [--json] [--regions 24] [--budget 2000] [--tolerance 0.01]
    python benchmarks/bench_explain.py command [--json] [--rounds 3] [--images 6] [--against SITE]

``speed`` (paper VGG8 by default) reports three ratios:
* Grad-CAM for one image / one forward + backward pass of that image (target <= 1.5);
* Kernel-SHAP with M regions and B coalitions / the B batched forward passes it needs
  (target <= 1.2);
* Kernel-SHAP / ``shap.KernelExplainer`` driving the same model with the same regions,
  baseline and budget (``l1_reg=False``), when shap is installed (target < 1).

``table`` draws ``--n`` fresh twin phantoms (half of them RA; seed 2, which the bundled
model never saw) and reports, for the bundled model by default and with the product's
default explanation settings (:class:`minivgg.ExplainSettings`, as ``minivgg explain``
uses them; options override them):

* the model's AUC and accuracy, and the twin-swap flip rate (the share of RA phantoms
  whose p(RA) falls below 0.5 once their lesions are replaced by their twin's pixels);
* mean p(RA) of the Normal phantoms upright, transposed, and in the worst of their
  eight orientations (is orientation a class cue?), and the share of them called "RA"
  once blurred by 2 pixels (sigma; is blur a class cue?);
* for Grad-CAM, HiResCAM, Kernel-SHAP and a random map, on the RA phantoms: the pointing game,
  the lesion mass ratio (positive map mass on the lesion mask / the mask's area share;
  1 = no better than uniform), ROAD (p(RA) after removing 10-50% of the pixels, most /
  least relevant first, by noisy linear imputation; the gap LeRF - MoRF, 0 for a random
  ranking) and, for comparison, deletion and insertion AUC;
* the cascading-randomisation Spearman correlations on one RA phantom.

``--json`` prints the same as one JSON object. With ``--wrist-model`` also deletion /
insertion and randomisation on ../shared/data/ramw600-wrist-sample (a real data set; no
lesion masks there).

``accuracy`` measures Kernel-SHAP against exact Shapley values. For each image (three
bundled phantoms and, when ../shared/data is there, three real radiographs) it cuts
M = 12, 13 or 14 superpixels, evaluates the bundled model on all 2^M coalitions (the
exact reference, by enumeration; ``--cache DIR`` keeps these tables), then runs our
estimator, the same without its size and three-way terms ("plain"), the same with
shap's rule for spreading pairs over sizes ("kernel sizes"), and ``shap.KernelExplainer``
(``l1_reg=False``, when shap is installed) with the same number of model calls, budgets
64 ... 1024, over ``--seeds`` seeds. It prints the mean relative L2 error of each, the share of exact values
within 2 standard errors of ours,
how the standard error and the error fall with the calls (log-log slopes; -0.5 is
1/sqrt(calls)), and that a budget covering every coalition gives the exact values.

``stability`` runs Kernel-SHAP with the default settings (or those given) twice, seeds 0
and 1, on each bundled sample with the bundled model, and prints the Spearman rank
correlation of the two maps' region values, the model calls and the largest standard error.

``command`` times what a user waits for: ``minivgg explain IMAGE --method shap`` with the
defaults, one fresh process per bundled sample, and all of them in one process (the
imports paid once), reporting the seconds per image, the model calls and the seconds per call. This checkout's
modules are compiled to bytecode first, as an installation's are.
``--against SITE`` runs the same commands with another minivgg, installed in the folder
SITE (say the version before a change: ``git worktree add /tmp/old COMMIT && pip install
--no-deps --target /tmp/old-site /tmp/old``), *interleaved*: in each round every command
runs once with each version, in an order that flips from round to round, and the report
gives the median over rounds of each command's time ratio, this version / the other.
"""

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from minivgg import VGG8, ExplainSettings, Tape, load_model  # noqa: E402
from minivgg.deploy.classifier import as_classifier  # noqa: E402
from minivgg.explain import GradCAM, KernelSHAP  # noqa: E402
from minivgg.explain.checks import (  # noqa: E402
    cascading_randomization,
    deletion_insertion,
    lesion_mass_ratio,
    mask_for_model,
    pointing_game,
    road,
    twin_swap,
)
from minivgg.explain.settings import BASELINES  # noqa: E402
from minivgg.files import json_safe  # noqa: E402
from minivgg.imaging.augment import orient  # noqa: E402
from minivgg.imaging.imageio import load_image  # noqa: E402
from minivgg.imaging.phantoms import DIFFICULTIES, PhantomSettings, make_phantom, phantom  # noqa: E402
from minivgg.imaging.preprocess import preprocess, preprocessing_settings  # noqa: E402
from minivgg.trust.metrics import auc_score  # noqa: E402
from tests.shared_data import shared_data  # noqa: E402

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


MAPS = (("Grad-CAM", "gradcam"), ("HiResCAM", "hirescam"), ("SHAP", "shap"), ("random", "random"))


def _maps(model, x, target, shap):
    """Grad-CAM, HiResCAM (both at the default layer) and SHAP maps (S, S) of one image (3, S, S)."""
    return {"Grad-CAM": GradCAM(model)(x[None], target).raw[0],
            "HiResCAM": GradCAM(model, method="hirescam")(x[None], target).raw[0],
            "SHAP": shap(x, target).pixel_map()}


def _settings(args):
    """The explanation settings of the run: the product's defaults, with what the options change."""
    baseline = args.baseline if args.baseline in BASELINES else float(args.baseline)
    return ExplainSettings(regions=args.regions, segmentation=args.segmentation, baseline=baseline,
                           budget=args.budget, tolerance=args.tolerance)


def _shap_explainer(model, args):
    return as_classifier(model).explainers(_settings(args))[1]


BLUR_SIGMA = 2.0          # pixels of the phantom image


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
    rows = {k: {"pointing_game": [], "lesion_mass_ratio": [], "road_morf": [], "road_lerf": [], "road_gap": [],
                "deletion_auc": [], "insertion_auc": []} for k, _ in MAPS}
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
            curves = road(model, xi, sal, ra)
            r["road_morf"].append(np.mean(curves["morf"]))
            r["road_lerf"].append(np.mean(curves["lerf"]))
            r["road_gap"].append(np.mean(curves["lerf"]) - np.mean(curves["morf"]))
            r["pointing_game"].append(pointing_game(sal, lesions))
            r["lesion_mass_ratio"].append(lesion_mass_ratio(sal, lesions))
    normal = x[labels == 0]
    every = np.stack([model.predict_proba(np.ascontiguousarray(orient(normal.transpose(2, 3, 0, 1), k, m)
                                                               .transpose(2, 3, 0, 1)))[:, ra]
                      for k in range(4) for m in (False, True)])
    turned = every[7]                       # three quarter-turns then a mirror: the transpose
    healthy = [p for p in phantoms if p.label == 0]
    blurred = np.stack([preprocess(ndimage.gaussian_filter(p.image, BLUR_SIGMA), settings) for p in healthy])
    result = {"model": str(args.model or "bundled"), "phantoms": {"n": args.n, "ra": len(sick), "seed": args.seed,
                                                                 "difficulty": args.difficulty},
              "auc": auc_score(labels, p_ra), "accuracy": float(np.mean((p_ra > 0.5) == labels)),
              "twin_swap_flip_rate": swap["flip_rate"], "twin_swap_mean_drop": swap["mean_drop"],
              "orientation": {"normal_p_ra": float(p_ra[labels == 0].mean()),
                              "normal_transposed_p_ra": float(turned.mean()),
                              "normal_worst_orientation_p_ra": float(every.max(axis=0).mean())},
              "blur": {"sigma": BLUR_SIGMA,
                       "normal_called_ra": float(np.mean(model.predict_proba(blurred)[:, ra] > 0.5))},
              "defaults": {"cam": ExplainSettings().cam, "baseline": ExplainSettings().baseline,
                           "tolerance": ExplainSettings().tolerance}}
    for name, key in MAPS:
        result[key] = {k: float(np.nanmean(v)) for k, v in rows[name].items()}
    result["gradcam"]["layer"] = result["hirescam"]["layer"] = GradCAM(model).layer
    s = _settings(args)
    result["shap"]["settings"] = {"n_regions": s.regions, "segmentation": s.segmentation, "baseline": s.baseline,
                                  "budget": s.budget, "tolerance": s.tolerance}
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
          f"worst of 8 orientations {o['normal_worst_orientation_p_ra']:.3f}; called RA once blurred "
          f"(sigma {result['blur']['sigma']:g} px): {result['blur']['normal_called_ra']:.0%}")
    print(f"Grad-CAM and HiResCAM at {result['gradcam']['layer']}; SHAP {result['shap']['settings']}")
    print(f"\n{'map':10}{'pointing':>9}{'mass ratio':>11}{'ROAD MoRF':>10}{'ROAD LeRF':>10}{'ROAD gap':>9}"
          f"{'deletion':>9}{'insertion':>10}")
    for _, key in MAPS:
        r = result[key]
        print(f"{key:10}{r['pointing_game']:9.2f}{r['lesion_mass_ratio']:11.2f}{r['road_morf']:10.3f}"
              f"{r['road_lerf']:10.3f}{r['road_gap']:9.3f}{r['deletion_auc']:9.3f}{r['insertion_auc']:10.3f}")
    _print_randomization(result["randomization"])
    if args.wrist_model:
        wrist(args)


def _randomization(model, x, target, args):
    """Cascading-randomisation rows of Grad-CAM, HiResCAM and SHAP for one image: {method: {layer: rho}}."""
    def cam(method):
        return dict(cascading_randomization(model, lambda m, im, t: GradCAM(m, method=method)(im[None], t).raw[0],
                                            x, target))
    return {"gradcam": cam("gradcam"), "hirescam": cam("hirescam"),
            "shap": dict(cascading_randomization(model, lambda m, im, t: _shap_explainer(m, args)(im, t).pixel_map(),
                                                 x, target))}


def _print_randomization(rows):
    print("\nCascading randomisation (Spearman rho with the original map; near 0 = passes)")
    print(f"{'randomised down to':20}{'Grad-CAM':>10}{'HiResCAM':>10}{'SHAP':>10}")
    for name, rho in rows["gradcam"].items():
        print(f"{name:20}{rho:10.3f}{rows['hirescam'][name]:10.3f}{rows['shap'][name]:10.3f}")


def wrist(args):
    model = load_model(args.wrist_model)
    root = ROOT.parent / "shared" / "data" / "ramw600-wrist-sample"
    target = model.class_names.index("erosive")
    files = sorted((root / "erosive").glob("*.png"))[:args.n]
    rows = {k: {"deletion": [], "insertion": []} for k, _ in MAPS}
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


ACCURACY_BUDGETS = (64, 128, 256, 512, 1024)


def accuracy_images():
    """(name, path, M) for the accuracy benchmark, and a note when the real radiographs are missing."""
    samples = ROOT / "minivgg" / "data" / "samples"
    images = [(p.name, p, m) for p, m in ((samples / "RA" / "ra_00003.png", 12), (samples / "Normal" /
                                          "normal_00000.png", 13), (samples / "RA" / "ra_00001.png", 14))]
    real = shared_data()
    picks = [real / "ramw600-wrist-sample" / "erosive" / "0016_0001_L.png",
             real / "ramw600-wrist-sample" / "non_erosive", real / "pediatric-hands" / "boneage-example-1.png"]
    if not real.is_dir():
        return images, f"real radiographs skipped: {real} is absent (set MINIVGG_SHARED_DATA)"
    picks[1] = sorted(picks[1].glob("*.png"))[0]
    return images + [(p.name, p, m) for p, m in zip(picks, (12, 13, 14))], ""


def coalition_table(model, path, m, output, cache):
    """(v over all 2^M coalitions indexed by the bits of z, regions): the bundled model on every coalition."""
    x = model.read(path)
    explainer = KernelSHAP(model, n_regions=m, output=output, batch_size=64)
    regions = explainer.regions_for(x)
    # The model's weights and temperature are part of the key: a rebuilt or recalibrated
    # bundled model must not reuse old tables.
    weights = hashlib.sha256(b"".join(np.ascontiguousarray(p).tobytes() for p in model.parameters().values())
                             + repr(model.temperature).encode()).hexdigest()
    key = cache / f"{Path(path).stem}_{m}_{output}_{weights[:12]}.npz" if cache else None
    if key and key.exists():
        stored = np.load(key)
        if np.array_equal(stored["regions"], regions):
            return stored["values"], regions
    background = explainer.baseline_for(x).astype(model.dtype)
    bits = (np.arange(2 ** m)[:, None] >> np.arange(m)) & 1
    values = np.empty(2 ** m)
    for i in range(0, 2 ** m, 256):
        keep = bits[i:i + 256][:, regions].astype(bool)
        values[i:i + 256] = explainer.output_of(np.where(keep[:, None], x[None], background[None]),
                                                model.class_names.index("RA"))
    if key:
        key.parent.mkdir(parents=True, exist_ok=True)
        np.savez(key, values=values, regions=regions)
    return values, regions


def exact_shapley(values, m):
    """Shapley values by enumeration: phi_i = sum_S |S|! (m-|S|-1)! / m! (v(S + i) - v(S))."""
    from math import factorial
    index = np.arange(2 ** m)
    size = np.array([bin(i).count("1") for i in index])
    weight = np.array([factorial(k) * factorial(m - k - 1) / factorial(m) for k in range(m)])
    phi = np.zeros(m)
    for i in range(m):
        without = index[(index >> i) & 1 == 0]
        phi[i] = np.sum(weight[size[without]] * (values[without | (1 << i)] - values[without]))
    return phi


def shap_reference(game, m, budget, seed):
    """shap.KernelExplainer (l1_reg=False) on the same game and model calls, or None without shap."""
    try:
        import shap
    except ImportError:
        return None
    import logging
    logging.getLogger("shap").setLevel(logging.ERROR)
    np.random.seed(seed)                                       # shap samples with numpy's global generator
    explainer = shap.KernelExplainer(lambda z: game(np.asarray(z) > 0.5), np.zeros((1, m)))
    return np.asarray(explainer.shap_values(np.ones((1, m)), nsamples=budget, l1_reg=False, silent=True)).ravel()


def accuracy(args):
    from minivgg.explain import explain_function
    model = load_model(ROOT / "minivgg" / "data" / "model.npz")
    images, note = accuracy_images()
    rows, per_image = {}, []
    exactness = []
    for name, path, m in images:
        values, _ = coalition_table(model, path, m, args.output, Path(args.cache) if args.cache else None)
        game = lambda z, values=values, m=m: values[np.asarray(z).astype(np.int64) @ (1 << np.arange(m))]  # noqa: E731
        phi = exact_shapley(values, m)
        norm = np.linalg.norm(phi)
        full = explain_function(game, m, budget=2 ** m)
        exactness.append(float(np.abs(full.values - phi).max()))
        for budget in ACCURACY_BUDGETS:
            for seed in range(args.seeds):
                ours = explain_function(game, m, budget, seed=seed)
                plain = explain_function(game, m, budget, seed=seed, interactions=False)
                kernel = explain_function(game, m, budget, seed=seed, allocation="kernel")
                theirs = shap_reference(game, m, budget, seed)
                r = rows.setdefault(budget, {"ours": [], "plain": [], "kernel_sizes": [], "shap": [], "covered": [],
                                             "stderr": []})
                for key, estimate in (("ours", ours), ("plain", plain), ("kernel_sizes", kernel)):
                    r[key].append(np.linalg.norm(estimate.values - phi) / norm)
                if theirs is not None:
                    r["shap"].append(np.linalg.norm(theirs - phi) / norm)
                r["covered"] += (np.abs(ours.values - phi) <= 2 * ours.stderr).tolist()
                r["stderr"].append(np.mean(ours.stderr) / norm)
        per_image.append({"image": name, "M": m, "fx_minus_base": float(values[-1] - values[0]),
                          "norm_phi": float(norm)})
        if not args.json:
            print(f"{name}: M = {m}, |fx - base| = {abs(values[-1] - values[0]):.4f}, |phi| = {norm:.4f}", flush=True)
    budgets = list(rows)
    table_rows = []
    for b in budgets:
        r = rows[b]
        shap_err = float(np.mean(r["shap"])) if r["shap"] else None
        table_rows.append({"budget": b, "ours": float(np.mean(r["ours"])), "plain": float(np.mean(r["plain"])),
                           "kernel_sizes": float(np.mean(r["kernel_sizes"])), "shap": shap_err,
                           "ratio": float(np.mean(r["ours"])) / shap_err if shap_err else None,
                           "coverage": float(np.mean(r["covered"])), "mean_rel_stderr": float(np.mean(r["stderr"]))})
    calls = np.log([b + 2 for b in budgets])
    slope = lambda key: float(np.polyfit(calls, np.log([t[key] for t in table_rows]), 1)[0])   # noqa: E731
    report = {"output": args.output, "seeds": args.seeds, "images": per_image, "note": note, "rows": table_rows,
              "coverage": float(np.mean([c for r in rows.values() for c in r["covered"]])),
              "stderr_slope": slope("mean_rel_stderr"), "error_slope": slope("ours"),
              "max_error_at_full_budget": max(exactness)}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    if note:
        print(note)
    print(f"\nmean relative L2 error, {len(images)} images x {args.seeds} seeds, output {args.output}")
    print("(plain: without the size and three-way terms; kernel sizes: pairs spread over sizes by the kernel's")
    print(" weight, shap's rule, instead of equally; coverage: exact values within 2 of our standard errors)")
    print(f"{'budget':>7}{'ours':>9}{'plain':>9}{'kernel sizes':>14}{'shap':>9}{'ours/shap':>11}{'coverage':>10}")
    for t in table_rows:
        shap_cols = f"{t['shap']:9.4f}{t['ratio']:11.2f}" if t["shap"] is not None else f"{'-':>9}{'-':>11}"
        print(f"{t['budget']:7d}{t['ours']:9.4f}{t['plain']:9.4f}{t['kernel_sizes']:14.4f}{shap_cols}"
              f"{t['coverage']:10.2f}")
    print(f"coverage (exact value within 2 stderr): {report['coverage']:.3f}")
    print(f"log-log slope against calls: stderr {report['stderr_slope']:.2f}, error {report['error_slope']:.2f}"
          f" (-0.5: 1/sqrt(calls))")
    print(f"largest error with a budget covering every coalition: {report['max_error_at_full_budget']:.1e}")


def stability(args):
    from scipy.stats import spearmanr
    model = load_model(ROOT / "minivgg" / "data" / "model.npz")
    rows = []
    for path in sorted((ROOT / "minivgg" / "data" / "samples").rglob("*.png")):
        x = model.read(path)
        runs = [KernelSHAP(model, n_regions=args.regions, budget=args.budget, tolerance=args.tolerance,
                           output=args.output, seed=seed)(x) for seed in (0, 1)]
        rho = float(spearmanr(runs[0].values, runs[1].values)[0])
        change = abs(runs[0].fx - runs[0].base_value)
        rows.append({"image": path.name, "rank_correlation": rho, "n_regions": runs[0].n_regions,
                     "calls": [r.n_evaluations for r in runs], "max_stderr_over_change": [
                         r.max_stderr / change for r in runs], "fx_minus_base": runs[0].fx - runs[0].base_value})
        if not args.json:
            print(f"{path.name}: rank correlation {rho:.3f}, {runs[0].n_regions} regions, calls "
                  f"{rows[-1]['calls']}, largest stderr / |fx - base| "
                  f"{', '.join(f'{v:.4f}' for v in rows[-1]['max_stderr_over_change'])}", flush=True)
    report = {"settings": {k: getattr(args, k) for k in ("regions", "budget", "tolerance", "output")},
              "rows": rows, "min_rank_correlation": min(r["rank_correlation"] for r in rows),
              "mean_rank_correlation": float(np.mean([r["rank_correlation"] for r in rows]))}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"rank correlation between seeds: min {report['min_rank_correlation']:.3f}, "
              f"mean {report['mean_rank_correlation']:.3f}")


# A Python program that runs the minivgg command line of another installation (``--against``): it drops this
# checkout's editable import hook, puts that folder first, and calls what its console script calls
# (``command``, or ``main`` in versions before it).
_OTHER_MINIVGG = ("import sys; sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f).lower()]; "
                  "sys.path.insert(0, {site!r}); import minivgg.cli as cli; sys.argv[0] = 'minivgg'; "
                  "sys.exit(getattr(cli, 'command', cli.main)())")


def _explain_command(site, images, out):
    start = [sys.executable, "-c", _OTHER_MINIVGG.format(site=site)] if site else [sys.executable, "-m",
                                                                                       "minivgg.cli"]
    return start + ["explain", *map(str, images), "--method", "shap", "--out", str(out)]


def _run_timed(cmd):
    import re
    import subprocess
    t = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - t
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd[-6:])}: exit {done.returncode}: {done.stderr.strip()[-500:]}")
    return seconds, [int(n) for n in re.findall(r"(\d+) model calls", done.stdout)]


def command(args):
    import compileall
    import shutil
    import tempfile
    images = sorted((ROOT / "minivgg" / "data" / "samples").rglob("*.png"))[:args.images]
    # Both versions run from compiled bytecode, as an installed package does (pip compiles it at
    # install). A checkout run with PYTHONDONTWRITEBYTECODE set would compile its sources again in
    # every process: 0.1 s that a user does not wait for.
    for folder in ("minivgg", "explain", "tui"):
        compileall.compile_dir(ROOT / folder, quiet=1)
    jobs = [(p.name, [p]) for p in images] + [(f"all {len(images)} in one process", images)]
    versions = ["this"] + (["other"] if args.against else [])
    times = {(v, name): [] for v in versions for name, _ in jobs}
    calls = {}
    work = Path(tempfile.mkdtemp(prefix="bench-explain-command-"))
    try:
        for r in range(args.rounds + 1):                        # round 0 warms both up (numba's caches)
            for name, paths in jobs:
                for v in (versions if r % 2 == 0 else versions[::-1]):
                    out = work / f"{v}-{r}"
                    seconds, found = _run_timed(_explain_command(args.against if v == "other" else None, paths, out))
                    shutil.rmtree(out, ignore_errors=True)
                    if r:
                        times[(v, name)].append(seconds / len(paths))
                        calls[(v, name)] = found
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = []
    for name, paths in jobs:
        row = {"command": name, "images": len(paths)}
        for v in versions:
            per_image = float(np.median(times[(v, name)]))
            n = float(np.mean(calls[(v, name)]))
            row[v] = {"seconds_per_image": per_image, "model_calls_per_image": n, "ms_per_call": per_image / n * 1000,
                      "rounds": [round(t, 3) for t in times[(v, name)]]}
        if args.against:
            ratios = [a / b for a, b in zip(times[("this", name)], times[("other", name)])]
            row["ratio"], row["ratio_spread"] = float(np.median(ratios)), [min(ratios), max(ratios)]
        rows.append(row)
    if args.json:
        print(json.dumps({"against": args.against, "rounds": args.rounds, "rows": rows}, indent=2))
        return
    print("minivgg explain IMAGE --method shap (defaults); median over rounds; ms/call = all the time / the calls")
    for row in rows:
        line = f"{row['command']:24}"
        for v in versions:
            line += (f" | {v}: {row[v]['seconds_per_image']:.2f} s/image, {row[v]['model_calls_per_image']:.0f} calls, "
                     f"{row[v]['ms_per_call']:.2f} ms/call")
        if args.against:
            line += f" | ratio {row['ratio']:.2f} ({row['ratio_spread'][0]:.2f}-{row['ratio_spread'][1]:.2f})"
        print(line, flush=True)


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
    p.add_argument("--difficulty", choices=sorted(DIFFICULTIES), default="easy",
                   help="of the phantoms (the bundled model was trained on easy ones)")
    d = ExplainSettings()                              # the product's defaults
    p.add_argument("--budget", type=int, default=d.budget, help="SHAP model calls per image at most")
    p.add_argument("--tolerance", type=float, default=d.tolerance, help="SHAP stops at this share of the map's scale")
    p.add_argument("--regions", type=int, default=d.regions, help="SHAP regions aimed at")
    p.add_argument("--segmentation", choices=["superpixels", "grid"], default=d.segmentation)
    p.add_argument("--baseline", default=d.baseline, help="SHAP baseline: air, mean, blur or a number")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p = sub.add_parser("accuracy")
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--output", choices=["probability", "logit"], default="probability")
    p.add_argument("--cache", help="folder keeping the exact coalition tables between runs")
    p = sub.add_parser("stability")
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.add_argument("--regions", type=int, default=d.regions)
    p.add_argument("--budget", type=int, default=d.budget)
    p.add_argument("--tolerance", type=float, default=d.tolerance)
    p.add_argument("--output", choices=["probability", "logit"], default="probability")
    p = sub.add_parser("command")
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--images", type=int, default=6, help="the first N bundled samples")
    p.add_argument("--against", help="a folder with another minivgg installed (pip install --target), to compare")
    args = parser.parse_args()
    {"speed": speed, "table": table, "accuracy": accuracy, "stability": stability,
     "command": command}[args.what](args)


if __name__ == "__main__":
    main()
