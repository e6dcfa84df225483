"""The trainer's CPU demonstration as the training tests run it: the demo's settings at batch 2, a checkpoint
every 2 steps."""
from ...training.demo import demo_config

FRAMES = 8


def run_config(folder, train_what=("i2v_adapter",), steps=4, **changes):
    settings = demo_config(folder, train_what, steps, resume=None, progress=False)
    settings.batch_size, settings.checkpoint_every = 2, 2
    for name, value in changes.items():
        setattr(settings, name, value)
    return settings


def quiet(*_):
    pass
