"""A stand-in for the `segment_anything` package's predictor API, on semat's LibTorch-free SAM.

A script written for segment_anything changes one import line:

    # from segment_anything import sam_model_registry, SamPredictor
    from semat.segment_anything import sam_model_registry, SamPredictor

    sam = sam_model_registry["vit_b"](checkpoint="sam_vit_b_01ec64.pth")
    sam.to(device="cpu")
    predictor = SamPredictor(sam)
    predictor.set_image(image)                      # uint8 HxWx3 RGB
    masks, scores, logits = predictor.predict(point_coords=..., point_labels=..., box=...,
                                              multimask_output=True)

Covered: sam_model_registry / build_sam* (official keys "default", "vit_h", "vit_l", "vit_b",
plus "tiny" and "auto"), Sam.to()/eval(), SamPredictor(sam).set_image / predict /
get_image_embedding / reset_image / is_image_set / original_size. Not covered: predict_torch,
SamAutomaticMaskGenerator, building a model without a checkpoint (random weights), training.
"""
from __future__ import annotations

import os
from typing import Optional

from . import SamPredictor as _SematSamPredictor
from ._errors import ConfigError, IoError

__all__ = ["Sam", "SamPredictor", "sam_model_registry", "build_sam", "build_sam_vit_h",
           "build_sam_vit_l", "build_sam_vit_b"]


class Sam:
    """A checkpoint and its model type and device; the weights are loaded by SamPredictor(sam)."""

    def __init__(self, checkpoint, model_type: str):
        if checkpoint is None:
            raise ConfigError(f"sam_model_registry[{model_type!r}]: semat needs checkpoint= (it "
                              "cannot build SAM with random weights)")
        self.checkpoint = os.fspath(checkpoint)
        if not os.path.isfile(self.checkpoint):
            # The library's message for the same problem (semat::io, load_checkpoint).
            raise IoError(f"cannot open checkpoint '{self.checkpoint}': No such file or directory")
        self.model_type = model_type
        self.device = "auto"

    def to(self, device=None, *args, **kwargs) -> "Sam":
        """Like torch's Module.to: records the device ("cpu", "cuda", "cuda:0" or a
        torch.device); the model is placed there when a SamPredictor loads it."""
        device = kwargs.get("device", device)
        if device is not None:
            name = str(device)
            self.device = "cuda" if name.startswith("cuda") else name
        return self

    def eval(self) -> "Sam":
        return self

    def __repr__(self) -> str:
        return f"Sam({self.checkpoint!r}, model_type={self.model_type!r}, device={self.device!r})"


def _builder(model_type: str):
    def build(checkpoint: Optional[str] = None) -> Sam:
        return Sam(checkpoint, model_type)
    build.__name__ = f"build_sam_{model_type}"
    return build


build_sam_vit_h = _builder("vit_h")
build_sam = build_sam_vit_h
build_sam_vit_l = _builder("vit_l")
build_sam_vit_b = _builder("vit_b")

sam_model_registry = {
    "default": build_sam_vit_h,
    "vit_h": build_sam_vit_h,
    "vit_l": build_sam_vit_l,
    "vit_b": build_sam_vit_b,
    "tiny": _builder("tiny"),   # semat's test fixture shapes
    "auto": _builder("auto"),   # model type from the checkpoint's tensor shapes
}


class SamPredictor(_SematSamPredictor):
    """segment_anything.SamPredictor(sam_model): loads the Sam's checkpoint on its device."""

    def __init__(self, sam_model: Sam):
        if not isinstance(sam_model, Sam):
            raise ConfigError("SamPredictor(sam_model) takes what sam_model_registry[...](checkpoint=...) "
                              f"returns, not a {type(sam_model).__name__}")
        super().__init__(sam_model)
        self.model = sam_model
