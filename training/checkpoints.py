"""Periodic checkpoints that never lose work: `checkpoint-00000100/` folders holding the trained weights only
(safetensors), the optimizer (and fp16 gradient scaler) through accelerate, and `trainer_state.json` (step, data
position, the settings that must not change on resume).

accelerate's save_state would write the whole frozen UNet; our save hook drops it and writes the trained weights
instead, and the load hook reads them back. A checkpoint is written into a hidden temporary folder and renamed
into place only when complete, so `--resume latest` always finds a whole one. The random draws of a step depend
on (seed, step, process) alone (training/seeds.py) and the learning rate on the step, so nothing else is needed to
continue exactly.
"""
import json
import re
import shutil
from pathlib import Path

from safetensors.torch import load_file, save_file

WEIGHTS = "trained_weights.safetensors"
STATE = "trainer_state.json"
_NAME = re.compile(r"checkpoint-(\d{8})")


class Checkpoints:
    def __init__(self, folder: Path, accelerator, model, keep: int, settings: dict):
        """`model`: the unwrapped VideoUNet; `settings`: what a resumed run must share with this one."""
        if keep < 1:  # save() prunes with [:-keep], which keeps every checkpoint at 0
            raise ValueError(f"keep {keep} checkpoints: keep at least 1, the one --resume continues from")
        self.folder, self.accelerator, self.model, self.keep, self.settings = folder, accelerator, model, keep, settings
        accelerator.register_save_state_pre_hook(self._save_weights)
        accelerator.register_load_state_pre_hook(self._load_weights)

    def _save_weights(self, models, weights, output_dir):
        weights.clear()  # not the frozen base
        if self.accelerator.is_main_process:
            state = {k: v.detach().float().contiguous().cpu() for k, v in self.model.trained_state_dict().items()}
            save_file(state, str(Path(output_dir) / WEIGHTS))

    def _load_weights(self, models, input_dir):
        models.clear()
        self.model.load_trained_state_dict(load_file(str(Path(input_dir) / WEIGHTS)))

    def complete(self) -> list[Path]:
        """Finished checkpoints, oldest first."""
        found = [p for p in self.folder.glob("checkpoint-*") if _NAME.fullmatch(p.name) and (p / STATE).is_file()]
        return sorted(found, key=lambda p: p.name)

    def save(self, step: int, position: int, extra: dict) -> Path:
        final = self.folder / f"checkpoint-{step:08d}"
        partial = self.folder / f".checkpoint-{step:08d}.partial"
        main = self.accelerator.is_main_process
        if main:
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
        self.accelerator.wait_for_everyone()
        self.accelerator.save_state(str(partial))
        if main:
            state = {"step": step, "data_position": position, "settings": self.settings, **extra}
            (partial / STATE).write_text(json.dumps(state, indent=1))
            shutil.rmtree(final, ignore_errors=True)  # only when a run re-saves the step it resumed from
            partial.rename(final)
            for old in self.complete()[:-self.keep]:
                shutil.rmtree(old)
        self.accelerator.wait_for_everyone()
        return final

    def resolve(self, resume: str) -> Path | None:
        """`latest` (None when there is none yet) or a checkpoint folder."""
        if resume == "latest":
            done = self.complete()
            return done[-1] if done else None
        path = Path(resume)
        if not (path / STATE).is_file():
            raise FileNotFoundError(f"--resume {resume} is not a checkpoint folder (no {STATE} in it); use --resume "
                                    f"latest or one of the checkpoint-* folders in {self.folder}")
        return path

    def load(self, path: Path) -> dict:
        """Restore the trained weights and optimizer from `path`; returns its trainer_state.json."""
        state = json.loads((path / STATE).read_text())
        changed = {k: (state["settings"].get(k), v) for k, v in self.settings.items() if state["settings"].get(k) != v}
        if changed:
            listed = "; ".join(f"{k}: {was!r} in the checkpoint, {now!r} now" for k, (was, now) in changed.items())
            raise ValueError(f"{path.name} was made with other settings ({listed}). Resume with the same settings, or "
                             "start a new run with another --run-dir.")
        self.accelerator.load_state(str(path))
        return state
