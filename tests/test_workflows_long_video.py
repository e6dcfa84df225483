"""Tier 2: the long-video graph (workflows/i2v_long_video.json) on a real ComfyUI server, on random files in the
official release's layouts: three clips in one queue, each started from the last frame of the one before, joined
without that frame twice; and I2V Join Clips' refusals."""
import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from comfyui_i2v_adapter.tests.support.workflows import OFFICIAL_TEST_FILES, workflow_prompt

pytestmark = pytest.mark.comfyui
WORKFLOW = "i2v_long_video.json"


def of_type(prompt: dict, class_type: str) -> list[str]:
    return [k for k, v in prompt.items() if v["class_type"] == class_type]


def clips_in_order(prompt: dict) -> list[str]:
    """The priors, clip 1 first: each next one's image comes from I2V Last Frame of the one before."""
    priors = of_type(prompt, "I2V_FrameSimilarityPrior")
    source = lambda prior: prompt[prompt[prior]["inputs"]["image"][0]]
    order = [next(p for p in priors if source(p)["class_type"] == "LoadImage")]
    while len(order) < len(priors):
        colour = lambda prior: next(k for k in of_type(prompt, "I2V_ColourMatch")
                                    if _upstream(prompt, k, "I2V_FrameSimilarityPrior") == prior)
        last = next(k for k in of_type(prompt, "I2V_LastFrame") if prompt[k]["inputs"]["images"][0] == colour(order[-1]))
        order.append(next(p for p in priors if prompt[p]["inputs"]["image"][0] == last))
    return order


def _upstream(prompt: dict, node: str, class_type: str) -> str:
    """The node of `class_type` reached from `node` through first inputs (colour match -> decode -> sampler ...)."""
    inputs = prompt[node]["inputs"]
    for name in ("images", "samples", "latent_image"):
        if name in inputs:
            source = inputs[name][0]
            return source if prompt[source]["class_type"] == class_type else _upstream(prompt, source, class_type)
    raise KeyError(class_type)


def pngs(server, outputs: dict, node: str) -> np.ndarray:
    return np.stack([np.asarray(Image.open(server.base / "output" / i["subfolder"] / i["filename"]))
                     for i in outputs[node]["images"]])


def test_three_clips_each_from_the_last_frame_of_the_one_before_joined_once(server, official_files):
    prompt = workflow_prompt(server, WORKFLOW, OFFICIAL_TEST_FILES)
    priors = clips_in_order(prompt)
    colours = [next(k for k in of_type(prompt, "I2V_ColourMatch") if _upstream(prompt, k, "I2V_FrameSimilarityPrior")
                    == prior) for prior in priors]
    lasts = [prompt[p]["inputs"]["image"][0] for p in priors[1:]]
    video = prompt[of_type(prompt, "CreateVideo")[0]]["inputs"]["images"][0]
    vae = prompt[priors[0]]["inputs"]["vae"]
    for node in [*colours, *lasts, video]:
        prompt[f"png_{node}"] = {"class_type": "SaveImage", "inputs": {"images": [node, 0],
                                                                        "filename_prefix": f"probes/png_{node}"}}
    for node in priors:
        prompt[f"start_{node}"] = {"class_type": "SaveLatent", "inputs": {"samples": [node, 0],
                                                                           "filename_prefix": f"probes/start_{node}"}}
    for node in lasts:
        prompt[f"encode_{node}"] = {"class_type": "VAEEncode", "inputs": {"pixels": [node, 0], "vae": vae}}
        prompt[f"encoded_{node}"] = {"class_type": "SaveLatent", "inputs": {"samples": [f"encode_{node}", 0],
                                                                             "filename_prefix": f"probes/enc_{node}"}}
    outputs = server.run(prompt)["outputs"]
    latent = lambda probe: load_file(str(server.base / "output" / outputs[probe]["latents"][0]["subfolder"]
                                         / outputs[probe]["latents"][0]["filename"]))["latent_tensor"]

    clips = [pngs(server, outputs, f"png_{c}") for c in colours]
    assert [len(c) for c in clips] == [16, 16, 16]
    joined = pngs(server, outputs, f"png_{video}")
    assert len(joined) == 16 + 15 + 15
    assert np.array_equal(joined, np.concatenate([clips[0], clips[1][1:], clips[2][1:]]))
    for k, last in enumerate(lasts):
        assert np.array_equal(pngs(server, outputs, f"png_{last}")[0], clips[k][-1])
        # the next clip's frame 0 (the adapter's reference, the prior's source) is that last frame, encoded
        assert torch.equal(latent(f"start_{priors[k + 1]}")[0], latent(f"encoded_{last}")[0])


def test_join_clips_refuses_clips_of_another_size_and_a_reference_alone(comfyui):
    from comfyui_i2v_adapter.nodes.video_continuation import JoinClips, LastFrame

    video = torch.rand(16, 64, 64, 3)
    assert torch.equal(LastFrame.execute(video).result[0], video[-1:])
    with pytest.raises(ValueError, match=r"the video is 64×64 with 3 channels but next_clip is 96×64 with 3 channels; "
                                         "make every clip at the same width and height"):
        JoinClips.execute(video, torch.rand(16, 64, 96, 3))
    with pytest.raises(ValueError, match="next_clip holds a single frame, its reference"):
        JoinClips.execute(video, video[-1:])
    assert torch.equal(JoinClips.execute(video, video[8:]).result[0], torch.cat([video, video[9:]]))
