"""AID's two guidance scales: one for the picture, one for the prompt (InstructPix2Pix's form),

    ε = ε(∅,∅) + s_v·(ε(img,∅) − ε(∅,∅)) + s_t·(ε(img,txt) − ε(img,∅))
      = (1 − s_v)·ε(∅,∅) + (s_v − s_t)·ε(img,∅) + s_t·ε(img,txt)

The first step (visual guidance) is ComfyUI's CFG between ε(img,∅) and ε(∅,∅), where a model's sampler-cfg and
post-cfg functions apply (the host runs it, as DualCFGGuider does); the text step is added after.
"""
import math
from typing import NamedTuple

import torch


class Predictions(NamedTuple):
    """Which predictions a step needs besides ε(img,txt), which it always does."""
    unconditional: bool  # ε(∅,∅)
    picture: bool        # ε(img,∅)


ALL = Predictions(unconditional=True, picture=True)


def predictions_needed(visual_scale: float, text_scale: float, cfg_functions: bool) -> Predictions:
    """A prediction whose weight is 0 need not run (ComfyUI's cfg 1 optimisation, for two scales): ε(∅,∅) at
    s_v = 1; ε(img,∅) at s_v = s_t, where the guidance is single CFG between ε(img,txt) and ε(∅,∅). With
    `cfg_functions` (a sampler-cfg or post-cfg function, e.g. RescaleCFG, sees ε(img,∅) as the visual step's
    conditional) ε(img,∅) is kept unless both scales are 1, where single CFG is ComfyUI's own cfg 1."""
    unconditional = not math.isclose(visual_scale, 1.0)
    single_cfg = math.isclose(visual_scale, text_scale) and not (cfg_functions and unconditional)
    return Predictions(unconditional, not single_cfg)


def add_text_guidance(visual: torch.Tensor, picture: torch.Tensor, prompt: torch.Tensor,
                      text_scale: float) -> torch.Tensor:
    """The visual step's result plus s_t·(ε(img,txt) − ε(img,∅))."""
    return visual + (prompt - picture) * text_scale
