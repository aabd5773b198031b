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

"""The launch-file subset vla-launch accepts: reading a YAML launch file and checking it whole.

Where it fits: `launch_file.py` evaluates what this module has read and checked (as launch
parses a file up front); the subset and its semantics are described there. A check that fails
raises `Problem` (the reason) inside an action, which becomes a `LaunchError` naming the file
and the action.
"""

from pathlib import Path

import yaml

from vla_nodes.cli_errors import InputError

# action -> (required attributes, optional attributes); every action also takes if/unless.
_ATTRS = {
    'arg': ({'name'}, {'default', 'description'}),
    'let': ({'name', 'value'}, set()),
    'node': ({'pkg', 'exec'}, {'name', 'namespace', 'param', 'remap', 'output', 'args',
                               'ros_args'}),
    'include': ({'file'}, {'arg'}),
    'group': (set(), {'children', 'scoped', 'forwarding', 'keep'}),
    'push-ros-namespace': ({'namespace'}, set()),
    'push_ros_namespace': ({'namespace'}, set()),
}
CONDITIONS = {'if', 'unless'}
# Attributes holding lists of small mappings: (required keys, optional keys).
_LIST_ATTRS = {
    ('node', 'remap'): ({'from', 'to'}, set()),
    ('include', 'arg'): ({'name', 'value'}, set()),
    ('group', 'keep'): ({'name', 'value'}, set()),
}
_PARAM_KEYS = {'name', 'value', 'from', 'param'}
_PARAM_TYPED = frozenset({'value', 'param'})  # a value keeps its YAML type; 'param' nests
_NON_STRING = {'param', 'remap', 'arg', 'keep', 'children', 'scoped', 'forwarding'}


class LaunchError(InputError):
    """A launch file vla-launch cannot run; the message names the file, the action and why."""


class Problem(Exception):
    """A reason without its location; the action walker adds the file and the action."""


def read_actions(path: Path) -> list:
    """Read and check one launch file whole (as launch parses it up front); return its actions."""
    if not path.is_file():
        raise LaunchError(f'{path}: launch file not found')
    try:
        tree = yaml.safe_load(path.read_text(encoding='utf-8'))
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as err:
        raise LaunchError(f'{path}: not valid YAML: {err}') from None
    if not _acyclic(tree):
        raise LaunchError(f'{path}: a YAML alias contains itself (e.g. &a [*a]); write the '
                          f'value out')
    if not isinstance(tree, dict) or list(tree) != ['launch']:
        raise LaunchError(f"{path}: a YAML launch file has one root key 'launch' holding a list "
                          f'of actions')
    actions = tree['launch'] or []
    _check_actions(actions, path)
    return actions


def _acyclic(node, parents=()) -> bool:
    """Whether no list or mapping contains itself (PyYAML builds that from a recursive alias)."""
    if not isinstance(node, (list, dict)):
        return True
    if any(node is p for p in parents):
        return False
    items = node.values() if isinstance(node, dict) else node
    return all(_acyclic(item, parents + (node,)) for item in items)


def _check_actions(actions, path: Path) -> None:
    if not isinstance(actions, list):
        raise LaunchError(f'{path}: expected a list of actions, got {actions!r}')
    for item in actions:
        if not isinstance(item, dict) or len(item) != 1:
            raise LaunchError(f'{path}: each action is a one-key mapping such as "- node: ...", '
                              f'got {item!r}')
        kind, body = next(iter(item.items()))
        if kind not in _ATTRS:
            raise LaunchError(f"{path}: unknown action '{kind}'; vla-launch supports "
                              f"{', '.join(sorted(_ATTRS))}")
        try:
            _check_action(kind, body)
        except Problem as err:
            raise LaunchError(f'{path}: {kind}: {err}') from None
        if kind == 'group':
            _check_actions(children(body), path)


def _check_action(kind: str, body) -> None:
    if kind == 'group' and isinstance(body, list):
        return
    if not isinstance(body, dict):
        raise Problem(f'expected a mapping of attributes, got {body!r}')
    required, optional = _ATTRS[kind]
    _check_keys(body, required, optional | CONDITIONS)
    if CONDITIONS <= set(body):
        raise Problem('if and unless cannot be used together')
    for key, value in body.items():
        if key not in _NON_STRING and not isinstance(value, str):
            raise Problem(f"attribute '{key}' must be a string (quote it), got {value!r}")
        if (kind, key) in _LIST_ATTRS:
            _check_list(key, value, *_LIST_ATTRS[kind, key])
    if kind == 'node' and 'param' in body:
        _check_list('param', body['param'], set(), _PARAM_KEYS, _PARAM_TYPED)
        for entry in body['param']:
            _check_param(entry)
    if kind == 'group':
        if 'children' not in body:
            raise Problem("a group written as a mapping lists its actions under 'children'")
        for key in ('scoped', 'forwarding'):
            if not isinstance(body.get(key, True), bool):
                raise Problem(f"'{key}' must be true or false, got {body[key]!r}")


def _check_keys(mapping: dict, required: set, allowed: set) -> None:
    unknown = sorted(set(mapping) - required - allowed)
    if unknown:
        raise Problem(f"unknown attribute '{unknown[0]}' (allowed: "
                      f"{', '.join(sorted(required | allowed))})")
    missing = sorted(required - set(mapping))
    if missing:
        raise Problem(f"missing attribute '{missing[0]}'")


def _check_list(key: str, value, required: set, allowed: set, typed=frozenset()) -> None:
    """`value` is a list of mappings whose attributes are strings, except those in `typed`."""
    if not isinstance(value, list) or not all(isinstance(e, dict) for e in value):
        raise Problem(f"'{key}' must be a list of mappings, got {value!r}")
    for entry in value:
        _check_keys(entry, required, allowed)
        for name, item in entry.items():
            if name not in typed and not isinstance(item, str):
                raise Problem(f"'{key}' entry '{name}' must be a string, got {item!r}")


def _check_param(entry: dict) -> None:
    if ('from' in entry) == ('name' in entry):
        raise Problem(f"each param has either 'name' or 'from', got {entry!r}")
    if 'from' in entry and len(entry) > 1:
        raise Problem(f"a 'from' param takes no other attribute, got {entry!r}")
    if 'name' in entry and ('value' in entry) == ('param' in entry):
        raise Problem(f"param '{entry['name']}' needs either a value or nested params")
    if 'param' in entry:
        _check_list('param', entry['param'], {'name'}, _PARAM_KEYS - {'from'}, _PARAM_TYPED)
        for child in entry['param']:
            _check_param(child)
    elif 'value' in entry:
        _check_param_value(entry['name'], entry['value'])


def _check_param_value(name: str, value) -> None:
    scalar = (str, int, float, bool)
    if isinstance(value, list):
        if not all(isinstance(v, scalar) for v in value):
            raise Problem(f"param '{name}': list items must be scalars, got {value!r}")
    elif not isinstance(value, scalar):
        raise Problem(f"param '{name}': expected a scalar or a list, got {value!r}")


def children(body) -> list:
    return body if isinstance(body, list) else body.get('children') or []
