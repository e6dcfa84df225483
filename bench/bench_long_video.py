"""Drift over a long video made clip by clip (I2V Last Frame -> the next clip -> I2V Join Clips), with and without
the colour fixes, side by side in one run.

    COMFYUI_PATH=... python bench/bench_long_video.py --size 64            # CPU: 3 clips of 8 frames 64², 3 steps
    COMFYUI_PATH=... python bench/bench_long_video.py --gpu --frames 16 --size 512 --steps 25

Each clip is the recipe's sampling: Frame Similarity Prior (t0 1) from its reference, Apply I2V-Adapter, KSampler
(DDIM, ddim_uniform), VAE Decode; then, per configuration, I2V Anchor Latent Colour (0.5) while sampling and/or I2V
Colour Match after decoding, to each clip's frame 0 or (colour_reference) to the first clip's picture. The clip's
last frame is the next clip's reference. For each clip's last frame, against the video's first frame (the picture through the VAE, as clip 1 shows it; CIELAB, kornia): colour drift,
the distance of the mean (a, b); lightness drift, |ΔL| of the means; and content drift, the mean absolute
difference of the pixels (0..1).

The models are random weights of the real architectures: the numbers show what each fix holds by construction and
how drift compounds through the chain of references, not how far a trained model drifts.
"""
import runpy
from pathlib import Path

runpy.run_path(str(Path(__file__).resolve().parents[1] / "standalone.py"))

from comfyui_i2v_adapter.bench.harness import bench_arguments, load_random_sd15  # noqa: E402

# (I2V Anchor Latent Colour, I2V Colour Match: to each clip's frame 0 / to the first clip's picture)
CONFIGURATIONS = {"none": (False, None), "latent anchor": (True, None), "colour match to frame 0": (False, "frame 0"),
                  "both": (True, "frame 0"), "colour match to the picture": (False, "picture")}


def lab_means(image):
    """(L, a, b) means of an IMAGE [1, H, W, 3] in 0..1."""
    import kornia

    return kornia.color.rgb_to_lab(image.movedim(-1, 1).float().clamp(0, 1)).mean(dim=(0, 2, 3))


def main():
    args = bench_arguments(__doc__, frames=8, steps=3)
    model, clip, vae = load_random_sd15(args.gpu, args.cache)

    import torch
    import nodes
    from comfyui_i2v_adapter.nodes.colour_drift import AnchorLatentColour, ColourMatch
    from comfyui_i2v_adapter.nodes.frame_similarity_prior import FrameSimilarityPrior
    from comfyui_i2v_adapter.nodes.i2v_adapter_patch import apply_i2v_adapter
    from comfyui_i2v_adapter.nodes.video_continuation import JoinClips, LastFrame
    from comfyui_i2v_adapter.nodes.video_latent import reference_image
    from comfyui_i2v_adapter.tests.support.graphs import random_adapter
    from comfyui_i2v_adapter.tests.support.images import astronaut

    adapter = random_adapter()
    positive = nodes.CLIPTextEncode().encode(clip, "an astronaut waves")[0]
    negative = nodes.CLIPTextEncode().encode(clip, "")[0]
    picture = reference_image(astronaut(), args.size, args.size, "bench")
    clips = 3

    def clip_from(reference, seed, anchor, match):
        latent, steps, denoise = FrameSimilarityPrior.execute(
            vae, reference, args.frames, args.size, args.size, args.steps, 1.0, 0.5, 9, 18.0, "latent", seed).result
        patched = apply_i2v_adapter(model, adapter, latent["samples"], 1.0)
        if anchor:
            patched = AnchorLatentColour.execute(patched, latent, 0.5).result[0]
        sampled = nodes.common_ksampler(patched, seed, steps, 7.5, "ddim", "ddim_uniform", positive, negative, latent,
                                        denoise=denoise)[0]
        images = vae.decode(sampled["samples"])
        if match is None:
            return images
        return ColourMatch.execute(images, picture if match == "picture" else None).result[0]

    rows = []
    for name, (anchor, match) in CONFIGURATIONS.items():
        with torch.inference_mode():
            video = reference = picture
            for k in range(clips):
                clip_images = clip_from(reference, k, anchor, match)
                video = clip_images if k == 0 else JoinClips.execute(video, clip_images).result[0]
                reference = LastFrame.execute(video).result[0]
                first, lab = video[:1].float(), lab_means(reference)
                start = lab_means(first)
                rows.append((name, k + 1, (lab[1:] - start[1:]).norm().item(), (lab[0] - start[0]).abs().item(),
                             (reference.float() - first).abs().mean().item()))
        assert video.shape[0] == clips * (args.frames - 1) + 1

    device = torch.cuda.get_device_name() if args.gpu else "CPU"
    print(f"\nDrift of each clip's last frame from the video's first frame, {clips} clips of {args.frames} frames {args.size}², "
          f"{args.steps} DDIM steps, random SD1.5-architecture weights, {device}")
    print("| fixes | clip | colour drift (Δab) | lightness drift (ΔL) | content drift (mean abs, 0..1) |")
    print("|---|---|---|---|---|")
    for name, k, colour, lightness, content in rows:
        print(f"| {name} | {k} | {colour:.2f} | {lightness:.2f} | {content:.3f} |")


if __name__ == "__main__":
    main()
