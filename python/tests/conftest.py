"""Shared fixtures of the binding's tests. Run by ctest (test `python`, label "python") with the
build's package on PYTHONPATH and SEMAT_BINARY / SEMAT_TEST_DATA / SEMAT_SOURCE_DIR set."""
import json
import os
import struct
import subprocess

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("SEMAT_SOURCE_DIR", os.path.abspath(os.path.join(HERE, "..", "..")))
TEST_DATA = os.environ.get("SEMAT_TEST_DATA", os.path.join(SOURCE_DIR, "tests", "data"))
SEMAT_BINARY = os.environ.get("SEMAT_BINARY", os.path.join(SOURCE_DIR, "build", "bin", "semat"))


def synthetic_scene(h=120, w=160, seed=0):
    """A soft-edged disc (warm colours) over a textured cool background, with its true alpha and
    the disc's box. uint8 HxWx3 RGB, float64 HxW alpha, [x0, y0, x1, y1]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    cy, cx, r = h * 0.5, w * 0.45, min(h, w) * 0.3
    d = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
    alpha = np.clip((r - d) / 3.0 + 0.5, 0.0, 1.0)
    fg = np.stack([200 + 30 * np.sin(xx / 7), 90 + 20 * np.cos(yy / 5), 40 + 0 * xx], axis=-1)
    bg = np.stack([30 + 0 * xx, 110 + 40 * np.sin((xx + yy) / 9), 190 + 30 * np.cos(xx / 4)], axis=-1)
    bg += rng.normal(0, 6, bg.shape)
    img = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
    image = np.clip(np.round(img), 0, 255).astype(np.uint8)
    box = [cx - r - 8, cy - r - 8, cx + r + 8, cy + r + 8]
    return image, alpha, [round(v) for v in box]


@pytest.fixture
def scene():
    return synthetic_scene()


def run_cli(*args, check=True):
    """Runs the semat executable; returns (exit code, stdout, stderr)."""
    if not os.path.exists(SEMAT_BINARY):
        pytest.skip(f"no semat executable at {SEMAT_BINARY}")
    p = subprocess.run([SEMAT_BINARY, *map(str, args)], capture_output=True, text=True, timeout=600)
    if check and p.returncode != 0:
        raise AssertionError(f"semat {' '.join(map(str, args))} failed ({p.returncode}): {p.stderr}")
    return p.returncode, p.stdout, p.stderr


def cli_json(*args):
    return json.loads(run_cli(*args)[1])


def read_safetensors(path):
    """{name: numpy array} of a .safetensors file (8-byte header size, JSON header, raw data)."""
    dtypes = {"F32": np.float32, "F64": np.float64, "U8": np.uint8, "I64": np.int64,
              "I32": np.int32, "BOOL": np.bool_, "F16": np.float16}
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    out = {}
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        b, e = spec["data_offsets"]
        out[name] = np.frombuffer(data[8 + n + b:8 + n + e], dtype=dtypes[spec["dtype"]]).reshape(spec["shape"])
    return out


def assert_same_8bit(alpha, want):
    """`alpha` (float in [0, 1]) written as 8 bits equals the alpha PNG read back as k/255 (one
    level apart at most where float32 rounding meets a .5 boundary)."""
    ours = np.round(alpha.astype(np.float64) * 255)
    theirs = np.round(want * 255)
    assert np.abs(ours - theirs).max() <= 1
    assert (ours == theirs).mean() > 0.999
