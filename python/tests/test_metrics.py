"""semat.metrics and semat.eval against hand-computed values and `semat eval --json`."""
import numpy as np
import pytest

import semat
from conftest import cli_json, synthetic_scene


def test_perfect_prediction_scores_zero():
    _, truth, _ = synthetic_scene()
    truth = np.round(truth * 255).astype(np.uint8)
    unknown = np.full(truth.shape, 128, np.uint8)
    s = semat.metrics.scores(truth, truth, unknown, protocol="dim")
    assert s == {"sad": 0.0, "mse": 0.0, "mad": 0.0, "grad": 0.0, "conn": 0.0}
    assert semat.metrics.sad(truth, truth, unknown, protocol="dim") == 0.0
    # The semat protocol resamples both to long side 1024 (gt in float, pred re-quantised to 8
    # bits), so a perfect prediction scores near zero, not zero.
    assert 0 < semat.metrics.sad(truth, truth) < 0.1


def test_sad_and_mse_by_hand_under_protocol_dim():
    gt = np.zeros((20, 30), np.uint8)
    gt[5:15, 10:20] = 255
    pred = gt.copy()
    pred[5:15, 10:12] = 0  # 20 pixels wrong by 1.0
    trimap = np.full(gt.shape, 128, np.uint8)
    assert semat.metrics.sad(pred, gt, trimap, protocol="dim") == pytest.approx(20 / 1000)
    assert semat.metrics.mse(pred, gt, trimap, protocol="dim") == pytest.approx(20 / 600)
    assert semat.metrics.mad(pred, gt, trimap, protocol="dim") == pytest.approx(20 / 600)
    trimap[:, :11] = 0  # only 10 of the wrong pixels remain in the unknown region
    assert semat.metrics.sad(pred, gt, trimap, protocol="dim") == pytest.approx(10 / 1000)
    assert semat.metrics.grad(pred, gt, trimap, protocol="dim") > 0
    assert semat.metrics.conn(pred, gt, trimap, protocol="dim") > 0


def test_dtypes_mean_the_same_alpha():
    _, truth, _ = synthetic_scene()
    gt8 = np.round(truth * 255).astype(np.uint8)
    pred = np.clip(truth + 0.1 * np.sin(np.arange(truth.size).reshape(truth.shape)), 0, 1)
    p8 = np.round(pred * 255).astype(np.uint8)
    s8 = semat.metrics.scores(p8, gt8)
    assert semat.metrics.scores(p8.astype(np.uint16) * 257, gt8.astype(np.uint16) * 257) == pytest.approx(s8)
    assert semat.metrics.scores(p8 / 255.0, gt8 / 255.0) == pytest.approx(s8)
    assert semat.metrics.scores(p8[..., None], gt8) == s8
    for name in ("sad", "mse", "mad", "grad", "conn"):
        assert getattr(semat.metrics, name)(p8, gt8) == s8[name]
        assert s8[name] > 0


@pytest.mark.parametrize("protocol", ["semat", "dim"])
def test_eval_equals_the_cli(tmp_path, protocol):
    pred_dir, gt_dir, tri_dir = (tmp_path / n for n in ("pred", "gt", "tri"))
    for d in (pred_dir, gt_dir, tri_dir):
        d.mkdir()
    for seed in range(3):
        _, truth, _ = synthetic_scene(h=60 + 10 * seed, w=80, seed=seed)
        gt = np.round(truth * 255).astype(np.uint8)
        noise = np.random.default_rng(seed).normal(0, 0.08, truth.shape)
        pred = np.round(np.clip(truth + noise, 0, 1) * 255).astype(np.uint8)
        trimap = np.where(truth > 0.99, 255, np.where(truth < 0.01, 0, 128)).astype(np.uint8)
        trimap[::7, ::5] = 128
        semat.write_png(str(gt_dir / f"im{seed}.png"), gt)
        semat.write_png(str(pred_dir / f"im{seed}.png"), pred)
        semat.write_png(str(tri_dir / f"im{seed}.png"), trimap)
    extra = ["--trimap", tri_dir] if protocol == "dim" else []
    cli = cli_json("eval", "--pred", pred_dir, "--gt", gt_dir, "--protocol", protocol, "--json", *extra)
    py = semat.eval(pred_dir, gt_dir, trimap_dir=tri_dir if protocol == "dim" else None, protocol=protocol)
    cli.pop("seconds")
    py.pop("seconds")
    assert py == cli
    assert py["count"] == 3 and py["mean"]["sad"] > 0
    # The per-image functions give the per-image numbers of the report.
    im = py["images"][0]
    kw = {"trimap": im["trimap"]} if protocol == "dim" else {}
    assert semat.metrics.scores(im["pred"], im["gt"], protocol=protocol, **kw) == {
        k: im[k] for k in ("sad", "mse", "mad", "grad", "conn")}
