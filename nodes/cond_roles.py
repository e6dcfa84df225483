"""Which conds of a UNet call are a guider's negatives, for the patches that condition only the others (the
Content-Adapter's image tokens, the DQFormer's condition tokens).

`cond_or_uncond` holds each chunk's position in whatever list of conds the guider passes: CFGGuider [positive,
negative], DualCFGGuider [negative, middle, positive], PerpNegGuider [positive, negative, empty_negative_prompt],
SAG's and PAG's extra passes [uncond] or [cond] alone. So roles are read from the guider's own names instead: when
sampling starts, every cond's uuid is recorded with whether the guider names its list a negative; each UNet call
then maps its chunks' `uuids` to those roles. A cond no guider named (a sampler that calls the model itself) falls
back to ComfyUI's own convention, position 1 = unconditional. The uuids are new on every sampling, so the roles
are read on every model call outside the UNet (APPLY_MODEL) and handed in as a tuple of booleans: what runs inside
the UNet, compiled or not, sees the same values on every sampling.
"""
from comfy.patcher_extension import WrappersMP

from .patch_support import SharedPatch

NEGATIVE_UUIDS = "i2v_negative_cond_uuids"  # set on the guider's per-sampling model_options when sampling starts
CONDITIONAL = "i2v_conditional_chunks"      # set on each model call's transformer_options
KEY = "i2v_cond_roles"


def is_negative(name: str) -> bool:
    """negative (CFGGuider, DualCFGGuider, PerpNegGuider) and empty_negative_prompt (PerpNegGuider)."""
    return "negative" in name


class RecordCondRoles(SharedPatch):
    """OUTER_SAMPLE wrapper: {uuid: negative?} of every cond of the guider being sampled, into the transformer
    options of this sampling only (the guider's model_options are its own copy while it samples); APPLY_MODEL
    wrapper: each call's chunks' roles."""

    def outer_sample(self, executor, *args, **kwargs):
        guider = executor.class_obj
        roles = {cond["uuid"]: is_negative(name) for name, conds in getattr(guider, "conds", {}).items()
                 for cond in conds or [] if "uuid" in cond}
        options = guider.model_options.setdefault("transformer_options", {})
        before = options.get(NEGATIVE_UUIDS)
        options[NEGATIVE_UUIDS] = roles
        try:
            return executor(*args, **kwargs)
        finally:
            if before is None:
                options.pop(NEGATIVE_UUIDS, None)
            else:
                options[NEGATIVE_UUIDS] = before

    def apply_model(self, executor, x, t, c_concat, c_crossattn, control, transformer_options, **kwargs):
        sides = transformer_options.get("cond_or_uncond", [0])
        uuids = transformer_options.get("uuids") or [None] * len(sides)
        roles = transformer_options.get(NEGATIVE_UUIDS, {})
        conditional = tuple(not roles[uuid] if uuid in roles else side != 1 for uuid, side in zip(uuids, sides))
        return executor(x, t, c_concat, c_crossattn, control, {**transformer_options, CONDITIONAL: conditional},
                        **kwargs)


def record_cond_roles(patched) -> None:
    """Make `patched` (a clone being built) read its guider's cond roles; once per MODEL."""
    if not patched.get_wrappers(WrappersMP.OUTER_SAMPLE, KEY):
        roles = RecordCondRoles()
        patched.add_wrapper_with_key(WrappersMP.OUTER_SAMPLE, KEY, roles.outer_sample)
        patched.add_wrapper_with_key(WrappersMP.APPLY_MODEL, KEY, roles.apply_model)


def conditional_chunks(transformer_options: dict) -> tuple[bool, ...]:
    """For each chunk of the UNet's batch: True unless it is a guider's negative (ComfyUI's convention where the
    call did not pass through the MODEL's apply_model)."""
    if CONDITIONAL in transformer_options:
        return transformer_options[CONDITIONAL]
    return tuple(side != 1 for side in transformer_options.get("cond_or_uncond", [0]))
