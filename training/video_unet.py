"""Our kernels' modules inside a frozen diffusers UNet, at exactly the places the ComfyUI nodes put them.

- I2V-Adapter: an attention processor on every attn1 computes the frozen self-attention and adds the branch's
  output after attn1's to_out (as nodes/i2v_adapter_patch.py does with ComfyUI's attn1 patches).
- Motion modules: after a block's resnet (+attention) layer, before its down/up-sampler. Look-back layers: at the
  output of every down block (after its downsampler; that output is also the block's last skip connection, as in
  ComfyUI where the layer sits inside the input block), the middle block and every up block (after its upsampler).
  Both through forward hooks, so diffusers is not forked (nodes/unet_injection.py places them in ComfyUI).
- Content-Adapter (frozen): an attention processor on every attn2 adds the image tokens' attention to the text
  attention before attn2's to_out (as nodes/content_adapter_patch.py does with attn2 replace patches).
- DQFormer (AID): the same attn2 processor adds Attn(Q, T W_K, T W_V) with attn2's own frozen key and value
  projections and each frame's condition tokens T (as nodes/dqformer_patch.py does).
- GroupNorm across frames (AnimateDiff v1): every ResNet norm and the output norm replaced by a view of itself that
  normalises each video's frames together (as nodes/frame_group_norm_patch.py object-patches them).

A video batch is [videos, frames, C, H, W]; the UNet sees its frames one after another, as ComfyUI batches them.
The frame count is stored at each forward and read by the processors and hooks, also when gradient checkpointing
recomputes them during the backward pass of the same batch.
"""
from dataclasses import dataclass

import diffusers
import torch
from diffusers.models.resnet import ResnetBlock2D
from torch import nn
from torch.utils.checkpoint import checkpoint

from ..kernels.attention import sdpa_attention
from ..kernels.content_adapter import ContentAdapter, ImageKeyValue, image_attention
from ..kernels.dqformer import DQFormer, frame_tokens
from ..kernels.first_frame_attention import FirstFrameBranch, I2VAdapter
from ..kernels.frame_group_norm import VideoBatch, across_frames
from ..kernels.look_back import LookBackLayers
from ..kernels.motion_module import MotionModules
from ..kernels.unet_layout import UNetFamily, cross_attention_layers


class FrameCount:
    value = 0


class ImageTokens:
    value: torch.Tensor | None = None  # [videos, queries, context] of the current batch


class ConditionTokens:
    value: torch.Tensor | None = None  # [videos·frames, queries, context]: the DQFormer's, per frame


@dataclass
class StateInputs:
    """A batch's DQFormer inputs: per video the vision-language model's features (padded) and its frames' blend of
    the states; `keep` False where the caption is dropped (no condition tokens, as on the unconditional side)."""
    instruction: torch.Tensor        # [videos, T, hidden]
    instruction_mask: torch.Tensor   # [videos, T]
    states: torch.Tensor             # [videos, states, T', hidden]
    states_mask: torch.Tensor        # [videos, states, T']
    weights: torch.Tensor            # [videos, frames, states]
    keep: torch.Tensor               # [videos] bool


class FirstFrameProcessor:
    """attn1 of diffusers: Attn(Q, K, V) W_O + Attn(X W'_Q, K_1, V_1) W'_O (a plain object, not a module, so
    that the branch's weights stay under VideoUNet.i2v_adapter and out of the UNet's state_dict)."""

    def __init__(self, branch: FirstFrameBranch, frames: FrameCount):
        self.branch, self.frames = branch, frames

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, *args,
                 **kwargs):
        q, k, v = attn.to_q(hidden_states), attn.to_k(hidden_states), attn.to_v(hidden_states)
        out = attn.to_out[1](attn.to_out[0](sdpa_attention(q, k, v, attn.heads)))
        frames = self.frames.value
        return out + self.branch(hidden_states, k[::frames], v[::frames], frames, attn.heads)


class CrossAttentionProcessor:
    """attn2 of diffusers: (Attn(Q, K_text, V_text) + Attn(Q, K_ip, V_ip) + Attn(Q, T W_K, T W_V)) W_O: the text,
    the Content-Adapter's image tokens (the official IPAdapterAttention) and the DQFormer's condition tokens, each
    term where its module is present."""

    def __init__(self, image_layer: ImageKeyValue | None, image: ImageTokens, conditions: ConditionTokens):
        self.image_layer, self.image, self.conditions = image_layer, image, conditions

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, *args,
                 **kwargs):
        q, k, v = attn.to_q(hidden_states), attn.to_k(encoder_hidden_states), attn.to_v(encoder_hidden_states)
        out = sdpa_attention(q, k, v, attn.heads)
        if self.image_layer is not None:
            tokens = self.image.value.to(q)
            out = out + image_attention(q, self.image_layer.to_k_ip(tokens), self.image_layer.to_v_ip(tokens),
                                        attn.heads)
        if self.conditions.value is not None:
            tokens = self.conditions.value.to(q)
            out = out + sdpa_attention(q, attn.to_k(tokens), attn.to_v(tokens), attn.heads)
        return attn.to_out[1](attn.to_out[0](out))


def _group_norm_sites(unet: nn.Module) -> list[tuple[nn.Module, str]]:
    """(parent, attribute) of every GroupNorm the official UNet3D applies to 5-D tensors: each ResNet's two norms
    and the output norm (the transformers' norms stay per frame)."""
    sites = [(module, name) for module in unet.modules() if isinstance(module, ResnetBlock2D)
             for name in ("norm1", "norm2")]
    return sites + [(unet, "conv_norm_out")]


def _hidden_of(output):
    """The hidden states in what a diffusers layer returns inside a block: a tensor (resnets) or a (tensor,) tuple
    (Transformer2DModel, which the blocks call with return_dict=False)."""
    return output if isinstance(output, torch.Tensor) else output[0]


def _with_hidden(output, hidden):
    return hidden if isinstance(output, torch.Tensor) else (hidden, *output[1:])


def motion_module_host(unet: nn.Module, site: str) -> nn.Module:
    """The diffusers layer after which the motion module of `site` (`down_blocks.1.motion_modules.0`) runs: the
    j-th attention of the block, or its j-th resnet where the block has no attention."""
    block_path, _, index = site.rpartition(".motion_modules.")
    block = unet.get_submodule(block_path)
    layers = getattr(block, "attentions", None) or block.resnets
    return layers[int(index)]


class VideoUNet(nn.Module):
    """A frozen diffusers UNet2DConditionModel with an I2V-Adapter, look-back layers and motion modules (each
    optional), called on video batches. The adapter and the look-back layers are what trains; the rest is frozen."""

    def __init__(self, unet: nn.Module, family: UNetFamily, i2v_adapter: I2VAdapter | None = None,
                 look_back: LookBackLayers | None = None, motion_modules: MotionModules | None = None,
                 content_adapter: ContentAdapter | None = None, group_norm_across_frames: bool = False,
                 dqformer: DQFormer | None = None):
        super().__init__()
        self.unet, self.family, self.frames = unet, family, FrameCount()
        self.i2v_adapter, self.look_back, self.motion_modules = i2v_adapter, look_back, motion_modules
        self.content_adapter, self.image_tokens, self.video_batch = content_adapter, ImageTokens(), VideoBatch()
        self.dqformer, self.condition_tokens = dqformer, ConditionTokens()
        self.checkpoint_layers = False
        unet.requires_grad_(False)
        self._processors, self._hooks, self._norms = {}, [], []
        if content_adapter is not None:
            content_adapter.requires_grad_(False)
        if content_adapter is not None or dqformer is not None:
            for path, _ in cross_attention_layers(family):
                attention = unet.get_submodule(path)
                self._processors[path] = attention.processor
                image_layer = content_adapter.get_submodule(path) if content_adapter is not None else None
                attention.set_processor(CrossAttentionProcessor(image_layer, self.image_tokens, self.condition_tokens))
        if group_norm_across_frames:
            for parent, name in _group_norm_sites(unet):
                self._norms.append((parent, name, getattr(parent, name)))
                setattr(parent, name, across_frames(getattr(parent, name), self.video_batch))
        if i2v_adapter is not None:
            for path, branch in i2v_adapter.branches():
                attention = unet.get_submodule(path)
                self._processors[path] = attention.processor
                attention.set_processor(FirstFrameProcessor(branch, self.frames))
        if motion_modules is not None:
            motion_modules.requires_grad_(False)
            for site, module in motion_modules.sites_and_modules():
                self._hooks.append(motion_module_host(unet, site).register_forward_hook(self._layer_hook(module)))
        if look_back is not None:
            for site, layer in look_back.sites_and_modules():
                self._hooks.append(unet.get_submodule(site).register_forward_hook(self._block_output_hook(layer, site)))

    def remove(self) -> None:
        """Give the UNet back as it was (another VideoUNet may then be built on it)."""
        for path, processor in self._processors.items():
            self.unet.get_submodule(path).set_processor(processor)
        for hook in self._hooks:
            hook.remove()
        for parent, name, norm in self._norms:
            setattr(parent, name, norm)
        self._processors, self._hooks, self._norms = {}, [], []

    @property
    def trained(self) -> list[str]:
        return [name for name in ("i2v_adapter", "look_back", "dqformer") if getattr(self, name) is not None]

    def trained_state_dict(self) -> dict[str, torch.Tensor]:
        return {f"{name}.{key}": value for name in self.trained
                for key, value in getattr(self, name).state_dict().items()}

    def load_trained_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        expected = self.trained_state_dict()
        if state.keys() != expected.keys():
            raise ValueError(f"the checkpoint trains {sorted({k.split('.')[0] for k in state})}, this run "
                             f"{sorted({k.split('.')[0] for k in expected})}")
        with torch.no_grad():
            for key, value in expected.items():
                value.copy_(state[key])

    def enable_gradient_checkpointing(self) -> None:
        """Recompute the UNet's blocks and our temporal layers in the backward pass instead of storing them."""
        self.unet.enable_gradient_checkpointing()
        self.checkpoint_layers = True

    def _run(self, layer: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
        if self.checkpoint_layers and torch.is_grad_enabled():
            return checkpoint(layer, hidden, self.frames.value, use_reentrant=False)
        return layer(hidden, self.frames.value)

    def _layer_hook(self, layer: nn.Module):
        def hook(module, args, output):
            return _with_hidden(output, self._run(layer, _hidden_of(output)))
        return hook

    def _block_output_hook(self, layer: nn.Module, site: str):
        def hook(module, args, output):
            if site.startswith("down_blocks."):  # (hidden, skip connections); the last skip is the output itself
                hidden, skips = output
                if skips[-1] is not hidden:  # replacing the last skip below is right only while it is the output
                    raise RuntimeError(f"{site}: this diffusers ({diffusers.__version__}) no longer returns the "
                                       "block's output as its last skip connection, which the look-back layer must "
                                       "replace too; install a diffusers version where it does")
                updated = self._run(layer, hidden)
                return updated, (*skips[:-1], updated)
            return self._run(layer, output)
        return hook

    def _condition_tokens(self, states: StateInputs) -> torch.Tensor:
        """[videos·frames, queries, context]: each video's DQFormer tokens per state, blended per frame."""
        per_video = []
        for v in range(states.instruction.shape[0]):
            tokens = self.dqformer(states.instruction[v:v + 1], states.instruction_mask[v:v + 1], states.states[v],
                                   states.states_mask[v])
            per_video.append(frame_tokens(tokens, states.weights[v]) * states.keep[v])
        return torch.cat(per_video)

    def forward(self, latents: torch.Tensor, timesteps: torch.Tensor, context: torch.Tensor,
                added_cond: dict[str, torch.Tensor] | None = None, image_tokens: torch.Tensor | None = None,
                states: StateInputs | None = None) -> torch.Tensor:
        """latents: [videos, frames, C, H, W] (frame 0 the clean reference); timesteps: [videos], one per video;
        context: [videos, tokens, dim]; added_cond: SDXL's per-video text_embeds and time_ids; image_tokens: the
        Content-Adapter's [videos, queries, dim]; states: the DQFormer's inputs. Returns the predicted noise,
        [videos, frames, C, H, W]."""
        videos, frames = latents.shape[:2]
        if (self.content_adapter is None) != (image_tokens is None):
            raise ValueError("image tokens go with a Content-Adapter, and a Content-Adapter needs them")
        if (self.dqformer is None) != (states is None):
            raise ValueError("state features go with a DQFormer, and a DQFormer needs them")
        self.frames.value, self.video_batch.videos, self.image_tokens.value = frames, videos, image_tokens
        self.condition_tokens.value = None if states is None else self._condition_tokens(states)
        per_frame = lambda t: t.repeat_interleave(frames, dim=0)
        extra = {"added_cond_kwargs": {k: per_frame(v) for k, v in added_cond.items()}} if added_cond else {}
        out = self.unet(latents.flatten(0, 1), per_frame(timesteps), per_frame(context), return_dict=False, **extra)[0]
        return out.unflatten(0, (videos, frames))
