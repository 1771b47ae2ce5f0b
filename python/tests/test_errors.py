"""Errors: semat.Error and its kinds mirror semat::Error's, with the library's one-line messages;
bad shapes, dtypes and values are refused with a message, never a crash."""
import numpy as np
import pytest

import semat
from conftest import run_cli, synthetic_scene


@pytest.mark.parametrize("kind", ["ConfigError", "IoError", "DataError", "CheckpointError",
                                  "InvalidArgument", "StateError", "Error"])
def test_each_cpp_kind_becomes_its_python_class(kind):
    with pytest.raises(getattr(semat, kind)) as e:
        semat._semat._raise(kind, f"a {kind} message")
    assert type(e.value) is getattr(semat, kind)
    assert isinstance(e.value, semat.Error) and isinstance(e.value, RuntimeError)
    assert str(e.value) == f"a {kind} message"


def test_python_bases_follow_the_kind():
    assert issubclass(semat.InvalidArgument, ValueError)
    assert issubclass(semat.ConfigError, ValueError)
    assert issubclass(semat.IoError, OSError)


@pytest.mark.parametrize("image, words", [
    (np.zeros((10, 10, 3), np.float32), "uint8"),
    (np.zeros((10, 10, 2), np.uint8), "shape (10, 10, 2)"),
    (np.zeros((10,), np.uint8), "shape (10,)"),
    (np.zeros((0, 10, 3), np.uint8), "empty"),
    (np.zeros((4, 4, 4, 3), np.uint8), "shape (4, 4, 4, 3)"),
    (None, "None"),
    (object(), "shape () dtype object"),
])
def test_bad_images_are_refused_with_their_shape_and_dtype(image, words):
    with pytest.raises(semat.InvalidArgument) as e:
        semat.matte(image, boxes=[0, 0, 5, 5])
    assert words in str(e.value)
    assert "\n" not in str(e.value)


def test_bad_boxes_and_combinations():
    image, truth, box = synthetic_scene()
    with pytest.raises(semat.InvalidArgument, match="shape"):
        semat.matte(image, boxes=[1, 2, 3])
    with pytest.raises(semat.InvalidArgument, match="box 1 of image"):
        semat.matte(image, boxes=[0, 0, 500, 50])
    with pytest.raises(semat.InvalidArgument):
        semat.matte(image, boxes=[50, 50, 10, 10])  # inverted
    with pytest.raises(semat.ConfigError, match="cannot be combined"):
        semat.matte(image, boxes=box, trimap=np.zeros(image.shape[:2], np.uint8))
    with pytest.raises(semat.ConfigError, match="give the subject"):
        semat.matte(image)
    with pytest.raises(semat.DataError, match="same size"):
        semat.matte(image, trimap=np.zeros((5, 5), np.uint8))
    with pytest.raises(semat.DataError):
        semat.matte(image, trimap=np.zeros(image.shape[:2], np.uint8))  # no unknown pixels
    with pytest.raises(semat.InvalidArgument, match="uint8"):
        semat.matte(image, trimap=np.zeros(image.shape[:2], np.float32))


def test_prior_and_precision_are_validated():
    image, _, box = synthetic_scene()
    assert semat.matte(image, boxes=box, prior="grabcut").report["engine"] == "grabcut>rule>closed-form"
    assert semat.matte(image, boxes=box, precision="float32").report["engine"] == "grabcut>rule>closed-form"
    with pytest.raises(semat.ConfigError, match="prior='magic'"):
        semat.matte(image, boxes=box, prior="magic")
    with pytest.raises(semat.ConfigError, match="precision='fp8'"):
        semat.matte(image, boxes=box, precision="fp8")
    # ctest hides the installed models (SEMAT_MODELS is an empty folder): the CLI's one line.
    with pytest.raises(semat.ConfigError, match="make models"):
        semat.matte(image, boxes=box, prior="isnet")

def test_bfloat16_is_refused_where_not_native(monkeypatch):
    image, _, box = synthetic_scene()
    # SEMAT_CPU_BF16=0: the test hook that makes this CPU report no native bf16 units.
    monkeypatch.setenv("SEMAT_CPU_BF16", "0")
    with pytest.raises(semat.ConfigError, match="--precision (bf16|bfloat16): this CPU has no native bfloat16"):
        semat.matte(image, boxes=box, prior="grabcut", precision="bfloat16")
    assert semat.matte(image, boxes=box, prior="grabcut", precision="auto").report["precision"] == "fp32"


def test_same_message_as_the_cli(tmp_path):
    image, _, box = synthetic_scene()
    missing = tmp_path / "missing.png"
    with pytest.raises(semat.IoError) as e:
        semat.matte(str(missing), boxes=box)
    code, _, err = run_cli("matte", missing, "--box", "1,1,5,5", "--out", tmp_path / "o", check=False)
    assert code == 3
    assert err.strip() == f"semat: error: {e.value}"
    # A missing checkpoint (a build without LibTorch has no SAM at all: ConfigError).
    with pytest.raises(semat.IoError if semat._semat._have_models else semat.ConfigError):
        semat.SamPredictor(str(tmp_path / "nope.pth"))
    with pytest.raises(semat.ConfigError):
        semat.matte(image, boxes=box, refine=True)  # refine needs a model alpha


def test_metrics_and_eval_refuse_bad_input(tmp_path):
    a = np.zeros((8, 8), np.float32)
    with pytest.raises(semat.InvalidArgument, match=r"\[2, 2\]"):
        semat.metrics.sad(a + 2, a)
    with pytest.raises(semat.InvalidArgument, match="int64"):
        semat.metrics.sad(a.astype(np.int64), a)
    with pytest.raises(semat.ConfigError, match="trimap"):
        semat.metrics.sad(a, a, protocol="dim")
    with pytest.raises(semat.ConfigError, match="only used by protocol='dim'"):
        semat.metrics.sad(a, a, trimap=np.zeros((8, 8), np.uint8))
    with pytest.raises(semat.ConfigError):
        semat.metrics.sad(a, a, protocol="nope")
    with pytest.raises(semat.InvalidArgument, match="NaN"):
        semat.metrics.mse(a * np.nan, a)
    with pytest.raises(semat.IoError):
        semat.eval(str(tmp_path / "p"), str(tmp_path / "g"))
