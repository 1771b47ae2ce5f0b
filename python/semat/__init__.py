"""semat: interactive natural image matting (SEMat) from Python.

    import numpy as np, semat
    m = semat.matte("photo.png", boxes=[40, 30, 300, 420])   # or an RGB uint8 array
    m.alpha            # float32 HxW in [0, 1]
    m.cutout()         # uint8 HxWx4 RGBA

Images are numpy uint8 arrays HxWx3 in RGB order (image_format="BGR" for OpenCV's order),
HxWx4 (RGBA: the alpha channel is ignored) or HxW (grey, replicated to three channels), or a
path to an image file. Every error is a semat.Error (see semat._errors for the kinds).
"""
from __future__ import annotations

import os
from typing import Any, Optional, Sequence, Union

from . import _semat
from ._errors import (CheckpointError, ConfigError, DataError, Error, InvalidArgument, IoError,
                      StateError)
from . import metrics
from .metrics import eval  # noqa: A001 (the CLI's name: semat eval)

__version__ = _semat.__version__
Matte = _semat.Matte
read_image = _semat.read_image
read_alpha = _semat.read_alpha
write_png = _semat.write_png

__all__ = ["matte", "save", "Matte", "SamPredictor", "eval", "metrics", "segment_anything",
           "Error", "ConfigError", "IoError", "DataError", "CheckpointError", "InvalidArgument",
           "StateError", "set_num_threads", "read_image", "read_alpha", "write_png"]


def _boxes(boxes) -> tuple[list[list[float]], bool]:
    """(list of boxes, whether a single box was given)."""
    if boxes is None:
        return [], True
    try:
        import numpy as np
        arr = np.asarray(boxes, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidArgument(
            f"boxes={boxes!r}: give one box [x0, y0, x1, y1] or a list of boxes") from None
    if arr.ndim == 1 and arr.shape[0] == 4:
        return [arr.tolist()], True
    if arr.ndim == 2 and arr.shape[1] == 4 and arr.shape[0] >= 1:
        return arr.tolist(), False
    raise InvalidArgument(f"boxes has shape {arr.shape}: give one box [x0, y0, x1, y1] (shape (4,)) "
                          "or a list of N boxes (shape (N, 4))")


def matte(image: Any, boxes=None, trimap=None, prior: str = "auto", sam: Optional[str] = None,
          semat: Optional[str] = None, refine: bool = False, precision: str = "auto",
          device: str = "auto", model_type: str = "auto",
          image_format: str = "RGB", vitmatte: Optional[str] = None,
          diffmatte: Optional[str] = None) -> Union[Matte, list]:
    """The alpha matte of the subject in each box (or in the trimap's unknown band), exactly as
    `semat matte IMAGE --box ... [--sam/--semat/--refine]` computes it.

    image: a path, or a uint8 array HxWx3 (RGB, or BGR with image_format="BGR"), HxWx4 (alpha
        ignored) or HxW (grey). A packed HxWx3 array is read in place in either order (no copy;
        the networks build their RGB input from it), and so is a channel-reversed view such as
        bgr[..., ::-1]. The CLI reads files as BGR: the networks see the same input either way,
        but GrabCut and closed-form compute colour statistics (3x3 covariances) in memory
        order, so an RGB array's alpha can differ from the CLI's by rounding: one 8-bit level on
        a few pixels (for output identical
        to the CLI pass the BGR pixels: a path, image_format="BGR", or bgr[..., ::-1]).
    boxes: one box [x0, y0, x1, y1] in pixels -> returns one Matte; a list of N boxes -> returns a
        list of N Mattes (one engine call: SAM encodes the image once).
    trimap: instead of boxes, a uint8 HxW trimap (0 background, 128 unknown, 255 foreground; any
        encoder's values: < 85 background, >= 170 foreground) or its path -> one Matte.
    prior: the box-only coarse mask: "isnet" (the learned prior; `make models` installs it),
        "grabcut" (classical), or "auto" (IS-Net when installed, else GrabCut), as the CLI's --prior.
    sam, semat: checkpoint paths (the CLI's --sam / --semat); refine: --refine.
    vitmatte, diffmatte: trimap-network checkpoints (the CLI's --vitmatte / --diffmatte): the
        alpha stage for the trimap, whichever stage made it.
    precision: the image encoders' arithmetic (SAM, SEMat, IS-Net): "auto" (bfloat16 where the
        hardware has native bf16 matrix units: AMX / AVX512-BF16 CPUs, Ampere+ GPUs), "float32",
        or "bfloat16" (ConfigError where not native); report["precision"] says what ran.
    device: "auto", "cpu" or "cuda".
    The model of a configuration is loaded once per process and reused by later calls.
    """
    box_list, single = _boxes(boxes)
    mattes = _semat._matte(image, box_list, trimap, prior, "" if sam is None else os.fspath(sam),
                           "" if semat is None else os.fspath(semat), bool(refine), precision,
                           device, model_type, image_format,
                           "" if vitmatte is None else os.fspath(vitmatte),
                           "" if diffmatte is None else os.fspath(diffmatte))
    return mattes[0] if single else mattes


def save(mattes: Union[Matte, Sequence[Matte]], out: Union[str, os.PathLike] = "out",
         background: Any = "#808080", alpha_depth: int = 8) -> dict:
    """Writes the files `semat matte` writes into `out` (alpha, cutout, composite, trimap and
    overlay PNGs; _0, _1... suffixes for several mattes; all files atomically) and returns the
    report `semat matte --json` prints."""
    if isinstance(mattes, Matte):
        mattes = [mattes]
    return _semat._save(list(mattes), os.fspath(out), background, int(alpha_depth))


Matte.save = lambda self, out="out", background="#808080", alpha_depth=8: save(
    [self], out, background, alpha_depth)
Matte.save.__doc__ = "save([self], ...): the five PNGs of `semat matte` and its --json report."


class SamPredictor:
    """Segment Anything with the official predictor's interface, without PyTorch:

        predictor = semat.SamPredictor("sam_vit_b_01ec64.pth")
        predictor.set_image(image)                       # uint8 HxWx3 RGB
        masks, scores, logits = predictor.predict(box=np.array([x0, y0, x1, y1]),
                                                  multimask_output=False)

    predict returns (masks bool CxHxW, iou_predictions float32 (C,), low_res_masks float32
    Cx256x256 for the official models), C = 3 with multimask_output else 1; masks are float32
    logits with return_logits=True. model_type: "auto" (from the checkpoint's shapes), vit_b,
    vit_l, vit_h or tiny; device: "auto", "cpu" or "cuda".
    """

    def __init__(self, checkpoint: Union[str, os.PathLike, Any], model_type: str = "auto",
                 device: str = "auto"):
        from .segment_anything import Sam
        if isinstance(checkpoint, Sam):  # segment_anything style: SamPredictor(sam_model)
            model_type, device, checkpoint = checkpoint.model_type, checkpoint.device, checkpoint.checkpoint
        if not _semat._have_models:
            raise ConfigError("this build of semat has no LibTorch, so no SAM: install libtorch-dev "
                              "and rebuild")
        self._p = _semat._SamPredictor(os.fspath(checkpoint), model_type, str(device))

    def set_image(self, image: Any, image_format: str = "RGB") -> None:
        """Runs the image encoder once; image: uint8 HxWx3 in `image_format` ("RGB" or "BGR")."""
        self._p.set_image(image, image_format)

    def predict(self, point_coords=None, point_labels=None, box=None, mask_input=None,
                multimask_output: bool = True, return_logits: bool = False):
        """point_coords Nx2 (x, y) pixels with point_labels (N,) 1 foreground / 0 background; box
        (4,) x0, y0, x1, y1 pixels; mask_input 1xHxW low-res logits of an earlier prediction."""
        return self._p.predict(point_coords, point_labels, box, mask_input, multimask_output,
                               return_logits)

    def get_image_embedding(self):
        """float32 1xCxgxg: the image encoder's output for the current image (a copy)."""
        return self._p.get_image_embedding()

    def reset_image(self) -> None:
        self._p.reset_image()

    @property
    def is_image_set(self) -> bool:
        return self._p.is_image_set

    @property
    def original_size(self):
        """(H, W) of the current image, or None."""
        return self._p.original_size

    @property
    def model_type(self) -> str:
        return self._p.model_type

    @property
    def device(self) -> str:
        return self._p.device


def set_num_threads(n: int) -> None:
    """OpenCV's worker threads for the classical stages (0: OpenCV's default)."""
    _semat._set_cv_threads(int(n))


from . import segment_anything  # noqa: E402  (needs SamPredictor above)
