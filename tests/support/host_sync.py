"""A test-only guard for the work the pack's code does inside a UNet call: nothing that makes a GPU wait for the host
or copy from it. On a CPU nothing syncs, so the guard catches the calls that would on a GPU, when the pack's own
code makes them (ComfyUI's, torch's and einops' calls are theirs to answer for):

- a read of a tensor's value on the host: `.item()`, `.tolist()`, `.cpu()`, `.numpy()`, `bool()`, `int()`, `float()`;
- a tensor made from host data: `torch.tensor`, `torch.as_tensor`, `torch.from_numpy`;
- a `.to()` that makes a new tensor: a copy to the device or a cast that a cache in the sampled dtype and device
  makes once, not on every call.
"""
import sys
from pathlib import Path

import torch
from torch.overrides import TorchFunctionMode

HOST_READS = {torch.Tensor.item, torch.Tensor.tolist, torch.Tensor.cpu, torch.Tensor.numpy, torch.Tensor.__bool__,
              torch.Tensor.__int__, torch.Tensor.__float__}
HOST_DATA = {torch.tensor, torch.as_tensor, torch.from_numpy}
PACK = Path(__file__).resolve().parents[2]
TORCH = Path(torch.__file__).resolve().parent


class HostSyncGuard(TorchFunctionMode):
    """Records each offending call as "file:line (function): what" in `found`, where `code` (a folder) made it;
    `watched` counts the torch calls `code` made under the guard (a guard that saw none proves nothing)."""

    def __init__(self, code: Path = PACK, allowed: tuple[Path, ...] = (PACK / "tests",)):
        super().__init__()
        self.code, self.allowed, self.found, self.watched = code, allowed, [], 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        where = self._caller()
        if where is not None:
            self.watched += 1
            if func in HOST_READS or func in HOST_DATA:
                self.found.append(f"{where}: {func.__name__}")
            elif func is torch.Tensor.to and out is not args[0]:
                self.found.append(f"{where}: .to() made a new {tuple(out.shape)} {out.dtype} tensor on {out.device}")
        return out

    def _caller(self) -> str | None:
        """"file:line (function)" of the first frame outside torch, where it is `code`'s."""
        frame = sys._getframe(2)
        while frame is not None and Path(frame.f_code.co_filename).resolve().is_relative_to(TORCH):
            frame = frame.f_back
        if frame is None:
            return None
        path = Path(frame.f_code.co_filename).resolve()
        if path.is_relative_to(self.code) and not any(path.is_relative_to(a) for a in self.allowed):
            return f"{path.relative_to(self.code)}:{frame.f_lineno} ({frame.f_code.co_name})"
        return None


def guard_unet_calls_after_the_first(model, guard: HostSyncGuard):
    """A clone of `model` whose UNet calls, from the second on (caches are built on the first), run under `guard`.
    Added before the patches under test, the wrapper is outermost: their wrappers run inside it too."""
    from comfy.patcher_extension import WrappersMP

    calls = []

    def apply_model(executor, *args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            return executor(*args, **kwargs)
        with guard:
            return executor(*args, **kwargs)
    guarded = model.clone()
    guarded.add_wrapper_with_key(WrappersMP.APPLY_MODEL, "test_host_sync_guard", apply_model)
    return guarded, calls
