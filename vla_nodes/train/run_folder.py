# Copyright 2026 vla_nodes developers
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.


"""A run folder's files: optimizer and train state, full FSDP state, metrics and loss plot."""

from dataclasses import asdict
import json
from pathlib import Path


class FullState:
    """A gathered model as save_checkpoint wants it: `config` + `save_pretrained` (rank 0)."""

    def __init__(self, config, state):
        self.config, self.state = config, state

    def save_pretrained(self, directory):
        """config.json + model.safetensors, as VLAModel.save_pretrained writes them."""
        from safetensors.torch import save_file
        from vla_nodes.models.vla import CONFIG_FILE, WEIGHTS_FILE

        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        (path / CONFIG_FILE).write_text(json.dumps(asdict(self.config), indent=2) + '\n')
        save_file({k: v.contiguous() for k, v in self.state.items()}, str(path / WEIGHTS_FILE),
                  metadata={'format': 'pt'})


def gather_full_state(model, optimizer):
    """Collective: (FullState, optimizer state by parameter name) on rank 0, (None, None) else."""
    import torch.distributed as dist
    from torch.distributed.checkpoint.state_dict import (get_model_state_dict,
                                                         get_optimizer_state_dict,
                                                         StateDictOptions)

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    weights = get_model_state_dict(model, options=options)
    opt_state = get_optimizer_state_dict(model, optimizer, options=options)
    if dist.get_rank() != 0:
        return None, None
    return FullState(model.config, weights), opt_state


def load_full_optimizer(directory, model, optimizer):
    """Every rank: load the full optimizer state saved by an FSDP run into the sharded one."""
    from safetensors.torch import load_file
    from torch.distributed.checkpoint.state_dict import (set_optimizer_state_dict,
                                                         StateDictOptions)

    info = json.loads((Path(directory) / 'train_state.json').read_text())
    state = {}
    for name, value in load_file(str(Path(directory) / 'optimizer.safetensors')).items():
        param, key = name.rsplit('::', 1)
        state.setdefault(param, {})[key] = value
    set_optimizer_state_dict(model, optimizer, {'state': state,
                                                'param_groups': info['param_groups']},
                             options=StateDictOptions(full_state_dict=True))


def save_train_state(directory, optimizer, step, config, state=None):
    """optimizer.safetensors (tensors) + train_state.json (step, param groups, settings).

    `state`: an optimizer state dict gathered by FSDP (keyed by parameter name, saved as
    'name::key'); else the optimizer's own (keyed by index, saved as 'index.key').
    """
    from safetensors.torch import save_file

    sep = '.' if state is None else '::'
    state = optimizer.state_dict() if state is None else state
    tensors = {f'{i}{sep}{k}': v.detach().cpu().contiguous()
               for i, s in state['state'].items() for k, v in s.items()}
    save_file(tensors, str(Path(directory) / 'optimizer.safetensors'))
    info = {'step': step, 'param_groups': state['param_groups'], 'config': asdict(config)}
    (Path(directory) / 'train_state.json').write_text(json.dumps(info, indent=2) + '\n')


def load_train_state(directory, optimizer):
    """Restore the optimizer; returns the step to continue from."""
    from safetensors.torch import load_file

    info = json.loads((Path(directory) / 'train_state.json').read_text())
    state = {}
    for name, value in load_file(str(Path(directory) / 'optimizer.safetensors')).items():
        index, key = name.split('.', 1)
        state.setdefault(int(index), {})[key] = value
    optimizer.load_state_dict({'state': state, 'param_groups': info['param_groups']})
    return int(info['step'])


def plot_losses(path, history):
    """Save the train and validation loss curves as a PNG (matplotlib, Agg)."""
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(7, 4))
    train = [(h['step'], h['loss']) for h in history if 'loss' in h]
    val = [(h['step'], h['val_loss']) for h in history if 'val_loss' in h]
    for points, label in ((train, 'train'), (val, 'validation')):
        if points:
            axes.plot(*zip(*points), label=label, marker='o' if label == 'validation' else None)
    axes.set_xlabel('step')
    axes.set_ylabel('loss')
    axes.set_yscale('log')
    axes.legend()
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)


# --- the run ------------------------------------------------------------------------------------


def write_metrics(out, history):
    lines = ''.join(json.dumps(h) + '\n' for h in history)
    (out / 'metrics.jsonl').write_text(lines)


def read_metrics(out):
    path = out / 'metrics.jsonl'
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
