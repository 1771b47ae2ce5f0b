"""Matting metrics exactly as `semat eval` computes them (C++ semat::metrics).

pred and gt: numpy arrays HxW (uint8 read as k/255, uint16 as k/65535, float32/float64 in [0, 1])
or paths. protocol "semat" (SEMat's evaluator: the whole image at long side 1024, pred resized
to gt's evaluation size; trimap must be None) or "dim" (Composition-1k: the trimap's unknown
region, value 128, at the original size; trimap required, uint8 HxW or a path). Scalings as the
reference code: SAD, Grad and Conn are sums / 1000; MSE and MAD are means on the [0, 1] scale.
"""
from __future__ import annotations

import os
from typing import Any, Optional

from . import _semat

__all__ = ["scores", "sad", "mse", "mad", "grad", "conn", "eval"]


def scores(pred: Any, gt: Any, trimap: Any = None, protocol: str = "semat") -> dict:
    """All five metrics at once: {"sad", "mse", "mad", "grad", "conn"} (cheaper than five calls)."""
    return _semat._scores(pred, gt, trimap, protocol)


def sad(pred, gt, trimap=None, protocol="semat") -> float:
    return scores(pred, gt, trimap, protocol)["sad"]


def mse(pred, gt, trimap=None, protocol="semat") -> float:
    return scores(pred, gt, trimap, protocol)["mse"]


def mad(pred, gt, trimap=None, protocol="semat") -> float:
    return scores(pred, gt, trimap, protocol)["mad"]


def grad(pred, gt, trimap=None, protocol="semat") -> float:
    return scores(pred, gt, trimap, protocol)["grad"]


def conn(pred, gt, trimap=None, protocol="semat") -> float:
    return scores(pred, gt, trimap, protocol)["conn"]


def eval(pred_dir, gt_dir=None, trimap_dir=None, protocol: str = "semat",  # noqa: A001
         allow_missing: bool = False, threads: int = 0, dataset: Optional[str] = None,
         root=None) -> dict:
    """`semat eval --pred PRED_DIR --gt GT_DIR [--trimap DIR] [--protocol P] --json` as a dict:
    protocol, count, mean {sad, mse, mad, grad, conn}, images [...], skipped {...}, gt_dir,
    seconds (and dataset with dataset=/root=, the CLI's --dataset/--root)."""
    f = lambda p: "" if p is None else os.fspath(p)  # noqa: E731
    return _semat._eval(f(pred_dir), f(gt_dir), f(trimap_dir), protocol, bool(allow_missing),
                        int(threads), f(dataset), f(root))
