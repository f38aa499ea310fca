"""Honest predictions: temperature scaling, calibration error, the out-of-distribution detector, the model card.

Oracles: a dense grid and centred differences for the temperature, explicit loops for ECE
and Brier, scikit-learn for Ledoit-Wolf, ``np.linalg.solve`` for the Mahalanobis score.
"""

import json

import numpy as np
import pytest
from scipy.special import logsumexp

from minivgg import VGG8, ModelFileError, load_model, save_model
from minivgg.cli import BUNDLED_MODEL, BUNDLED_SAMPLES, main
from minivgg.deploy import Classifier
from minivgg.deploy.modelfile import FORMAT, META_KEY, write_npz
from minivgg.explain import GradCAM
from minivgg.imaging.datasets import FolderDataset, file_list_hash, stratified_split
from minivgg.imaging.phantoms import write_phantoms
from minivgg.imaging.preprocess import preprocess, preprocessing_settings
from minivgg.nn.loss import softmax
from minivgg.nn.model import CONV_RELUS
from minivgg.text import format_probability
from minivgg.training.train import PRESETS
from minivgg.trust.calibration import (
    brier_score,
    calibration_report,
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
)
from minivgg.trust.ood import FEATURE_LAYER, MahalanobisDetector, energy_score, ledoit_wolf
from tests.conftest import TINY, shared_data

TINY_PRESET = dict(channels=(2, 2, 4, 4, 4, 4, 4, 4), hidden=8, image_size=32, epochs=2, batch_size=4, lr=1e-3)


def run(argv, capsys):
    """(exit code, stdout, stderr) of ``minivgg argv``."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


# ---------------------------------------------------------------- temperature scaling, ECE, Brier


def test_temperature_minimises_the_nll(rng):
    true_t = 2.5
    logits = 4 * rng.standard_normal((3000, 3))
    cdf = np.cumsum(softmax(logits / true_t), axis=1)
    labels = (rng.random((3000, 1)) > cdf).sum(axis=1)             # drawn from softmax(z / 2.5): over-confident z
    t, at_bound = fit_temperature(logits, labels)
    assert not at_bound and t == pytest.approx(true_t, rel=0.1)
    grid = np.linspace(0.05, 20, 4000)
    assert negative_log_likelihood(logits, labels, t) <= min(negative_log_likelihood(logits, labels, g)
                                                             for g in grid) + 1e-12
    h = 1e-5                                                                     # dNLL/dT = 0 at the minimum
    slope = (negative_log_likelihood(logits, labels, t + h) - negative_log_likelihood(logits, labels, t - h)) / (2 * h)
    assert abs(slope) < 1e-6


def test_temperature_stops_at_a_bound_when_validation_is_separable():
    logits = np.array([[3.0, -3.0], [-2.0, 2.0], [4.0, 0.0]])
    assert fit_temperature(logits, np.array([0, 1, 0])) == (0.05, True)
    with pytest.raises(ValueError, match="at least one validation image"):
        fit_temperature(np.zeros((0, 2)), np.zeros(0, int))


def test_ece_and_brier_against_loops(rng):
    probs = softmax(3 * rng.standard_normal((500, 3)))
    labels = rng.integers(0, 3, 500)
    conf, pred = probs.max(axis=1), probs.argmax(axis=1)
    ece = 0.0
    for b in range(15):
        lo, hi = b / 15, (b + 1) / 15
        inside = [i for i in range(500) if (lo < conf[i] <= hi) or (b == 0 and conf[i] == 0)]
        if inside:
            ece += len(inside) / 500 * abs(np.mean(pred[inside] == labels[inside]) - np.mean(conf[inside]))
    assert expected_calibration_error(probs, labels) == pytest.approx(ece, abs=1e-12)
    brier = np.mean([sum((probs[i, k] - (labels[i] == k)) ** 2 for k in range(3)) for i in range(500)])
    assert brier_score(probs, labels) == pytest.approx(brier, abs=1e-12)
    # Ten images at confidence 0.8, all right: under-confident by 0.2.
    assert expected_calibration_error(np.tile([0.8, 0.2], (10, 1)), np.zeros(10, int)) == pytest.approx(0.2)
    report = calibration_report(np.log(probs), labels, 1.0)
    assert report["ece_before"] == report["ece_after"] == pytest.approx(ece)


# ---------------------------------------------------------------- the out-of-distribution detector


def test_ledoit_wolf_matches_scikit_learn(rng):
    covariance = pytest.importorskip("sklearn.covariance", reason="scikit-learn is this test's reference oracle")
    x = rng.standard_normal((40, 12)) @ rng.standard_normal((12, 12))
    x[:, 3] = 0                                                   # a channel that never fires
    x -= x.mean(axis=0)
    ours, a = ledoit_wolf(x)
    theirs, b = covariance.ledoit_wolf(x, assume_centered=True)
    assert a == pytest.approx(b, rel=1e-10) and 0 < a < 1
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)


def test_mahalanobis_score_against_an_explicit_solve(rng):
    acts = np.abs(rng.standard_normal((60, 5, 2, 2)))
    labels = np.repeat([0, 1, 2], 20)
    acts[labels == 1] += 1.0
    detector = MahalanobisDetector.fit(acts, labels, 3)
    f = acts.mean(axis=(2, 3))
    means = np.stack([f[labels == k].mean(axis=0) for k in range(3)])
    np.testing.assert_allclose(detector.class_means, means)
    cov, _ = ledoit_wolf(f - means[labels])
    new = np.abs(rng.standard_normal((7, 5, 2, 2))) * 3
    g = new.mean(axis=(2, 3))
    expected = [min((g[n] - means[k]) @ np.linalg.solve(cov, g[n] - means[k]) for k in range(3)) for n in range(7)]
    np.testing.assert_allclose(detector.score(new), expected, rtol=1e-8)
    held_out = detector.score(np.abs(rng.standard_normal((100, 5, 2, 2))))
    fitted = detector.with_threshold(held_out, 0.9)
    assert fitted.threshold == np.quantile(held_out, 0.9) and fitted.n_held_out == 100 and fitted.n_fit == 60
    assert (~fitted.in_distribution(held_out)).mean() == pytest.approx(0.1)
    assert not fitted.in_distribution(fitted.score(acts[:1] + 50)).any()            # far away: flagged
    with pytest.raises(ValueError, match="zero on every training image"):
        MahalanobisDetector.fit(np.zeros((6, 5, 2, 2)), labels[::10], 3)
    with pytest.raises(ValueError, match="no training image of class 2"):
        MahalanobisDetector.fit(acts[:40], labels[:40], 3)


def test_energy_score_is_minus_logsumexp(rng):
    z = 30 * rng.standard_normal((9, 4))
    np.testing.assert_allclose(energy_score(z), -logsumexp(z, axis=1))
    np.testing.assert_allclose(energy_score(z, 2.0), -2 * logsumexp(z / 2, axis=1))


# ---------------------------------------------------------------- the model and its file


def tiny_trusted_model(threshold=5.0, temperature=2.0):
    """A tiny VGG8 with a card, a temperature and a detector (made up, not fitted)."""
    from minivgg.trust.modelcard import new_card
    model = Classifier(VGG8(**TINY, seed=5, class_names=["Normal", "RA"]))
    c = TINY["channels"][CONV_RELUS.index(FEATURE_LAYER)]
    model.ood = MahalanobisDetector(np.zeros((2, c)), np.eye(c), threshold, 0.99, FEATURE_LAYER, 10, 4)
    model.calibration = {"method": "temperature", "temperature": temperature, "n": 4, "at_bound": False,
                         **{f"{k}_{w}": 0.1 for k in ("nll", "ece", "brier") for w in ("before", "after")}}
    model.card = new_card(name="tiny-test", intended_use="testing only", seed=5)
    return model


def test_every_probability_uses_the_temperature(rng):
    model = tiny_trusted_model(temperature=2.0)
    x = rng.standard_normal((3, 3, 32, 32)).astype(np.float32)
    expected = softmax(model.infer(x) / 2.0)
    np.testing.assert_allclose(model.predict_proba(x), expected)
    probs, captured = model.predict_proba(x, capture=(FEATURE_LAYER,))
    np.testing.assert_allclose(probs, expected)
    assert captured[FEATURE_LAYER].shape == (3, TINY["channels"][CONV_RELUS.index(FEATURE_LAYER)], 8, 8)
    np.testing.assert_allclose(GradCAM(model)(x).probabilities, expected, rtol=1e-6)
    found = model.assess(x)
    np.testing.assert_allclose(found.probs, expected)
    np.testing.assert_array_equal(found.in_distribution, found.ood_score <= 5.0)


def test_model_file_keeps_card_temperature_and_detector(tmp_path, rng):
    model = tiny_trusted_model()
    c = TINY["channels"][CONV_RELUS.index(FEATURE_LAYER)]
    wrong = MahalanobisDetector.fit(np.abs(rng.standard_normal((10, c + 1, 1, 1))), np.arange(10) % 2, 2)
    model.ood = wrong.with_threshold([1.0])      # a detector for another layer's width: refused, nothing written
    with pytest.raises(ValueError, match=r"ood.class_means has shape \(2, 5\), expected \(2, 4\)"):
        save_model(model, tmp_path / "w.npz")
    assert not (tmp_path / "w.npz").exists()
    detector = MahalanobisDetector.fit(np.abs(rng.standard_normal((10, c, 1, 1))), np.arange(10) % 2, 2)
    model.ood = detector                         # no threshold yet: refused before anything is written
    with pytest.raises(ValueError, match="ood.threshold"):
        save_model(model, tmp_path / "unfinished.npz")
    model.ood = detector.with_threshold(detector.score(np.abs(rng.standard_normal((4, c, 1, 1)))))
    save_model(model, tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert loaded.card == model.card and loaded.temperature == 2.0 and loaded.calibration == model.calibration
    np.testing.assert_array_equal(loaded.ood.precision, model.ood.precision)
    np.testing.assert_array_equal(loaded.ood.class_means, model.ood.class_means)
    assert (loaded.ood.threshold, loaded.ood.n_fit, loaded.ood.n_held_out) == (model.ood.threshold, 10, 4)
    meta = json.loads(np.load(tmp_path / "m.npz")[META_KEY].tobytes())
    assert meta["format_version"] == 2 and meta["ood"]["method"] == "mahalanobis"
    assert not (tmp_path / "unfinished.npz").exists()


def _rewrite(path, target, change=None, drop=()):
    with np.load(path) as archive:
        contents = {k: archive[k] for k in archive.files if k not in drop}
    meta = json.loads(contents[META_KEY].tobytes())
    if change:
        change(meta)
    contents[META_KEY] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(target, **contents)
    return target


@pytest.mark.parametrize("change,drop,needle", [
    (lambda m: m.pop("card"), (), "card must be an object"),
    (lambda m: m["card"].update(date="yesterday"), (), "card.date must be an ISO 8601"),
    (lambda m: m["card"].update(owner="me"), (), "unknown: owner"),
    (lambda m: m["card"].update(intended_use=""), (), "card.intended_use must be"),
    (lambda m: m["card"].update(trained_on={"source": "x", "images_per_class": {"Normal": 1, "RA": 1},
                                            "validation_images_per_class": {"Normal": 1, "RA": 1},
                                            "files_sha256": "abc"}), (), "files_sha256 must be 64 hex"),
    (lambda m: m["calibration"].update(temperature=0), (), "calibration.temperature must be a number"),
    (lambda m: m["calibration"].update(temperature=float("nan")), (), "calibration.temperature must be a number"),
    (lambda m: m["ood"].update(threshold=-1), (), "ood.threshold must be a number"),
    (lambda m: m["ood"].update(layer="features.0"), (), "ood.layer must be one of features.1, "),
    (None, ("ood.precision",), "missing: ood.precision"),
], ids=["no-card", "card-date", "card-unknown-field", "card-empty-use", "card-hash", "zero-temperature",
        "nan-temperature", "negative-threshold", "ood-layer", "missing-ood-array"])
def test_hostile_trust_metadata_names_the_field(tmp_path, change, drop, needle):
    save_model(tiny_trusted_model(), tmp_path / "good.npz")
    bad = _rewrite(tmp_path / "good.npz", tmp_path / "bad.npz", change, drop)
    with pytest.raises(ModelFileError, match=needle) as err:
        load_model(bad)
    assert "bad.npz" in str(err.value) and "\n" not in str(err.value)


def test_a_precision_matrix_that_is_not_positive_definite_is_refused(tmp_path):
    model = tiny_trusted_model()
    c = len(model.ood.precision)
    model.ood = MahalanobisDetector(model.ood.class_means, -np.eye(c), 1.0, 0.99, FEATURE_LAYER, 10, 4)
    save_model(model, tmp_path / "m.npz")
    with pytest.raises(ModelFileError, match="ood.precision is not a symmetric positive definite"):
        load_model(tmp_path / "m.npz")


def test_format_probability_never_shows_a_certainty_the_model_lacks(rng):
    cases = {0.5: "0.500", 0.9996: "0.9996", 0.0004: "0.0004", 0.99999: "0.99999", 1 - 2e-6: "0.999998",
             1 - 4e-7: "1.000000", 3e-8: "0.000000", 1.0: "1.000000", 0.25: "0.250"}
    for p, text in cases.items():
        assert format_probability(p) == text, p
    ps = np.concatenate([rng.random(2000), 1 - 10.0 ** -rng.uniform(0, 9, 2000), 10.0 ** -rng.uniform(0, 9, 2000)])
    for p in ps:
        shown = float(format_probability(p))
        assert shown not in (0, 1) or abs(shown - p) <= 1e-6, p
        assert abs(shown - p) <= 5e-4


def test_check_finite_covers_the_scores():
    model = tiny_trusted_model()
    probs = np.array([[0.5, 0.5]])
    assert model.check_finite(probs, np.array([1.0])) is probs
    with pytest.raises(ModelFileError, match="tiny-test: output is not finite"):
        model.check_finite(probs, np.array([np.nan]))


# ---------------------------------------------------------------- a tiny phantom run, end to end


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A model trained with `minivgg train` (tiny preset, 24 phantoms) and its data folder."""
    root = tmp_path_factory.mktemp("trust")
    write_phantoms(root / "p", 24, seed=0, size=48)
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(PRESETS, "small", TINY_PRESET)
        assert main(["train", "--data", str(root / "p" / "images"), "--out", str(root / "run"), "--name", "tiny",
                     "--intended-use", "testing the trust features"]) == 0
    return root / "run" / "model.npz", root / "p" / "images", root


def test_train_fits_card_detector_and_temperature_on_its_split(tiny_run):
    path, data, _ = tiny_run
    model = load_model(path)
    ds = FolderDataset(data, model.preprocessing)
    train_idx, val_idx = stratified_split(ds.labels, 0.2, 0)
    card = model.card
    assert card["name"] == "tiny" and card["intended_use"] == "testing the trust features" and card["seed"] == 0
    assert card["command"].startswith("minivgg train --data ") and card["code_version"].startswith("minivgg 0.")
    trained_on = card["trained_on"]
    assert trained_on["files_sha256"] == file_list_hash(ds, train_idx) and trained_on["source"] == "images"
    assert sum(card["trained_on"]["images_per_class"].values()) == len(train_idx)
    assert card["metrics"]["validation"]["n"] == len(val_idx)
    # The temperature and the threshold are exactly those of the validation split.
    x, y = ds.batch(val_idx)
    logits, captured = model.infer(x, capture=(FEATURE_LAYER,))
    fitted, at_bound = fit_temperature(logits, y)
    # A temperature below 1 found at the search's bound (a perfectly separated validation split) is not applied.
    expected = 1.0 if at_bound and fitted < 1 else fitted
    assert model.temperature == expected and model.calibration["n"] == len(val_idx)
    assert model.calibration["at_bound"] == at_bound
    assert model.ood.threshold == np.quantile(model.ood.score(captured[FEATURE_LAYER]), 0.99)
    assert model.ood.n_fit == len(train_idx) and model.ood.n_held_out == len(val_idx)


def test_predict_reports_model_and_flags(tiny_run, tmp_path, capsys):
    path, data, _ = tiny_run
    model = load_model(path)
    code, out, err = run(["predict", data / "RA", "--model", path, "--json"], capsys)
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(lines) == 12
    for record in lines:
        assert record["model"] == "tiny" and isinstance(record["in_distribution"], bool)
        assert record["in_distribution"] == (record["ood_score"] <= model.ood.threshold)
        assert sum(record["probabilities"].values()) == pytest.approx(1, abs=1e-5)
    flagged = sum(not r["in_distribution"] for r in lines)
    assert err.strip().splitlines()[-1].startswith(f"minivgg: {flagged} of 12 images are out of distribution")
    # A detector that flags everything: every text line says so plainly, the exit code stays 0.
    strict = _rewrite(path, tmp_path / "strict.npz", lambda m: m["ood"].update(threshold=0))
    code, out, err = run(["predict", data / "RA", "--model", strict], capsys)
    assert code == 0 and out.count("(out of distribution): the model was not trained on images like this one") == 12
    assert "12 of 12 images are out of distribution for model tiny" in err and err.count("\n") == 1


def test_evaluate_reports_calibration_and_the_share_flagged(tiny_run, capsys):
    path, data, root = tiny_run
    code, out, _ = run(["evaluate", "--model", path, "--data", data, "--out", root / "ev", "--bootstrap", 20], capsys)
    metrics = json.loads((root / "ev" / "metrics.json").read_text())
    c = metrics["calibration"]
    assert code == 0 and c["temperature"] == load_model(path).temperature and c["n"] == 24
    assert {"ece_before", "ece_after", "brier_before", "brier_after", "nll_before", "nll_after"} <= set(c)
    o = metrics["out_of_distribution"]
    assert o["n"] == 24 and o["share"] == o["flagged"] / 24
    assert (root / "ev" / "reliability.png").stat().st_size > 0
    assert "ECE (15 bins)" in out and f"out of distribution: {o['flagged']} of 24 images" in out


def test_calibrate_refits_an_existing_model_exactly_as_training_did(tiny_run, tmp_path, capsys):
    path, data, _ = tiny_run
    trained = load_model(path)
    bare = Classifier(VGG8(**trained.config, class_names=trained.class_names),      # e.g. weights from PyTorch
                      preprocessing=trained.preprocessing)
    bare.load_state_dict(trained.state_dict())
    save_model(bare, tmp_path / "bare.npz")
    assert load_model(tmp_path / "bare.npz").card["trained_on"] is None
    code, out, _ = run(["calibrate", "--model", tmp_path / "bare.npz", "--data", data, "--out", tmp_path / "cal.npz",
                        "--intended-use", "teaching"], capsys)
    refit = load_model(tmp_path / "cal.npz")
    assert code == 0 and "temperature" in out
    assert refit.temperature == trained.temperature and refit.ood.threshold == trained.ood.threshold
    np.testing.assert_allclose(refit.ood.precision, trained.ood.precision)
    assert refit.card["trained_on"] == trained.card["trained_on"] and refit.card["intended_use"] == "teaching"
    code, out, _ = run(["info", "--model", tmp_path / "cal.npz"], capsys)
    assert code == 0 and "intended use:        teaching" in out and "training files:      SHA-256" in out
    code, _, err = run(["calibrate", "--model", tmp_path / "bare.npz", "--data", data, "--out", tmp_path], capsys)
    assert code == 73 and "name the model file" in err


# ---------------------------------------------------------------- old files and NaN


def _old_model_file(model, path):
    """Write ``model`` as minivgg wrote model files before model cards (format 1)."""
    meta = {"format": FORMAT, "format_version": 1, "minivgg_version": "0.1.0", "architecture": "VGG8",
            "config": model.config, "dtype": model.dtype.name, "class_names": model.class_names,
            "preprocessing": model.preprocessing, "extra": {}}
    write_npz(path, model.state_dict(), meta)


def test_a_model_file_of_the_old_format_still_predicts(tmp_path, capsys):
    model = Classifier(VGG8(**{**TINY, "image_size": 64}, seed=2, class_names=["Normal", "RA"]),
                       preprocessing=preprocessing_settings(64))
    _old_model_file(model, tmp_path / "old.npz")
    loaded = load_model(tmp_path / "old.npz")
    assert loaded.card is None and loaded.ood is None and loaded.temperature == 1.0
    sample = sorted((BUNDLED_SAMPLES / "RA").glob("*.png"))[0]
    code, out, err = run(["predict", sample, "--model", tmp_path / "old.npz", "--json"], capsys)
    record = json.loads(out)
    assert code == 0 and record["in_distribution"] is None and record["ood_score"] is None and record["model"] == "old"
    assert "has no out-of-distribution detector" in err
    code, out, _ = run(["info", "--model", tmp_path / "old.npz"], capsys)
    assert code == 0 and "not known (a model file without a card)" in out and "no detector" in out


def test_a_trusted_model_whose_output_is_nan_is_an_error_naming_it(tmp_path, capsys, tiny_run):
    _, data, _ = tiny_run
    model = tiny_trusted_model()
    model.preprocessing = preprocessing_settings(32)
    for p in model.parameters().values():
        p[...] = 3e38                                   # finite weights whose products overflow
    save_model(model, tmp_path / "overflow.npz")
    sample = sorted((BUNDLED_SAMPLES / "RA").glob("*.png"))[0]
    code, out, err = run(["predict", sample, "--model", tmp_path / "overflow.npz", "--json"], capsys)
    assert code == 65 and "overflow.npz: output is not finite" in err and out == ""
    code, out, err = run(["evaluate", "--model", tmp_path / "overflow.npz", "--data", data, "--out", tmp_path / "e"],
                         capsys)
    assert code == 65 and "overflow.npz: output is not finite" in err and not (tmp_path / "e" / "metrics.json").exists()


# ---------------------------------------------------------------- the bundled model


def _unfamiliar_inputs(settings):
    import matplotlib.cbook as cbook

    from minivgg.imaging.imageio import load_image
    rng = np.random.default_rng(0)
    grays = [np.full((200, 200), v, np.float32) for v in (0.0, 0.5, 1.0)]
    grays += [rng.random((200, 200), dtype=np.float32) for _ in range(2)]
    grays.append(load_image(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    return np.stack([preprocess(g, settings) for g in grays])


def test_bundled_model_flags_unfamiliar_images_and_not_its_phantoms():
    model = load_model(BUNDLED_MODEL)
    assert model.card["intended_use"] == "teaching and testing; trained on synthetic phantoms; not for diagnosis"
    assert model.ood is not None and model.calibration is not None
    # Fresh phantoms like its training set (seed 7 was never used): the detector's threshold is the 99%
    # quantile of the validation scores, so about 1% of them are flagged; the target is at most 5%.
    from minivgg.imaging.phantoms import PhantomSettings, make_phantom
    fresh = [make_phantom(7, i, i % 2, PhantomSettings(difficulty="easy")).image for i in range(100)]
    familiar = model.assess(np.stack([preprocess(g, model.preprocessing) for g in fresh]))
    assert (~familiar.in_distribution).mean() <= 0.05
    # The samples the demo and the terminal app show must not carry an out-of-distribution warning.
    samples = sorted(BUNDLED_SAMPLES.glob("*/*.png"))
    shown = model.assess(np.stack([model.read(f) for f in samples]))
    assert len(samples) == 6 and shown.in_distribution.all()
    assert not model.assess(_unfamiliar_inputs(model.preprocessing)).in_distribution.any()


def test_bundled_model_flags_real_radiographs():
    from minivgg.imaging.imageio import load_image
    real = shared_data()
    files = sorted(real.glob("ramw600-wrist-sample/*/*.png")) + sorted(real.glob("pediatric-hands/*.png"))
    if len(files) != 70:
        pytest.skip(f"the 70 real radiographs are not at {real} (a user's fresh clone; set MINIVGG_SHARED_DATA)")
    model = load_model(BUNDLED_MODEL)
    found = model.assess(np.stack([preprocess(load_image(f), model.preprocessing) for f in files]))
    assert (~found.in_distribution).mean() >= 0.95


# ---------------------------------------------------------------- the terminal app


@pytest.mark.parametrize("threshold,flagged", [(0.0, True), (np.inf, False)])
def test_tui_shows_the_model_and_warns_on_a_flagged_image(tmp_path, threshold, flagged):
    import asyncio

    from minivgg.tui.app import MiniVGGApp
    from tests.test_tui import settle, text_of
    model = tiny_trusted_model(threshold=threshold)
    model.preprocessing = preprocessing_settings(32)
    sample = sorted((BUNDLED_SAMPLES / "RA").glob("*.png"))[0]

    async def go():
        app = MiniVGGApp(model, image=sample, out_dir=tmp_path, graphics="halfcell")
        async with app.run_test(size=(130, 40)) as pilot:
            await settle(app, pilot)
            card = text_of(app, "#model-card")
            assert "model: tiny-test" in card and "intended use: testing only" in card
            assert ("OUT OF DISTRIBUTION" in text_of(app, "#verdict")) == flagged
            assert app.query_one("#pictures").has_class("flagged") == flagged           # the red frame
            assert app.current.flagged == flagged
    asyncio.run(go())
