"""A depth-aware VLA: [image | depth | state | text] prefix -> flow-matching action chunk.

The walking-skeleton model and the seed of the model library (DESIGN.md section 6). Layout:
    prefix = [SigLIP image tokens | depth patch tokens | state token | byte text tokens]
             # (B, P, D) with P = 2 (S/p)^2 + 1 + N
    actions = FlowExpert(prefix)  # (B, H, A)
References: π0 (Black et al., 2024) for the prefix + flow-matching expert in shared attention;
QDepth-VLA (Li et al., 2025) and DepthVLA (Yuan et al., 2025) for depth as a token group the action
tokens attend to (research/seeds-qdepth-depthvla.md). States and actions are normalized (see
policy/transforms.py); the model never sees radians.

Checkpoints are a local directory: config.json (this file's VLAConfig) + model.safetensors.
"""

from dataclasses import asdict, dataclass, fields
import json
from pathlib import Path

import torch
from torch import nn

from vla_nodes.contract import ACTION, OBS_DEPTH, OBS_IMAGE, OBS_INSTRUCTION, OBS_STATE
from vla_nodes.models.backbones import DepthEncoder, ImageEncoder, StateEncoder, TextEncoder
from vla_nodes.models.flow_expert import FlowExpert, FlowExpertConfig

CONFIG_FILE = 'config.json'
WEIGHTS_FILE = 'model.safetensors'


@dataclass(frozen=True)
class VLAConfig:
    """Sizes of the whole model; the defaults are the tiny CPU twin (random weights)."""

    image_size: int = 64  # S: RGB and depth are resized-with-pad to S x S
    patch_size: int = 8  # image and depth patches: (S/p)^2 = 64 tokens each
    vision_width: int = 32  # SigLIP hidden size
    vision_layers: int = 1
    vision_heads: int = 2
    max_depth_m: float = 2.0  # depth is clamped here, then scaled to [0, 1]; tabletop reach
    text_tokens: int = 32  # N: instruction bytes kept
    state_dim: int = 7
    width: int = 64  # D: prefix and action-expert width
    n_layer: int = 2
    n_head: int = 4
    horizon: int = 16  # H: action chunk length (16 on Piper in QDepth-VLA and DepthVLA)
    action_dim: int = 7
    num_steps: int = 10  # Euler denoising steps at inference (π0)

    def expert(self):
        """The FlowExpertConfig this model uses."""
        return FlowExpertConfig(
            width=self.width, n_layer=self.n_layer, n_head=self.n_head,
            horizon=self.horizon, action_dim=self.action_dim)


class VLAModel(nn.Module):
    """Prefix encoders + π0-style flow expert. Batches are dicts keyed by contract names.

    Batch keys: OBS_IMAGE RGB 0..255 # (B, S, S, 3); OBS_DEPTH metres, NaN invalid # (B, S, S);
    OBS_STATE normalized # (B, state_dim); OBS_INSTRUCTION list of B str; ACTION (training only)
    normalized # (B, H, A).
    """

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.image = ImageEncoder(config)
        self.depth = DepthEncoder(config)
        self.state = StateEncoder(config)
        self.text = TextEncoder(config)
        self.expert = FlowExpert(config.expert())

    def embed_prefix(self, batch):
        """Build the prefix.

        Returns:
            Prefix tokens # (B, P, D) and its mask, True on real tokens # (B, P).
        """
        device = self.expert.action_out.weight.device
        image = self.image(batch[OBS_IMAGE].to(device))  # (B, Ni, D)
        depth = self.depth(batch[OBS_DEPTH].to(device))  # (B, Nd, D)
        state = self.state(batch[OBS_STATE].to(device))  # (B, 1, D)
        text, text_mask = self.text(list(batch[OBS_INSTRUCTION]), device)  # (B, N, D)
        prefix = torch.cat([image, depth, state, text], dim=1)  # (B, P, D)
        dense = torch.ones(prefix.shape[0], prefix.shape[1] - text.shape[1], dtype=torch.bool,
                           device=device)
        return prefix, torch.cat([dense, text_mask], dim=1)

    def forward(self, batch, generator=None):
        """Training loss: flow matching on the normalized action chunk in batch[ACTION]."""
        prefix, mask = self.embed_prefix(batch)
        return self.expert.loss(prefix, batch[ACTION].to(prefix.device), mask, generator)

    def loss(self, batch, generator=None):
        """Same as forward (the name the training loop reads)."""
        return self(batch, generator)

    @torch.no_grad()
    def sample_actions(self, batch, generator=None, num_steps=None):
        """Sample a normalized action chunk # (B, H, A); same generator state, same chunk."""
        prefix, mask = self.embed_prefix(batch)
        steps = num_steps or self.config.num_steps
        return self.expert.sample(prefix, mask, num_steps=steps, generator=generator)

    def save_pretrained(self, directory):
        """Write config.json and model.safetensors into `directory` (created if needed)."""
        from safetensors.torch import save_model

        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        (path / CONFIG_FILE).write_text(json.dumps(asdict(self.config), indent=2) + '\n')
        save_model(self, str(path / WEIGHTS_FILE))

    @classmethod
    def from_pretrained(cls, directory, device='cpu'):
        """Load a model saved by `save_pretrained` from a local directory (never downloads).

        Raises:
            FileNotFoundError: the directory or one of its two files is missing.
            ValueError: config.json holds fields this VLAConfig does not know.
        """
        from safetensors.torch import load_model

        path = Path(directory)
        for name in (CONFIG_FILE, WEIGHTS_FILE):
            if not (path / name).is_file():
                raise FileNotFoundError(
                    f'VLA checkpoint directory {str(path)!r} has no {name} '
                    f'(expected {CONFIG_FILE} and {WEIGHTS_FILE}, written by save_pretrained)')
        config = config_from_dict(json.loads((path / CONFIG_FILE).read_text()))
        model = cls(config)
        load_model(model, str(path / WEIGHTS_FILE), device=str(device))
        return model.to(device).eval()


def config_from_dict(values):
    """VLAConfig from a dict, refusing unknown fields by name."""
    known = {f.name for f in fields(VLAConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f'unknown VLAConfig fields in {CONFIG_FILE}: {unknown}')
    return VLAConfig(**values)
