"""Times the official I2V-Adapter release's own pipeline as its inference.py runs it, for the GPU suite's anchor row
(bench/suite/cases/official.py starts it). Runs in the official code's environment, its checkout on PYTHONPATH:

    python bench/official_pipeline.py <work folder>

The work folder holds the official layout (tests/support/official.write_official_layout) and spec.json (frames,
size, steps, cfg, repeats, device, dtype, official: the checkout). Each run is what the suite times of our recipe
graph: the first frame encoded by an SD-shaped VAE, then the pipeline's call (its Frame Similarity Prior start and
all DDIM steps at CFG) without the final decode (our graph's is a separate node). timing.json gets the seconds of
each timed run, after one warm-up run, and the GPU's peak memory.
"""
import json
import sys
import time
from pathlib import Path

import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests/official"))
from run_official import official_pipeline  # noqa: E402


def sd_vae():
    """SD1.5's VAE architecture (random weights: the time does not depend on them)."""
    from diffusers import AutoencoderKL
    return AutoencoderKL(down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4,
                         block_out_channels=[128, 256, 512, 512], layers_per_block=2, latent_channels=4)


def main(work: Path) -> None:
    torch.set_grad_enabled(False)
    spec = json.loads((work / "spec.json").read_text())
    device, dtype = torch.device(spec["device"]), getattr(torch, spec["dtype"])
    pipe, image_encoder, image_proj_model = official_pipeline(work, Path(spec["official"]), sd_vae(), dtype, device)
    pipe.decode_latents = lambda latents: latents  # no decode (see above); output_type "latent" keeps it a tensor
    generator = torch.Generator(device).manual_seed(42)
    size, frames = spec["size"], spec["frames"]
    text = torch.randn(2, 77, 768, generator=generator, device=device, dtype=dtype)
    pipe._encode_prompt = lambda *args, **kwargs: (text[:1], text[1:])  # the suite's text conditioning is random too

    from transformers import CLIPImageProcessor
    picture = Image.open(work / "image.png").convert("RGB")
    pixels = CLIPImageProcessor()(images=picture, return_tensors="pt").pixel_values.to(device, dtype)
    cond_tokens = image_proj_model(image_encoder(pixels, output_hidden_states=True).hidden_states[-2])
    blank = torch.zeros_like(pixels)
    uncond_tokens = image_proj_model(image_encoder(blank, output_hidden_states=True).hidden_states[-2])
    image = torch.tensor(list(picture.resize((size, size)).getdata()), dtype=dtype, device=device)
    image = image.view(1, size, size, 3).permute(0, 3, 1, 2) / 127.5 - 1.0

    def run() -> float:
        start = time.perf_counter()
        first = pipe.vae.encode(image).latent_dist.sample(generator) * 0.18215
        pipe(prompt="", generator=generator, latents=first[:, :, None], video_length=frames, height=size, width=size,
             num_inference_steps=spec["steps"], guidance_scale=spec["cfg"], noise_mode="iid", negative_prompt="",
             repeat_latents=True, gaussian_blur=True, cond_image_embeds=cond_tokens,
             un_cond_image_embeds=uncond_tokens, output_type="latent")
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    first = run()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    seconds = [run() for _ in range(spec["repeats"])]
    peak = torch.cuda.max_memory_allocated() if device.type == "cuda" else 0
    (work / "timing.json").write_text(json.dumps({"first": first, "seconds": seconds, "peak": peak}))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
