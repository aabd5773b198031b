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

"""Policy checkpoints: model weights + normalization statistics + the robot contract.

A checkpoint is a local directory (DESIGN.md section 6; weights are never downloaded):
    config.json, model.safetensors   VLAModel.save_pretrained (models/vla.py)
    policy.json                      {'format': 1, 'preset', 'norm_stats', 'contract'}
The contract says which robot the policy was trained for: joint names, their units, the action
rate, the chunk length and the image size (and, from training, which dataset features fed
which input: `dataset_features`, {role: dataset key}, and the cameras it sees: `cameras`, contract
names, the primary first; a robot that lacks one is refused; and the object poses it reads,
`environment_state`, feature names of perception/env_state.py: a robot without pose_node's
/vla/objects is refused). Loading against a different robot is
refused with a ContractMismatchError naming the fields, rather than driving an arm with misread
numbers.
The contract check and policy.json reading import no torch; only loading the model does.
"""

import json
import math
from pathlib import Path

import numpy as np

from vla_nodes.contract import (ACTION, ACTION_RATE_HZ, camera, DEFAULT_CAMERAS, GRIPPER_JOINT,
                                JOINT_NAMES, OBJECTS_TOPIC, OBS_ENV_STATE, OBS_STATE)
from vla_nodes.policy.transforms import check_crop, stats_from_dict, stats_to_dict

POLICY_FILE = 'policy.json'
FORMAT_VERSION = 1


class ContractMismatchError(ValueError):
    """The checkpoint was trained for a different robot contract."""


def joint_units(joint_names):
    """The suite's unit of each joint: metres for a gripper opening, radians otherwise."""
    return ['m' if n.endswith(GRIPPER_JOINT) else 'rad' for n in joint_names]


def make_contract(chunk_length, image_size, action_rate_hz=ACTION_RATE_HZ,
                  joint_names=JOINT_NAMES, image_crop=None, dataset_features=None,
                  cameras=None, environment_state=None):
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
        cameras: the contract camera names the model sees, the primary (OBS_IMAGE) first
            (contract.CAMERAS); None = no field, read as the scene camera alone.
        environment_state: feature names of the object poses the model reads (OBS_ENV_STATE,
            perception/env_state.py); None = the model reads none (no field).
    """
    contract = {
        'joint_names': list(joint_names),
        'units': joint_units(joint_names),
        'action_rate_hz': float(action_rate_hz),
        'chunk_length': int(chunk_length),
        'image_size': [int(image_size[0]), int(image_size[1])],
    }
    if image_crop:
        contract['image_crop'] = [float(v) for v in image_crop]
    if dataset_features:
        contract['dataset_features'] = {str(k): str(v) for k, v in dataset_features.items()}
    if cameras:
        contract['cameras'] = [str(c) for c in cameras]
    if environment_state:
        contract['environment_state'] = [str(n) for n in environment_state]
    return contract


def reads_env_state(model_config: dict) -> bool:
    """Whether a model (config.json's VLAConfig) reads object poses, not predicts them."""
    return bool(model_config.get('env_state_dim')) and not model_config.get('env_state_from_image')


def contract_env_state(contract):
    """The object-pose feature names a checkpoint reads ([] = none)."""
    return list(contract.get('environment_state') or [])


def contract_cameras(contract):
    """The camera names a checkpoint's contract needs (older checkpoints: the scene camera)."""
    return list(contract.get('cameras') or DEFAULT_CAMERAS)


def extra_image_keys(cameras):
    """The model's `extra_images` for these camera names: every camera's key but the first's."""
    return tuple(camera(c).image_key for c in list(cameras)[1:])


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
        for key, value in expected.items()
        if actual.get(key) != value and key not in ('cameras', 'objects')
    ]
    # The robot says whether it has object poses (pose_node's /vla/objects); a checkpoint that
    # reads them cannot run without.
    if contract_env_state(actual) and expected.get('objects') is False:
        from vla_nodes.perception.env_state import objects_of
        problems.append(
            f'environment_state: checkpoint reads object poses of '
            f'{list(objects_of(contract_env_state(actual)))} from {OBJECTS_TOPIC}, this robot '
            'has no source: run pose_node (detect_objects: true) and set the objects_topic '
            'of policy_node, or use a checkpoint trained without --env-state')
    # The robot lists the cameras it has; the checkpoint needs some of them (a subset).
    lacking = [c for c in contract_cameras(actual) if c not in expected.get('cameras', [])]
    if 'cameras' in expected and lacking:
        problems.append(
            f'cameras: checkpoint needs {contract_cameras(actual)}, this robot has '
            f'{expected["cameras"]} (lacks {lacking}): start a camera_node for each (topics '
            + ', '.join(camera(c).color_topic for c in lacking)
            + ") and add it to policy_node's `cameras` parameter, or use a checkpoint trained "
            'on the cameras this robot has')
    if problems:
        raise ContractMismatchError('policy contract mismatch: ' + '; '.join(problems))


def validate_checkpoint(policy, model_config, expected=None):
    """Everything in a checkpoint that changes what reaches the arm, checked before loading.

    Covers joint names and order (against `expected`), units (rad, gripper m), the action rate,
    the chunk length and image size against the model's config, the crop, and the shapes and
    finiteness of the norm statistics, so that no misread number and no failing inference can
    follow a load that succeeded.

    Args:
        policy: policy.json's values, norm_stats as {key: NormStats} (read_policy_json).
        model_config: config.json's values (the VLAConfig as a dict).
        expected: the robot's contract fields (check_contract), or None.

    Raises:
        ContractMismatchError: one line naming every problem and what to do.
    """
    contract = _plain(policy.get('contract') or {})
    problems, names = _robot_problems(contract)
    problems += _model_problems(contract, model_config, names)
    env_dim = int(model_config.get('env_state_dim') or 0) if reads_env_state(model_config) else 0
    dims = {OBS_STATE: model_config.get('state_dim'), ACTION: model_config.get('action_dim')}
    if env_dim:
        dims[OBS_ENV_STATE] = env_dim
    problems += _stats_problems(policy.get('norm_stats') or {}, dims)
    if problems:
        raise ContractMismatchError('policy checkpoint is unusable: ' + '; '.join(problems)
                                    + ' (retrain with vla-train, or fix policy.json)')
    if expected is not None:
        check_contract(contract, expected)


def _robot_problems(contract) -> tuple:
    """([problems], joint names) of the contract's robot side: joints, units, rate, crop."""
    problems = []
    names = contract.get('joint_names')
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        problems.append(f'joint_names {names!r} is not a list of joint names')
        names = []
    units = contract.get('units')
    if units != joint_units(names):
        problems.append(f'units {units!r} are not {joint_units(names)!r} (joints in rad, '
                        'gripper opening in m): convert the data and retrain')
    rate = contract.get('action_rate_hz')
    if not _number(rate) or not math.isfinite(rate) or rate <= 0:
        problems.append(f'action_rate_hz {rate!r} is not a positive number of Hz')
    try:
        check_crop(contract.get('image_crop'))
    except (TypeError, ValueError) as error:
        problems.append(f'image_crop: {error}')
    return problems, names


def _model_problems(contract, model_config, names) -> list:
    """Where the contract and the model's config disagree: chunk, image, cameras, dims."""
    problems = []
    horizon, size = model_config.get('horizon'), model_config.get('image_size')
    if contract.get('chunk_length') != horizon:
        problems.append(f'chunk_length {contract.get("chunk_length")!r} differs from the '
                        f"model's horizon {horizon}")
    if contract.get('image_size') != [size, size]:
        problems.append(f'image_size {contract.get("image_size")!r} differs from the '
                        f"model's input {[size, size]}")
    try:
        extra = list(extra_image_keys(contract_cameras(contract)))
    except ValueError as error:
        problems.append(f'cameras: {error}')
    else:
        if extra != list(model_config.get('extra_images') or []):
            problems.append(f'cameras {contract_cameras(contract)} need the model to take '
                            f'{extra} besides the primary image; its extra_images are '
                            f"{list(model_config.get('extra_images') or [])}")
    action_dim = model_config.get('action_dim')
    if names and action_dim != len(names):
        problems.append(f"the model's action_dim {action_dim} differs from the "
                        f'{len(names)} joint_names')
    env_dim = int(model_config.get('env_state_dim') or 0) if reads_env_state(model_config) else 0
    if len(contract_env_state(contract)) != env_dim:
        problems.append(f'environment_state {contract_env_state(contract)} has '
                        f"{len(contract_env_state(contract))} values, the model's env_state_dim "
                        f'is {env_dim}')
    return problems


def _stats_problems(stats, dims):
    """Why the norm statistics cannot (un)normalize vectors of `dims` ({key: size}), if so."""
    problems = []
    for key, dim in dims.items():
        if key not in stats:
            problems.append(f'norm_stats lack {key!r}')
            continue
        for field, values in vars(stats[key]).items():
            values = np.asarray(values)
            if values.shape != (dim,):
                problems.append(f'norm_stats[{key!r}].{field} has shape {values.shape}, the '
                                f'model needs ({dim},)')
            elif not np.all(np.isfinite(values)):
                problems.append(f'norm_stats[{key!r}].{field} is not finite')
    return problems


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


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
    try:
        values['norm_stats'] = stats_from_dict(values.get('norm_stats') or {})
    except (KeyError, TypeError, ValueError) as error:
        raise ContractMismatchError(
            f'{path}: norm_stats are malformed ({type(error).__name__}: {error}); each of '
            f'{OBS_STATE!r} and {ACTION!r} needs mean, std, q01 and q99 lists: retrain with '
            'vla-train') from None
    return values


def save_checkpoint(directory, model, stats, contract_dict, preset='tiny'):
    """Write a policy checkpoint.

    Args:
        directory: target directory, created if needed.
        model: a VLAModel.
        stats: {contract key: NormStats} for the state and the action.
        contract_dict: from make_contract; must agree with the model (validate_checkpoint).
        preset: name of the model preset, for humans and for the training config.
    """
    from dataclasses import asdict

    policy = {'format': FORMAT_VERSION, 'preset': preset, 'norm_stats': stats_to_dict(stats),
              'contract': _plain(contract_dict)}
    # The same check as at load: never write a checkpoint that the robot would refuse.
    validate_checkpoint({**policy, 'norm_stats': stats}, _plain(asdict(model.config)))
    model.save_pretrained(directory)
    (Path(directory) / POLICY_FILE).write_text(json.dumps(policy, indent=2) + '\n')


def load_checkpoint(directory, expected_contract=None, device='cpu'):
    """Load a policy checkpoint; check the robot contract before the weights.

    Returns:
        {'model': VLAModel (eval mode), 'norm_stats': {key: NormStats}, 'contract': dict,
         'preset': str}.

    Raises:
        FileNotFoundError: the directory or one of its files is missing (named).
        ContractMismatchError: the checkpoint is inconsistent or unsafe (validate_checkpoint),
            or its contract differs from `expected_contract`.
    """
    from vla_nodes.models.vla import CONFIG_FILE, VLAModel

    policy = read_policy_json(directory)
    config_path = Path(directory) / CONFIG_FILE
    if not config_path.is_file():
        raise FileNotFoundError(f'policy checkpoint directory {str(Path(directory))!r} has no '
                                f'{CONFIG_FILE}')
    validate_checkpoint(policy, json.loads(config_path.read_text()), expected_contract)
    model = VLAModel.from_pretrained(directory, device=device)
    return {'model': model, 'norm_stats': policy['norm_stats'],
            'contract': policy['contract'], 'preset': policy['preset']}


def _plain(values):
    """Tuples -> lists and numbers as JSON has them, so that comparisons see values only."""
    return json.loads(json.dumps(values))
