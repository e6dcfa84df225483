"""Runs the official I2V-Adapter release's code on the files and inputs a parity test wrote, and saves what it
computes. Not part of the pack: it runs in the official code's own environment (tests/official/requirements.txt),
with the official checkout on PYTHONPATH, the way its inference.py builds the model:

    python run_official.py <work folder>

The work folder holds the official layout (sd15/unet/config.json and animatediff_v15_v1_ipplus.pth, i2v_module.pth,
ip-adapter-plus_sd15.bin, image_encoder/, image.png), inputs.safetensors and spec.json; official.safetensors is
written next to them: the UNet's noise predictions, the Frame Similarity Prior's mask, noise and start latent, and
the latents after a whole DDIM run of the pipeline.
"""
import json
import os
import sys
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"

import torch  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402
from PIL import Image  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402
from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection  # noqa: E402

from src.models.ip_adapter import Resampler  # noqa: E402
from src.models.unet import UNet3DConditionModel  # noqa: E402
from src.pipelines.pipeline_i2v_adapter import I2VIPAdapterPipeline  # noqa: E402
from src.utils.util import load_weights  # noqa: E402


def tiny_text_side(work: Path):
    """The pipeline's constructor wants a tokenizer and text encoder; the test gives the text embeddings instead."""
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer
    (work / "vocab.json").write_text(json.dumps({"<|startoftext|>": 0, "<|endoftext|>": 1, "a</w>": 2}))
    (work / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(work / "vocab.json"), str(work / "merges.txt"))
    encoder = CLIPTextModel(CLIPTextConfig(vocab_size=3, hidden_size=32, intermediate_size=32, num_hidden_layers=1,
                                           num_attention_heads=1))
    return tokenizer, encoder


def decoder_only_vae():
    """The pipeline decodes its latents at the end; the test compares latents, so any 4-level VAE will do."""
    from diffusers import AutoencoderKL
    return AutoencoderKL(down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4,
                         block_out_channels=[32] * 4, layers_per_block=1, latent_channels=4, norm_num_groups=32)


def official_pipeline(work: Path, official: Path, vae=None, dtype=torch.float32, device="cpu"):
    """The pipeline, image encoder and resampler as inference.py builds them from the layout in `work`, in `dtype` on
    `device`; the text side tiny (the callers give the text embeddings) and `vae` (default: decoder_only_vae())."""
    config = OmegaConf.load(official / "configs/inference/infer.yaml")
    unet = UNet3DConditionModel.from_pretrained_ip(str(work / "sd15"), subfolder="unet", unet_additional_kwargs=
                                                   OmegaConf.to_container(config.unet_additional_kwargs))
    bundle = torch.load(work / "sd15/unet/animatediff_v15_v1_ipplus.pth", "cpu", mmap=True).keys()
    missing = sorted(k for k in unet.state_dict().keys() - bundle if "_ff." not in k)
    unexpected = sorted(bundle - unet.state_dict().keys())
    if missing or unexpected:  # the bundle must be exactly the official layout
        sys.exit(f"the bundle is not the official layout: missing {missing[:3]}, unexpected {unexpected[:3]}")
    image_encoder = CLIPVisionModelWithProjection.from_pretrained(str(work / "image_encoder"))
    image_proj_model = Resampler(dim=768, depth=4, dim_head=64, heads=12, num_queries=16,
                                 embedding_dim=image_encoder.config.hidden_size, output_dim=768, ff_mult=4)
    image_proj_model.load_state_dict(torch.load(work / "ip-adapter-plus_sd15.bin", "cpu")["image_proj"], strict=True)
    from diffusers import DDIMScheduler
    tokenizer, text_encoder = tiny_text_side(work)
    scheduler = DDIMScheduler(**OmegaConf.to_container(config.noise_scheduler_kwargs))
    pipe = I2VIPAdapterPipeline(vae=vae or decoder_only_vae(), text_encoder=text_encoder, tokenizer=tokenizer,
                                unet=unet, scheduler=scheduler)
    pipe = load_weights(pipe, i2v_module_path=str(work / "i2v_module.pth"))
    print(f"official UNet loaded: {len(bundle)} bundle tensors, branch from i2v_module.pth", flush=True)
    # diffusers 0.11's pipeline .to() takes one argument, as inference.py calls it
    return pipe.to(dtype).to(device), image_encoder.to(device, dtype), image_proj_model.to(device, dtype)


def main(work: Path) -> None:
    torch.set_grad_enabled(False)
    spec = json.loads((work / "spec.json").read_text())
    inputs = load_file(str(work / "inputs.safetensors"))
    pipe, image_encoder, image_proj_model = official_pipeline(work, Path(spec["official"]))  # fp32 on the CPU
    unet = pipe.unet

    image = CLIPImageProcessor()(images=Image.open(work / "image.png").convert("RGB"), return_tensors="pt").pixel_values
    cond_tokens = image_proj_model(image_encoder(image, output_hidden_states=True).hidden_states[-2])
    uncond_tokens = image_proj_model(image_encoder(torch.zeros_like(image), output_hidden_states=True).hidden_states[-2])
    mixed = torch.cat([torch.cat([inputs["text_uncond"], uncond_tokens], dim=1),
                       torch.cat([inputs["text_cond"], cond_tokens], dim=1)])
    out = {"pixel_values": image, "image_tokens": torch.cat([uncond_tokens, cond_tokens])}

    for t in spec["timesteps"]:  # one UNet call on [uncond, cond], frame 0 clean
        noisy = inputs[f"noisy_{t}"]
        out[f"eps_{t}"] = unet(torch.cat([noisy] * 2), t, encoder_hidden_states=mixed).sample

    # The whole pipeline as inference.py calls it; the text embeddings are the test's.
    pipe._encode_prompt = lambda *args, **kwargs: (inputs["text_uncond"], inputs["text_cond"])
    frames, first = spec["frames"], inputs["first_frame"]
    shape = (1, 4, frames) + tuple(first.shape[-2:])
    generator = torch.Generator().manual_seed(spec["seed"])
    # downgrade_input's mask is the first draw from `generator`; the blurred frames and the noise are recorded as
    # the pipeline passes them to add_noise (its noise comes from torch's global generator, after torchvision's
    # GaussianBlur drew its sigma from it).
    out["mask"] = (torch.rand(shape, generator=torch.Generator().manual_seed(spec["seed"])) >= 0.5).float()
    noised, add_noise = [], pipe.scheduler.add_noise
    pipe.scheduler.add_noise = lambda x, noise, t: noised.append((x.clone(), noise.clone())) or add_noise(x, noise, t)
    seen, latents = [], []
    hook = unet.register_forward_pre_hook(lambda module, args: seen.append(args[0][:1].clone()) if not seen else None)
    torch.manual_seed(spec["noise_seed"])
    pipe(prompt="", generator=generator, latents=first, video_length=frames, height=shape[-2] * 8,
         width=shape[-1] * 8, num_inference_steps=spec["steps"], guidance_scale=spec["cfg"], noise_mode="iid",
         negative_prompt="", repeat_latents=True, gaussian_blur=True, cond_image_embeds=cond_tokens,
         un_cond_image_embeds=uncond_tokens, callback=lambda i, t, x: latents.append(x.clone()), callback_steps=1)
    hook.remove()
    out["degraded"] = torch.cat([x for x, _ in noised], dim=2)
    out["noise"] = torch.cat([noise for _, noise in noised], dim=2)
    out["start"], out["final"] = seen[0], latents[-1]
    out["timesteps"] = pipe.scheduler.timesteps.clone()
    out["alphas_cumprod"] = pipe.scheduler.alphas_cumprod.clone()
    save_file({k: v.contiguous().float() for k, v in out.items()}, str(work / "official.safetensors"))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
