"""DQFormer (AID: Adapting Image2Video Diffusion Models for Instruction-guided Video Prediction): condition tokens
from a vision-language model's hidden states, for the UNet's cross-attention.

Two query sets ("dual queries"), each a transformer decoder over learnable queries (self-attention among them,
cross-attention to the features, feed-forward): the instruction queries read the hidden states of the model's input
(the reference image and the instruction), the state queries those of one state's sentence in its answer. AID's
Table 8 sizes: 77 queries, 1024 wide, 2 layers, 8 heads. Their outputs are summed and projected to the UNet's
cross-attention width (768 for SD1.5, 2048 for SDXL) by a zero-initialised layer, so an untrained DQFormer gives
zero tokens: through attn2's own key and value projections (no biases) they add exactly nothing.
"""
from dataclasses import asdict, dataclass

import torch
from torch import nn



@dataclass(frozen=True)
class DQFormerShape:
    feature_dim: int    # the vision-language model's hidden width
    context_dim: int    # the UNet's cross-attention width
    width: int = 1024
    layers: int = 2
    heads: int = 8
    queries: int = 77

    def as_metadata(self) -> dict[str, str]:
        return {k: str(v) for k, v in asdict(self).items()}


class QueryBranch(nn.Module):
    """Learnable queries that read one kind of feature (torch's pre-norm transformer decoder)."""

    def __init__(self, shape: DQFormerShape):
        super().__init__()
        self.queries = nn.Parameter(torch.randn(shape.queries, shape.width) * shape.width ** -0.5)
        self.proj_in = nn.Linear(shape.feature_dim, shape.width)
        layer = nn.TransformerDecoderLayer(shape.width, shape.heads, 4 * shape.width, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.decoder = nn.TransformerDecoder(layer, shape.layers)

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """features [B, T, feature_dim], mask [B, T] (True: a real token) -> [B, queries, width]."""
        queries = self.queries.expand(features.shape[0], -1, -1)
        return self.decoder(queries, self.proj_in(features), memory_key_padding_mask=~mask)


class DQFormer(nn.Module):
    def __init__(self, shape: DQFormerShape):
        super().__init__()
        self.shape = shape
        self.instruction = QueryBranch(shape)
        self.state = QueryBranch(shape)
        self.norm_out = nn.LayerNorm(shape.width)
        self.proj_out = nn.Linear(shape.width, shape.context_dim)
        nn.init.zeros_(self.proj_out.weight)
        nn.init.zeros_(self.proj_out.bias)

    def forward(self, instruction: torch.Tensor, instruction_mask: torch.Tensor, states: torch.Tensor,
                states_mask: torch.Tensor) -> torch.Tensor:
        """Condition tokens [states, queries, context_dim] for one video: `instruction` [1, T, F] with its mask,
        `states` [states, T', F] (one row per state, padded) with theirs."""
        joint = self.instruction(instruction, instruction_mask) + self.state(states, states_mask)
        return self.proj_out(self.norm_out(joint))


def frame_tokens(tokens: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Per-frame tokens [frames, queries, C] from per-state tokens [states, queries, C] and the [frames, states]
    weights that blend the states across their boundaries (kernels.state_schedule)."""
    return torch.einsum("fn,nqc->fqc", weights.to(tokens), tokens)

