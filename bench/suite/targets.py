"""The targets printed beside the measurements (benchmarks, not timed tests: a missed one is reported, not failed)."""
ADAPTER_TIME = 1.22        # I2V-Adapter step time / without it, SD1.5 16×512² fp16 (its floor: +18.4% FLOPs)
ADAPTER_PEAK = 1.05        # and its peak memory / without it
LOOK_BACK_TIME = 1.15      # look-back layers' step time / without them, same size
DQFORMER_TIME = 1.03       # a DQFormer's step time / without it, same size
OFFICIAL_TIME = 0.7        # our recipe graph / the official release's pipeline, same GPU, 16×512², 25 DDIM steps
RECIPE_TIME = 1.25         # the official recipe / the same graph without the I2V-Adapter and the Content-Adapter
GROUP_NORM_ACROSS = 1.02   # GroupNorm across frames / per frame, every norm of an SD1.5 UNet
LOOK_BACK_LINEARITY = 1.1  # T(most frames) / T(fewest) at most this times the frame ratio: 8.8 for 128 / 16
LONG_VIDEO_PEAK = 1.10     # peak memory at the most frames / at the fewest, under context windows
TRAINING_PEAK_GIB = 20     # adapter-only training with gradient checkpointing, 16×512²
COMPILE_TIME = 1.0         # TorchCompileModel step time / eager, after warm-up
COMPILE_RECOMPILATIONS = 0  # per step, after the first
