"""Policy checkpoints: model weights + normalization statistics + the robot contract.

A checkpoint is a local directory (DESIGN.md section 6; weights are never downloaded):
    config.json, model.safetensors   VLAModel.save_pretrained (models/vla.py)
    policy.json                      {'format': 1, 'preset', 'norm_stats', 'contract'}
The contract says which robot the policy was trained for: joint names, their units, the action
rate, the chunk length and the image size (and, from training, which dataset features fed
which input: `dataset_features`, {role: dataset key}). Loading against a different robot is
refused with a ContractMismatchError naming the fields, rather than driving an arm with misread
numbers.
The contract check and policy.json reading import no torch; only loading the model does.
"""

import json
from pathlib import Path

from vla_nodes.contract import GRIPPER_JOINT, JOINT_NAMES
from vla_nodes.policy.transforms import stats_from_dict, stats_to_dict

POLICY_FILE = 'policy.json'
FORMAT_VERSION = 1
DEFAULT_ACTION_RATE_HZ = 15.0  # DepthVLA's real-robot rate: a 16-step chunk spans about 1 s


class ContractMismatchError(ValueError):
    """The checkpoint was trained for a different robot contract."""


def make_contract(chunk_length, image_size, action_rate_hz=DEFAULT_ACTION_RATE_HZ,
                  joint_names=JOINT_NAMES, image_crop=None, dataset_features=None):
    """The robot contract as a JSON-ready dict.

    Args:
        chunk_length: actions per chunk (the model's horizon H).
        image_size: (height, width) of the model's input image, pixels.
        action_rate_hz: rate at which chunk steps are executed.
        joint_names: action/state dimensions in order; the gripper is in metres.
        image_crop: (top, left, bottom, right) fractions of the camera frame the model sees
            (transforms.crop_fraction); None = the whole frame (no `image_crop` field).
        dataset_features: {role: dataset key} the model was trained from (train/data.py
            feature map: image, depth, state, action); None = no `dataset_features` field.
    """
    contract = {
        'joint_names': list(joint_names),
        'units': ['m' if n.endswith(GRIPPER_JOINT) else 'rad' for n in joint_names],
        'action_rate_hz': float(action_rate_hz),
        'chunk_length': int(chunk_length),
        'image_size': [int(image_size[0]), int(image_size[1])],
    }
    if image_crop:
        contract['image_crop'] = [float(v) for v in image_crop]
    if dataset_features:
        contract['dataset_features'] = {str(k): str(v) for k, v in dataset_features.items()}
    return contract


def check_contract(actual, expected):
    """Refuse a checkpoint whose contract differs from the robot's.

    Only the fields present in `expected` are compared, so a node may check what it knows.

    Args:
        actual: the checkpoint's contract dict.
        expected: the robot's contract dict (a subset of fields is fine).

    Raises:
        ContractMismatchError: naming every mismatching field with both values.
    """
    actual, expected = _plain(actual), _plain(expected)
    problems = [
        f'{key}: checkpoint has {actual.get(key, "<missing>")!r}, robot expects {value!r}'
        for key, value in expected.items() if actual.get(key) != value
    ]
    if problems:
        raise ContractMismatchError('policy contract mismatch: ' + '; '.join(problems))


def read_policy_json(directory):
    """policy.json of a checkpoint directory, with norm_stats as {key: NormStats}.

    Raises:
        FileNotFoundError: naming the directory and policy.json.
    """
    path = Path(directory) / POLICY_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f'policy checkpoint directory {str(Path(directory))!r} has no {POLICY_FILE}')
    values = json.loads(path.read_text())
    values['norm_stats'] = stats_from_dict(values['norm_stats'])
    return values


def save_checkpoint(directory, model, stats, contract_dict, preset='tiny'):
    """Write a policy checkpoint.

    Args:
        directory: target directory, created if needed.
        model: a VLAModel.
        stats: {contract key: NormStats} for the state and the action.
        contract_dict: from make_contract; must agree with the model's horizon and image size.
        preset: name of the model preset, for humans and for the training config.
    """
    config = model.config
    check_contract(contract_dict, {'chunk_length': config.horizon,
                                   'image_size': [config.image_size, config.image_size]})
    model.save_pretrained(directory)
    policy = {'format': FORMAT_VERSION, 'preset': preset, 'norm_stats': stats_to_dict(stats),
              'contract': _plain(contract_dict)}
    (Path(directory) / POLICY_FILE).write_text(json.dumps(policy, indent=2) + '\n')


def load_checkpoint(directory, expected_contract=None, device='cpu'):
    """Load a policy checkpoint; check the robot contract before the weights.

    Returns:
        {'model': VLAModel (eval mode), 'norm_stats': {key: NormStats}, 'contract': dict,
         'preset': str}.

    Raises:
        FileNotFoundError: the directory or one of its files is missing (named).
        ContractMismatchError: the checkpoint's contract differs from `expected_contract`.
    """
    from vla_nodes.models.vla import VLAModel

    policy = read_policy_json(directory)
    if expected_contract is not None:
        check_contract(policy['contract'], expected_contract)
    model = VLAModel.from_pretrained(directory, device=device)
    return {'model': model, 'norm_stats': policy['norm_stats'],
            'contract': policy['contract'], 'preset': policy['preset']}


def _plain(values):
    """Tuples -> lists and numbers as JSON has them, so that comparisons see values only."""
    return json.loads(json.dumps(values))
