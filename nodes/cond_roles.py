"""What of the pack's conditioning each cond of a UNet call gets: the picture's image tokens (Content-Adapter), the
prompt's condition tokens (DQFormer), the first-frame branch (I2V-Adapter).

`cond_or_uncond` holds each chunk's position in whatever list of conds the guider passes: CFGGuider [positive,
negative], DualCFGGuider [negative, middle, positive], PerpNegGuider [positive, negative, empty_negative_prompt],
SAG's and PAG's extra passes [uncond] or [cond] alone. So roles are read from the guider's own names instead: when
sampling starts, every cond's uuid is recorded with its name's role; each UNet call then maps its chunks' `uuids`
to those roles. A guider's negatives get neither tokens but keep the branch, as the official release runs it
under CFG; other conds get everything; Two-Scale Guidance names one cond without the picture, branch included. A
cond no guider named (a sampler that calls the model itself) falls back to ComfyUI's own convention, position 1 =
unconditional. The uuids are new on every sampling, so the roles are read on every model call outside the UNet
(APPLY_MODEL) and handed in as a tuple of tuples of booleans: what runs inside the UNet, compiled or not, sees the
same values on every sampling.
"""
from typing import NamedTuple

from comfy.patcher_extension import WrappersMP

from .patch_support import SharedPatch

UUID_ROLES = "i2v_cond_uuid_roles"  # set on the guider's per-sampling model_options when sampling starts
CHUNK_ROLES = "i2v_chunk_roles"     # set on each model call's transformer_options
KEY = "i2v_cond_roles"


class CondRole(NamedTuple):
    picture: bool      # the picture's image tokens (Content-Adapter), else those of zero pixel values
    text: bool         # the prompt's condition tokens (DQFormer)
    first_frame: bool  # the I2V-Adapter's first-frame branch


CONDITIONAL = CondRole(picture=True, text=True, first_frame=True)
NEGATIVE = CondRole(picture=False, text=False, first_frame=True)

# Two-Scale Guidance's negative prompt twice (nodes/two_scale_guidance.py): once with the picture, once without.
NEGATIVE_WITH_PICTURE = "negative_with_picture"
NEGATIVE_WITHOUT_PICTURE = "negative_without_picture"
_NAMED_ROLES = {NEGATIVE_WITH_PICTURE: CondRole(picture=True, text=False, first_frame=True),
                NEGATIVE_WITHOUT_PICTURE: CondRole(picture=False, text=False, first_frame=False)}


def role_of(name: str) -> CondRole:
    """negative (CFGGuider, DualCFGGuider, PerpNegGuider) and empty_negative_prompt (PerpNegGuider) are negatives."""
    return _NAMED_ROLES.get(name, NEGATIVE if "negative" in name else CONDITIONAL)


class RecordCondRoles(SharedPatch):
    """OUTER_SAMPLE wrapper: {uuid: role} of every cond of the guider being sampled, into the transformer options of
    this sampling only (the guider's model_options are its own copy while it samples); APPLY_MODEL wrapper: each
    call's chunks' roles."""

    def outer_sample(self, executor, *args, **kwargs):
        guider = executor.class_obj
        roles = {cond["uuid"]: role_of(name) for name, conds in getattr(guider, "conds", {}).items()
                 for cond in conds or [] if "uuid" in cond}
        options = guider.model_options.setdefault("transformer_options", {})
        before = options.get(UUID_ROLES)
        options[UUID_ROLES] = roles
        try:
            return executor(*args, **kwargs)
        finally:
            if before is None:
                options.pop(UUID_ROLES, None)
            else:
                options[UUID_ROLES] = before

    def apply_model(self, executor, x, t, c_concat, c_crossattn, control, transformer_options, **kwargs):
        sides = transformer_options.get("cond_or_uncond", [0])
        uuids = transformer_options.get("uuids") or [None] * len(sides)
        roles = transformer_options.get(UUID_ROLES, {})
        chunks = tuple(roles[uuid] if uuid in roles else _by_position(side) for uuid, side in zip(uuids, sides))
        return executor(x, t, c_concat, c_crossattn, control, {**transformer_options, CHUNK_ROLES: chunks}, **kwargs)


def _by_position(side: int) -> CondRole:
    return NEGATIVE if side == 1 else CONDITIONAL


def record_cond_roles(patched) -> None:
    """Make `patched` (a clone being built) read its guider's cond roles; once per MODEL."""
    if not patched.get_wrappers(WrappersMP.OUTER_SAMPLE, KEY):
        roles = RecordCondRoles()
        patched.add_wrapper_with_key(WrappersMP.OUTER_SAMPLE, KEY, roles.outer_sample)
        patched.add_wrapper_with_key(WrappersMP.APPLY_MODEL, KEY, roles.apply_model)


def chunk_roles(transformer_options: dict) -> tuple[CondRole, ...]:
    """The role of each chunk of the UNet's batch (ComfyUI's convention where the call did not pass through the
    MODEL's apply_model)."""
    if CHUNK_ROLES in transformer_options:
        return transformer_options[CHUNK_ROLES]
    return tuple(_by_position(side) for side in transformer_options.get("cond_or_uncond", [0]))
