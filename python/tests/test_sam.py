"""semat.SamPredictor and semat.segment_anything against the official predictor's outputs stored
with the sam_tiny fixture (tests/data/sam_tiny; random weights, official key names), with the C++
tests' tolerance (1e-4 max abs error)."""
import json
import os

import numpy as np
import pytest

import semat
from conftest import assert_same_8bit, TEST_DATA, read_safetensors

DIR = os.path.join(TEST_DATA, "sam_tiny")
TOL = 1e-4

pytestmark = pytest.mark.skipif(not semat._semat._have_models, reason="build without LibTorch")


@pytest.fixture(scope="module")
def predictor():
    p = semat.SamPredictor(os.path.join(DIR, "sam_tiny.pth"), model_type="tiny", device="cpu")
    p.set_image(semat.read_image(os.path.join(DIR, "image.png")))
    return p


@pytest.fixture(scope="module")
def reference():
    return read_safetensors(os.path.join(DIR, "reference_outputs.safetensors"))


def prompts():
    with open(os.path.join(DIR, "fixture.json")) as f:
        return json.load(f)["prompts"]


def kwargs_of(spec):
    kw = {}
    if "box" in spec:
        kw["box"] = np.array(spec["box"])
    if "point_coords" in spec:
        kw["point_coords"] = np.array(spec["point_coords"])
        kw["point_labels"] = np.array(spec["point_labels"])
    return kw


def test_the_fixture_has_prompts():
    assert len(prompts()) >= 3


@pytest.mark.parametrize("case", sorted(prompts()))
@pytest.mark.parametrize("multi", [True, False])
def test_predict_reproduces_the_official_outputs(predictor, reference, case, multi):
    key = f"{case}_{'multi' if multi else 'single'}"
    masks, iou, low = predictor.predict(**kwargs_of(prompts()[case]), multimask_output=multi)
    logits, _, _ = predictor.predict(**kwargs_of(prompts()[case]), multimask_output=multi,
                                     return_logits=True)
    want_logits = reference[key + ".mask_logits"]
    c = 3 if multi else 1
    h, w = semat.read_image(os.path.join(DIR, "image.png")).shape[:2]
    assert masks.dtype == np.bool_ and masks.shape == (c, h, w)
    assert iou.dtype == np.float32 and iou.shape == (c,)
    assert low.dtype == np.float32 and low.shape == (c,) + reference[key + ".low_res_logits"].shape[1:]
    assert logits.dtype == np.float32 and logits.shape == (c, h, w)
    assert np.abs(logits - want_logits).max() <= TOL
    assert np.abs(low - reference[key + ".low_res_logits"]).max() <= TOL
    assert np.abs(iou - reference[key + ".iou_predictions"]).max() <= TOL
    assert np.array_equal(masks, logits > 0.0)
    # Masks agree with the official ones except where a logit is within the tolerance of 0.
    sure = np.abs(want_logits) > TOL
    assert np.array_equal(masks[sure], (want_logits > 0)[sure])


def test_image_embedding_and_state(predictor, reference):
    emb = predictor.get_image_embedding()
    assert emb.dtype == np.float32 and emb.shape == reference["image_embeddings"].shape
    assert np.abs(emb - reference["image_embeddings"]).max() <= TOL
    assert predictor.is_image_set
    assert predictor.original_size == semat.read_image(os.path.join(DIR, "image.png")).shape[:2]
    assert predictor.model_type == "tiny" and predictor.device == "cpu"


def test_bgr_input_and_mask_input(predictor):
    image = semat.read_image(os.path.join(DIR, "image.png"))
    box = np.array(prompts()["box"]["box"])
    # The tiny config's window size and global-attention layers cannot be told from tensor
    # shapes, so the fixture needs model_type="tiny" (the official sizes are found by "auto").
    p2 = semat.SamPredictor(os.path.join(DIR, "sam_tiny.safetensors"), model_type="tiny", device="cpu")
    p2.set_image(np.ascontiguousarray(image[..., ::-1]), image_format="BGR")
    a = predictor.predict(box=box, multimask_output=False, return_logits=True)
    b = p2.predict(box=box, multimask_output=False, return_logits=True)
    for x, y in zip(a, b):
        assert np.abs(x - y).max() <= TOL
    # An earlier low-res output as mask_input (1xHxW), as in SAM's notebooks.
    _, _, low = predictor.predict(box=box, multimask_output=False)
    masks, iou, low2 = predictor.predict(box=box, mask_input=low[:1], multimask_output=False)
    assert masks.shape[0] == 1 and np.isfinite(low2).all()
    assert not np.array_equal(low2, low)  # the mask prompt changes the decoder's input


def test_rgb_and_bgr_input_give_identical_outputs():
    """RGB is read in place (no copy) and BGR converted: the network's input is the same, so
    the embedding and every output are identical, bit for bit, for every way of passing them."""
    image = semat.read_image(os.path.join(DIR, "image.png"))
    bgr = np.ascontiguousarray(image[..., ::-1])
    assert semat._semat._image_copies(image, "RGB") == (0, True, "RGB")
    p = semat.SamPredictor(os.path.join(DIR, "sam_tiny.pth"), model_type="tiny", device="cpu")
    box = np.array(prompts()["box"]["box"])
    outputs = []
    for given, fmt in [(image, "RGB"), (bgr, "BGR"), (bgr[..., ::-1], "RGB"), (image[..., ::-1], "BGR")]:
        p.set_image(given, image_format=fmt)
        outputs.append((p.get_image_embedding(), *p.predict(box=box, multimask_output=True, return_logits=True)))
    for other in outputs[1:]:
        for x, y in zip(outputs[0], other):
            assert np.array_equal(x, y)
    # The same pixels declared in the wrong order are another picture to the network.
    p.set_image(image, image_format="BGR")
    assert not np.array_equal(p.get_image_embedding(), outputs[0][0])


def test_segment_anything_drop_in(reference):
    from semat.segment_anything import SamPredictor, sam_model_registry
    sam = sam_model_registry["tiny"](checkpoint=os.path.join(DIR, "sam_tiny.pth"))
    assert sam.to(device="cpu") is sam
    predictor = SamPredictor(sam)
    predictor.set_image(semat.read_image(os.path.join(DIR, "image.png")))
    spec = prompts()["points"]
    masks, scores, logits = predictor.predict(point_coords=np.array(spec["point_coords"]),
                                              point_labels=np.array(spec["point_labels"]),
                                              multimask_output=True)
    assert masks.shape[0] == 3 and scores.shape == (3,)
    assert np.abs(logits - reference["points_multi.low_res_logits"]).max() <= TOL
    assert set(sam_model_registry) >= {"default", "vit_h", "vit_l", "vit_b"}
    with pytest.raises(semat.ConfigError):
        sam_model_registry["vit_b"]()  # semat cannot build random weights
    with pytest.raises(semat.CheckpointError):  # the tiny weights are not a vit_b
        SamPredictor(sam_model_registry["vit_b"](checkpoint=os.path.join(DIR, "sam_tiny.pth")))


def test_bad_prompts_are_refused(predictor):
    with pytest.raises(semat.InvalidArgument, match="point_labels must be supplied"):
        predictor.predict(point_coords=np.array([[10.0, 10.0]]))
    with pytest.raises(semat.InvalidArgument, match="Nx2"):
        predictor.predict(point_coords=np.array([10.0, 10.0]), point_labels=np.array([1]))
    with pytest.raises(semat.InvalidArgument, match="label 2"):
        predictor.predict(point_coords=np.array([[10.0, 10.0]]), point_labels=np.array([2]))
    with pytest.raises(semat.InvalidArgument, match=r"\(4,\)"):
        predictor.predict(box=np.array([1.0, 2.0, 3.0]))
    with pytest.raises(semat.InvalidArgument, match="outside"):
        predictor.predict(box=np.array([0, 0, 4000, 100]))
    with pytest.raises(semat.InvalidArgument, match="a box, at least one point, or a mask"):
        predictor.predict()
    with pytest.raises(semat.InvalidArgument, match="mask input"):
        predictor.predict(mask_input=np.zeros((1, 7, 7), np.float32))
    with pytest.raises(semat.InvalidArgument, match="image_format"):
        predictor.set_image(np.zeros((8, 8, 3), np.uint8), image_format="YUV")


def test_predict_before_set_image():
    p = semat.SamPredictor(os.path.join(DIR, "sam_tiny.pth"), device="cpu")
    with pytest.raises(semat.StateError, match="set_image"):
        p.predict(box=np.array([1, 1, 5, 5]))
    p.set_image(semat.read_image(os.path.join(DIR, "image.png")))
    p.reset_image()
    assert not p.is_image_set
    with pytest.raises(semat.StateError):
        p.predict(box=np.array([1, 1, 5, 5]))


def test_matte_with_sam_uses_sams_mask_like_the_cli(tmp_path):
    from conftest import run_cli
    image = os.path.join(DIR, "image.png")
    ckpt = os.path.join(DIR, "sam_tiny.pth")
    # The tiny random-weight SAM predicts no pixel inside this box (see the CLI's
    # SamMaskFeedsTheMattingPipeline): the same error, labelled "box 1" instead of "--box 1".
    with pytest.raises(semat.DataError) as e:
        semat.matte(image, boxes=[60, 20, 230, 200], sam=ckpt, model_type="tiny", device="cpu")
    assert str(e.value) == "box 1: the subject mask is empty: nothing to matte"
    code, _, err = run_cli("matte", image, "--box", "60,20,230,200", "--sam", ckpt, "--model-type", "tiny",
                           "--out", tmp_path, check=False)
    if code == 2 and "LibTorch" in err:
        pytest.skip("the semat executable was built without LibTorch")
    assert code == 3 and err.strip() == f"semat: error: --{e.value}"


def test_matte_with_semat_and_refine_equals_the_cli(tmp_path):
    from conftest import cli_json, run_cli
    semat_dir = os.path.join(TEST_DATA, "semat_tiny")
    image = os.path.join(semat_dir, "image.png")
    ckpt = os.path.join(semat_dir, "semat_tiny.pth")
    box = [12, 5, 218, 209]
    m = semat.matte(semat.read_image(image), boxes=box, semat=ckpt, refine=True)
    assert m.report["engine"] == "semat>semat>semat+refine"
    code, out, err = run_cli("matte", image, "--box", ",".join(map(str, box)), "--semat", ckpt, "--refine",
                             "--out", tmp_path, "--json", check=False)
    if code == 2 and "LibTorch" in err:
        pytest.skip("the semat executable was built without LibTorch")
    assert code == 0, err
    want = semat.read_alpha(str(tmp_path / "alpha.png"))
    assert_same_8bit(m.alpha, want)
