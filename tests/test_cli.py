"""The bundled model and the demo, predict and explain commands."""

import json

import numpy as np
import pytest

from minivgg.cli import BUNDLED_MODEL, BUNDLED_SAMPLES, main
from minivgg.deploy.modelfile import load_model


def test_bundled_model_is_small_and_documented():
    assert BUNDLED_MODEL.stat().st_size < 10 * 2 ** 20
    model = load_model(BUNDLED_MODEL)
    assert model.class_names == ["Normal", "RA"]
    assert model.preprocessing["wavelet"] == "sym8" and model.preprocessing["crop"] == model.image_size
    metrics = model.extra["test_metrics"]
    assert metrics["auc"] > 0.9 and metrics["n"] == 200
    assert "make_bundled_model" in model.extra["reproduce"]


def test_demo_predicts_the_bundled_samples(capsys):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith(str(BUNDLED_SAMPLES))]
    assert len(lines) == 6
    correct = sum(f"/{line.split(': ')[1].split()[0]}/" in line for line in lines)
    assert correct >= 5


def test_predict_defaults_to_the_bundled_model(capsys):
    ra = sorted((BUNDLED_SAMPLES / "RA").glob("*.png"))[0]
    assert main(["predict", str(ra), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["file"] == str(ra) and record["label"] == "RA"
    assert sum(record["probabilities"].values()) == pytest.approx(1, abs=1e-5)


def test_explain_writes_heatmaps(tmp_path, capsys):
    ra = sorted((BUNDLED_SAMPLES / "RA").glob("*.png"))[0]
    out = tmp_path / "ex"
    assert main(["explain", str(ra), "--out", str(out), "--budget", "60", "--regions", "12", "--save-raw"]) == 0
    stem = ra.stem
    for suffix in ("_gradcam.png", "_shap.png", "_explain.png", "_gradcam.npy", "_shap.npy", "_shap_stderr.npy",
                   "_shap.json"):
        assert (out / f"{stem}{suffix}").stat().st_size > 0
    assert np.load(out / f"{stem}_shap.npy").shape == (128, 128)
    record = json.loads((out / f"{stem}_shap.json").read_text())
    assert record["n_regions"] == 12 and record["n_evaluations"] <= 62 and record["output"] == "probability"
    stdout = capsys.readouterr().out
    assert str(out / f"{stem}_explain.png") in stdout and "SHAP: 12 regions" in stdout and "model calls" in stdout
    assert main(["explain", str(ra), "--out", str(out), "--target", "Gout"]) == 2
    with pytest.raises(SystemExit) as exit_info:
        main(["explain", str(ra), "--out", str(out), "--baseline", "grey"])
    assert exit_info.value.code == 2
    assert not list(out.glob(".*tmp"))                 # no temporary files left behind


def test_explain_cam_option_writes_the_chosen_map(tmp_path, capsys):
    from minivgg.explain import GradCAM
    ra = sorted((BUNDLED_SAMPLES / "RA").glob("*.png"))[0]
    model = load_model(BUNDLED_MODEL).freeze()          # as the command serves it
    x = model.read(ra)[None]
    target = model.class_names.index("RA")
    for cam in ("gradcam", "hirescam"):
        out = tmp_path / cam
        assert main(["explain", str(ra), "--out", str(out), "--method", "gradcam", "--cam", cam, "--save-raw",
                     "--results", str(tmp_path / f"{cam}.jsonl")]) == 0
        record = json.loads((tmp_path / f"{cam}.jsonl").read_text())
        assert record["cam"] == {"method": GradCAM(model, method=cam).name, "layer": "features.14"}
        expected = GradCAM(model, method=cam)(x, target).normalized[0]
        np.testing.assert_allclose(np.load(out / f"{ra.stem}_gradcam.npy"), expected, atol=1e-6)
    with pytest.raises(SystemExit) as exit_info:
        main(["explain", str(ra), "--out", str(tmp_path / "x"), "--cam", "gradcam++"])
    assert exit_info.value.code == 2


def test_explain_logit_tolerance_and_background_options(tmp_path, capsys):
    ra = sorted((BUNDLED_SAMPLES / "RA").glob("*.png"))[0]
    out = tmp_path / "ex"
    argv = ["explain", str(ra), "--out", str(out), "--method", "shap", "--regions", "6", "--budget", "62",
            "--tolerance", "0", "--output", "logit", "--save-raw"]
    assert main(argv) == 0
    record = json.loads((out / f"{ra.stem}_shap.json").read_text())
    assert record["output"] == "logit" and record["exact"] and record["n_evaluations"] == 64
    assert main(["explain", str(ra), "--out", str(out), "--segmentation", "grid", "--background", "merge"]) == 2
    assert "applies to superpixels" in capsys.readouterr().err


def test_predict_writes_shap_maps_with_the_explain_defaults(tmp_path, capsys, monkeypatch):
    from functools import partial

    from minivgg.cli import predict
    from minivgg.explain.settings import ExplainSettings
    # The defaults' path, at a test's cost:
    monkeypatch.setattr(predict, "ExplainSettings", partial(ExplainSettings, budget=30, regions=8))
    ra = sorted((BUNDLED_SAMPLES / "RA").glob("*.png"))[0]
    assert main(["predict", str(ra), "--shap", str(tmp_path / "s")]) == 0
    assert [p.name for p in (tmp_path / "s").iterdir()] == [f"{ra.stem}_shap.png"]


def test_command_line_defaults_are_the_settings_defaults():
    from minivgg.cli.explain import settings_from
    from minivgg.cli.parser import build_parser
    from minivgg.explain.kernelshap import KernelSHAP
    from minivgg.explain.settings import ExplainSettings
    assert settings_from(build_parser().parse_args(["explain", "x.png"])) == ExplainSettings()
    shap = KernelSHAP(None)                      # the explainer's own keyword defaults
    d = ExplainSettings()
    assert (shap.n_regions, shap.budget, shap.tolerance, shap.output, shap.seed) == \
        (d.regions, d.budget, d.tolerance, d.output, d.seed)


def test_predict_writes_heatmaps_and_usage_errors_exit_2(tmp_path, capsys):
    ra = sorted((BUNDLED_SAMPLES / "RA").glob("*.png"))[0]
    assert main(["predict", str(ra), "--gradcam", str(tmp_path / "g")]) == 0
    assert (tmp_path / "g" / f"{ra.stem}_gradcam.png").stat().st_size > 0
    for argv in (["predict"], ["predict", str(ra), "--batch-size", "many"], ["nonsense"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
    assert "Traceback" not in capsys.readouterr().err
