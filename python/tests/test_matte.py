"""semat.matte on synthetic scenes and the demo photo: outputs, input rules, equality with the CLI."""
import os

import numpy as np
import pytest

import semat
from conftest import assert_same_8bit, SOURCE_DIR, TEST_DATA, cli_json, synthetic_scene


def test_matte_outputs_have_the_documented_shapes_and_ranges(scene):
    image, truth, box = scene
    m = semat.matte(image, boxes=box)
    h, w = image.shape[:2]
    assert isinstance(m, semat.Matte)
    assert m.alpha.dtype == np.float32 and m.alpha.shape == (h, w)
    assert 0.0 <= m.alpha.min() and m.alpha.max() <= 1.0
    assert m.foreground.dtype == np.float32 and m.foreground.shape == (h, w, 3)
    assert 0.0 <= m.foreground.min() and m.foreground.max() <= 1.0
    assert m.trimap.dtype == np.uint8 and set(np.unique(m.trimap)) <= {0, 128, 255}
    assert m.mask.dtype == np.uint8 and m.mask.shape == (h, w)
    assert m.box == tuple(float(v) for v in box)
    cut = m.cutout()
    assert cut.dtype == np.uint8 and cut.shape == (h, w, 4)
    assert np.array_equal(cut[..., 3], np.round(m.alpha * 255).astype(np.uint8)) or \
        np.abs(cut[..., 3].astype(int) - m.alpha * 255).max() <= 1
    comp = m.composite((255, 255, 255))
    assert comp.dtype == np.uint8 and comp.shape == (h, w, 3)
    # The subject is found: mean error against the true alpha is small.
    assert np.abs(m.alpha - truth).mean() < 0.05
    report = m.report
    assert report["engine"] == "grabcut>rule>closed-form"
    assert report["image"] is None and len(report["instances"]) == 1
    assert report["instances"][0]["box"] == [float(v) for v in box]


def test_foreground_and_composite_are_rgb(scene):
    image, truth, box = scene
    m = semat.matte(image, boxes=box)
    inside = truth > 0.99
    # The disc is warm (R > B) in the RGB input; the outputs keep that order.
    fg = m.foreground[inside].mean(axis=0)
    assert fg[0] > fg[2] + 0.3
    comp = m.composite("black")
    c = comp[inside].mean(axis=0)
    assert c[0] > c[2] + 60
    assert m.cutout()[inside][:, 0].mean() > m.cutout()[inside][:, 2].mean() + 60
    # A colour background in RGB: pure red shows as R=255 where alpha is 0.
    red = m.composite((255, 0, 0))
    outside = m.alpha == 0
    assert np.all(red[outside] == [255, 0, 0])


def test_rgb_bgr_rgba_grey_and_path_inputs_follow_the_rule(tmp_path, scene):
    image, _, box = scene
    ref = semat.matte(image, boxes=box).alpha
    bgr = np.ascontiguousarray(image[..., ::-1])
    assert np.array_equal(semat.matte(bgr, boxes=box, image_format="BGR").alpha, ref)
    # A channel-reversed view (not packed) is copied first, then read as RGB.
    assert np.array_equal(semat.matte(bgr[..., ::-1], boxes=box).alpha, ref)
    rgba = np.concatenate([image, np.full(image.shape[:2] + (1,), 7, np.uint8)], axis=-1)
    assert np.array_equal(semat.matte(rgba, boxes=box).alpha, ref)  # alpha channel ignored
    path = tmp_path / "scene.png"
    semat.write_png(str(path), image)
    m = semat.matte(path, boxes=box)
    assert np.array_equal(m.alpha, ref)
    assert m.report["image"] == str(path)
    grey = np.ascontiguousarray(image[..., 0])  # the red channel: a bright disc on a dark ground
    g = semat.matte(grey, boxes=box)
    assert np.array_equal(g.alpha, semat.matte(np.repeat(grey[..., None], 3, -1), boxes=box).alpha)
    assert np.array_equal(g.alpha, semat.matte(grey[..., None], boxes=box).alpha)  # HxWx1


def test_copies_on_the_way_in():
    image, _, _ = synthetic_scene()
    # Packed BGR: the library reads the caller's buffer itself.
    assert semat._semat._image_copies(np.ascontiguousarray(image[..., ::-1]), "BGR") == (0, True)
    # RGB: one copy, the channel swap to the library's BGR.
    assert semat._semat._image_copies(image, "RGB") == (1, False)
    # A crop view keeps packed rows: still no copy for BGR.
    big = np.zeros((50, 60, 3), np.uint8)
    assert semat._semat._image_copies(big[5:40, 7:50], "BGR") == (0, True)
    # A channel-reversed view given as RGB is BGR in memory: read in place. The usual case: an
    # OpenCV (BGR) image passed as bgr[..., ::-1].
    bgr = np.ascontiguousarray(image[..., ::-1])
    assert semat._semat._image_copies(bgr[..., ::-1], "RGB") == (0, True)
    assert semat._semat._image_copies(big[5:40, 7:50][..., ::-1], "RGB") == (0, True)
    # Declared BGR, a reversed view is RGB in memory: one copy (the swap), not two.
    assert semat._semat._image_copies(image[..., ::-1], "BGR") == (1, False)
    # Not packed (every other column): made contiguous first, then swapped.
    assert semat._semat._image_copies(image[:, ::2], "RGB") == (2, False)


def test_reversed_views_matte_like_their_copies(scene):
    image, _, box = scene
    bgr = np.ascontiguousarray(image[..., ::-1])
    expected = semat.matte(image, boxes=box).alpha
    np.testing.assert_array_equal(semat.matte(bgr[..., ::-1], boxes=box).alpha, expected)
    np.testing.assert_array_equal(semat.matte(image[..., ::-1], boxes=box, image_format="BGR").alpha, expected)
    # The caller's buffer is only read.
    before = bgr.copy()
    semat.matte(bgr[..., ::-1], boxes=box)
    np.testing.assert_array_equal(bgr, before)


def test_several_boxes_give_a_list_and_a_trimap_gives_one(scene):
    image, truth, box = scene
    mattes = semat.matte(image, boxes=[box, [0, 0, 60, 50]])
    assert isinstance(mattes, list) and len(mattes) == 2
    assert [m.index for m in mattes] == [0, 1]
    assert len(mattes[0].report["instances"]) == 2
    assert np.array_equal(mattes[0].alpha, semat.matte(image, boxes=box).alpha)
    one = semat.matte(image, boxes=[box])
    assert isinstance(one, list) and len(one) == 1
    trimap = np.where(truth > 0.99, 255, np.where(truth < 0.01, 0, 128)).astype(np.uint8)
    t = semat.matte(image, trimap=trimap)
    assert isinstance(t, semat.Matte) and t.box is None and t.mask is None
    assert np.abs(t.alpha - truth).mean() < 0.02


def test_arrays_are_views_of_the_result(scene):
    image, _, box = scene
    m = semat.matte(image, boxes=box)
    a = m.alpha
    del m  # the array keeps the result's buffer alive
    assert a.sum() > 0 and not a.flags["OWNDATA"]


def _without_timing(report):
    r = dict(report)
    r.pop("seconds")
    r["instances"] = [{k: v for k, v in i.items() if k != "seconds"} for i in r["instances"]]
    return r


def _files(folder):
    return {n: open(os.path.join(folder, n), "rb").read() for n in sorted(os.listdir(folder))}


@pytest.mark.parametrize("boxes", [1, 2])
def test_matte_equals_the_cli(tmp_path, boxes):
    image, _, box = synthetic_scene(seed=3)
    path = tmp_path / "in.png"
    semat.write_png(str(path), image)
    box_list = [box, [4, 4, 70, 60]][:boxes]
    args = []
    for b in box_list:
        args += ["--box", ",".join(str(v) for v in b)]
    cli_out = tmp_path / "cli"
    cli = cli_json("matte", path, *args, "--out", cli_out, "--json", "--background", "white")
    py_out = tmp_path / "py"
    mattes = semat.matte(str(path), boxes=box_list if boxes > 1 else box)
    report = semat.save(mattes, str(py_out), background="white")
    assert _without_timing(report) == _without_timing({**cli, "out": str(py_out),
                                                       "files": [f.replace(str(cli_out), str(py_out)) for f in cli["files"]]})
    assert _files(cli_out) == _files(py_out)  # byte-identical PNGs
    # An array input gives the same alpha as the file.
    from_array = semat.matte(image, boxes=box_list if boxes > 1 else box)
    first = from_array[0] if boxes > 1 else from_array
    assert np.array_equal(first.alpha, (mattes[0] if boxes > 1 else mattes).alpha)


def test_demo_photo_matches_the_cli(tmp_path):
    photo = os.path.join(SOURCE_DIR, "examples", "astronaut.png")
    box = [int(v) for v in open(os.path.join(SOURCE_DIR, "examples", "astronaut.box")).read().split(",")]
    m = semat.matte(semat.read_image(photo), boxes=box)
    cli = cli_json("matte", photo, "--box", ",".join(map(str, box)), "--out", tmp_path, "--json")
    assert m.report["engine"] == cli["engine"]
    assert _without_timing(m.report)["instances"] == _without_timing(cli)["instances"]
    want = semat.read_alpha(str(tmp_path / "alpha.png"))
    assert_same_8bit(m.alpha, want)


def test_trimap_path_and_matte_save_method(tmp_path, scene):
    image, truth, _ = scene
    trimap = np.where(truth > 0.99, 255, np.where(truth < 0.01, 0, 128)).astype(np.uint8)
    tpath = tmp_path / "t.png"
    semat.write_png(str(tpath), trimap)
    m = semat.matte(image, trimap=str(tpath))
    assert np.array_equal(m.alpha, semat.matte(image, trimap=trimap).alpha)
    report = m.save(tmp_path / "o")
    assert sorted(os.path.basename(f) for f in report["files"]) == [
        "alpha.png", "composite.png", "cutout.png", "overlay.png", "trimap.png"]


def test_vitmatte_alpha_stage_equals_the_cli(tmp_path):
    """ViTMatte (the tiny fixture's random weights) as the alpha stage of a user trimap."""
    d = os.path.join(TEST_DATA, "vitmatte_tiny")
    image, trimap = os.path.join(d, "image.png"), os.path.join(d, "trimap.png")
    ckpt = os.path.join(d, "vitmatte_tiny.pth")
    m = semat.matte(image, trimap=trimap, vitmatte=ckpt, device="cpu")
    cli = cli_json("matte", image, "--trimap", trimap, "--vitmatte", ckpt, "--device", "cpu", "--out", tmp_path,
                   "--json")
    assert m.report["engine"] == cli["engine"]
    assert_same_8bit(m.alpha, semat.read_alpha(str(tmp_path / "alpha.png")))
