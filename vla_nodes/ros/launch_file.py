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

"""Reading ROS 2 YAML launch files without ROS: the subset the suite uses, as NodeSpecs.

`vla_nodes.ros.launch` (vla-launch) runs what this module resolves. Reading and checking a file
is `launch_schema.py`; substitutions are `launch_subst.py`; this module evaluates the actions.

`ros2 launch` runs `launch/*.launch.yaml` on a robot; `vla-launch` reads the same files and starts
every node in this process on the façade's backend (`local` without ROS). It supports the subset
the suite uses, with launch_ros's YAML syntax and semantics, and refuses anything else with a
`LaunchError` naming the file and the action, so a file it accepts also runs under `ros2 launch`:

    launch:
    - arg: {name: robot, default: sim, description: 'sim or piper'}
    - let: {name: ns, value: '$(var robot)'}
    - include:
        file: '$(find-pkg-share vla_nodes)/launch/cameras.launch.yaml'
        arg: [{name: ns, value: '$(var ns)'}]
    - group:                               # a plain list of actions also works
        scoped: true                       # optional, as are forwarding and keep
        if: '$(var use_policy)'            # if/unless: 'true'/'false'/'1'/'0' once substituted
        children:
        - push-ros-namespace: {namespace: '$(var ns)'}   # push_ros_namespace is accepted too
        - node:
            pkg: vla_nodes
            exec: policy_node
            name: policy
            namespace: left                # optional, relative to the pushed namespace
            output: screen                 # accepted and ignored
            param:
            - from: '$(find-pkg-share vla_nodes)/config/sim.yaml'
            - {name: rate_hz, value: 30}   # YAML types are kept: 30 is an int, '30' a string
            remap:
            - {from: image, to: /camera/color/image_raw}

Substitutions: `$(var NAME)`, `$(env NAME [DEFAULT])`, `$(find-pkg-share vla_nodes)` and
`$(dirname)` (the folder of the current file). Semantics follow launch/launch_ros:

- an `arg` keeps a value that is already set (command line, `include` args, or an outer file)
  and otherwise takes its default; an `arg` without default must be given;
- `include` is not scoped: the included file sees every launch configuration and the ones it sets
  stay set afterwards. Wrap it in a `group` to scope it (groups are scoped by default);
- relative `include` and parameter-file paths are relative to the current working directory, as
  in `ros2 launch`; write `$(dirname)/other.launch.yaml` for a path next to the file;
- inline parameter values keep their YAML types; a value containing a substitution is read with
  YAML rules after substitution (`'$(var rate)'` with rate:=30 gives the int 30).

Two rules are stricter than ROS, so that both runners give every node the same parameters: a
missing parameter file is an error (ROS only warns), and a node lists its `from:` files before its
inline values (vla-launch applies inline values last).
"""

from dataclasses import dataclass, field
from pathlib import Path
import re
import shlex

import yaml

from vla_nodes.ros.launch_schema import (
    children, CONDITIONS, LaunchError, Problem, read_actions)
from vla_nodes.ros.launch_subst import (
    Context, evaluate, package_share, parse_template, resolve, resolve_optional)

_NAME = re.compile(r'[A-Za-z_][A-Za-z0-9_]*')


@dataclass(frozen=True)
class NodeSpec:
    """One node to start, fully resolved (no substitutions left).

    Attributes:
        package: ROS package of the executable (only `vla_nodes` runs without ROS).
        executable: executable name, a console script of this package (`ros/executables.py`).
        name: node name override, or None for the node's own default.
        namespace: absolute namespace, or None when neither the node nor a group set one.
        params_files: ROS 2 parameter files, applied in order.
        params: inline parameters by dotted name, with YAML types; applied after the files.
        remaps: (from, to) remapping rules in order.
        arguments: extra command-line arguments (`args`), before `--ros-args`.
        ros_arguments: extra ROS arguments (`ros_args`).
        source: the launch file declaring the node.
    """

    package: str
    executable: str
    name: str | None = None
    namespace: str | None = None
    params_files: list = field(default_factory=list)
    params: dict = field(default_factory=dict)
    remaps: list = field(default_factory=list)
    arguments: list = field(default_factory=list)
    ros_arguments: list = field(default_factory=list)
    source: Path | None = None

    @property
    def full_name(self) -> str | None:
        """'/ns/name', or None when the launch file does not name the node."""
        if self.name is None:
            return None
        return f"{(self.namespace or '').rstrip('/')}/{self.name}"

    @property
    def label(self) -> str:
        """How messages refer to the node: its full name, else its executable."""
        return self.full_name or f'<{self.executable}>'


@dataclass(frozen=True)
class ArgSpec:
    """A declared launch argument, as `--show-args` lists it (default unevaluated)."""

    name: str
    default: str | None
    description: str


# --- evaluation ---------------------------------------------------------------------------------

def _run_actions(actions: list, ctx: Context, out: list) -> None:
    for item in actions:
        kind, body = next(iter(item.items()))
        try:
            if _condition_holds(body, ctx):
                _HANDLERS[kind](body, ctx, out)
        except Problem as err:
            raise LaunchError(f'{ctx.file}: {kind}: {err}') from None


def _condition_holds(body, ctx: Context) -> bool:
    if not isinstance(body, dict) or not (CONDITIONS & set(body)):
        return True
    key = 'if' if 'if' in body else 'unless'
    value = resolve(body[key], ctx).strip().lower()
    if value not in ('true', '1', 'false', '0'):
        raise Problem(f'condition {key}: {body[key]!r} gave {value!r}; expected true, false, '
                      f'1 or 0')
    return (value in ('true', '1')) == (key == 'if')


def _arg(body: dict, ctx: Context, out: list) -> None:
    name = body['name']
    if name in ctx.configs:
        return
    if 'default' not in body:
        raise Problem(f"required argument '{name}' was not given (pass {name}:=VALUE)")
    ctx.configs[name] = resolve(body['default'], ctx)


def _let(body: dict, ctx: Context, out: list) -> None:
    ctx.configs[resolve(body['name'], ctx)] = resolve(body['value'], ctx)


def _push_namespace(body: dict, ctx: Context, out: list) -> None:
    pushed = resolve(body['namespace'], ctx)
    ctx.configs['ros_namespace'] = _valid_namespace(
        _prefix_namespace(ctx.configs.get('ros_namespace'), pushed))


def _group(body, ctx: Context, out: list) -> None:
    options = body if isinstance(body, dict) else {}
    keep = {resolve(e['name'], ctx): resolve(e['value'], ctx) for e in options.get('keep', [])}
    if not options.get('scoped', True):
        ctx.configs.update(keep)
        _run_actions(children(body), ctx, out)
        return
    configs = dict(ctx.configs) if options.get('forwarding', True) else {}
    _run_actions(children(body), Context(ctx.file, {**configs, **keep}), out)


def _include(body: dict, ctx: Context, out: list) -> None:
    path = _resolve_path(resolve(body['file'], ctx), 'included launch file')
    args = {resolve(e['name'], ctx): resolve(e['value'], ctx) for e in body.get('arg', [])}
    _include_file(path, args, ctx.configs, out)


def _include_file(path: Path, args: dict, configs: dict, out: list) -> None:
    """Run `path` in `configs` (not scoped, as in launch) after setting `args`."""
    actions = read_actions(path)
    missing = [name for name in _required_args(actions) if name not in args]
    if missing:
        raise LaunchError(f"{path}: required argument '{missing[0]}' was not given (pass "
                          f'{missing[0]}:=VALUE, or an include arg)')
    configs.update(args)
    _run_actions(actions, Context(path, configs), out)


def _required_args(actions: list) -> list:
    """Args without default that are always declared (launch checks them before running)."""
    names = []
    for item in actions:
        kind, body = next(iter(item.items()))
        if isinstance(body, dict) and CONDITIONS & set(body):
            continue
        if kind == 'arg' and 'default' not in body:
            names.append(body['name'])
        elif kind == 'group':
            names += _required_args(children(body))
    return names


def _node(body: dict, ctx: Context, out: list) -> None:
    name = resolve_optional(body.get('name'), ctx)
    if name is not None and not _NAME.fullmatch(name):
        raise Problem(f"invalid node name {name!r}: use letters, digits and '_'")
    namespace = _prefix_namespace(ctx.configs.get('ros_namespace'),
                                  resolve_optional(body.get('namespace'), ctx))
    files, params = _node_params(body.get('param', []), ctx)
    out.append(NodeSpec(
        package=resolve(body['pkg'], ctx), executable=resolve(body['exec'], ctx), name=name,
        namespace=None if namespace is None else _valid_namespace(namespace),
        params_files=files, params=params,
        remaps=[(resolve(r['from'], ctx), resolve(r['to'], ctx)) for r in body.get('remap', [])],
        arguments=shlex.split(resolve(body.get('args', ''), ctx)),
        ros_arguments=shlex.split(resolve(body.get('ros_args', ''), ctx)), source=ctx.file))


def _node_params(entries: list, ctx: Context) -> tuple:
    files, params = [], {}
    for entry in entries:
        if 'from' in entry:
            if params:
                raise Problem("list 'from:' parameter files before inline parameter values "
                              '(vla-launch applies inline values last)')
            files.append(_resolve_path(resolve(entry['from'], ctx), 'parameter file'))
        else:
            params.update(_inline_param(entry, ctx, ''))
    return files, params


def _inline_param(entry: dict, ctx: Context, prefix: str) -> dict:
    name = prefix + resolve(entry['name'], ctx)
    if 'param' not in entry:
        return {name: _param_value(name, entry['value'], ctx)}
    nested = {}
    for child in entry['param']:
        nested.update(_inline_param(child, ctx, name + '.'))
    return nested


def _param_value(name: str, value, ctx: Context):
    """launch_ros's rules: literal YAML values keep their type; substituted text is YAML-read."""
    if isinstance(value, list):
        items = [_param_value(name, v, ctx) for v in value]
        if len({type(v) for v in items}) > 1:
            raise Problem(f"param '{name}': list items must share one type, got {items!r}")
        return items
    if not isinstance(value, str):
        return value
    parts = parse_template(value)
    if all(isinstance(p, str) for p in parts):
        return value
    text = evaluate(parts, ctx)
    if not text:
        return text
    try:
        typed = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise Problem(f"param '{name}': {text!r} is not valid YAML: {err}") from None
    scalar = (str, int, float, bool)
    if isinstance(typed, list) and all(isinstance(v, scalar) for v in typed):
        return typed
    if not isinstance(typed, scalar):
        raise Problem(f"param '{name}': {text!r} reads as {type(typed).__name__}, which is "
                      f'not a parameter type')
    return typed


def _resolve_path(text: str, what: str) -> Path:
    """Return the existing file `text`; relative paths start at the working directory (ROS)."""
    path = Path(text)
    path = path if path.is_absolute() else Path.cwd() / path
    if not path.is_file():
        raise Problem(f'{what} not found: {path}')
    return path


def _prefix_namespace(base: str | None, ns: str | None) -> str | None:
    """launch_ros's prefix_namespace: `ns` under `base` unless absolute; result absolute."""
    if ns is None:
        combined = base
    elif not base or ns.startswith('/'):
        combined = ns
    else:
        combined = ('' if base == '/' else base) + '/' + ns
    if combined is None:
        return None
    combined = combined if combined == '/' else combined.rstrip('/')
    return combined if combined.startswith('/') else '/' + combined


def _valid_namespace(ns: str) -> str:
    if ns != '/' and not all(_NAME.fullmatch(t) for t in ns[1:].split('/')):
        raise Problem(f"invalid namespace {ns!r}: use '/'-separated names of letters, digits "
                      f"and '_' that do not start with a digit")
    return ns


_HANDLERS = {
    'arg': _arg, 'let': _let, 'node': _node, 'include': _include, 'group': _group,
    'push-ros-namespace': _push_namespace, 'push_ros_namespace': _push_namespace,
}


# --- public API: loading ------------------------------------------------------------------------

def resolve_launch_file(launch_file) -> Path:
    """Return the launch file of a path, or of (package, file name in the package's launch/).

    Raises:
        LaunchError: the package is not `vla_nodes` or the file does not exist.
    """
    if isinstance(launch_file, (tuple, list)):
        package, name = launch_file
        try:
            path = package_share(package) / 'launch' / name
        except Problem as err:
            raise LaunchError(str(err)) from None
    else:
        path = Path(launch_file)
    if not path.is_file():
        raise LaunchError(f'{path}: launch file not found')
    return path.resolve()


def load_launch(launch_file, launch_args: dict | None = None) -> list:
    """Evaluate a launch file into the nodes it starts, without starting anything.

    Args:
        launch_file: a path, or (package, file name) for a file in the package's launch/ folder.
        launch_args: command-line arguments (`name:=value` of ros2 launch) as {name: value}.

    Returns:
        A list of `NodeSpec`, in launch order.

    Raises:
        LaunchError: unsupported or invalid content, a missing file or a missing required arg;
            the message names the file and the action.
    """
    out = []
    args = {str(k): str(v) for k, v in (launch_args or {}).items()}
    _include_file(resolve_launch_file(launch_file), args, {}, out)
    return out


def declared_args(launch_file) -> list:
    """List the arguments a launch file declares and those of its includes (as ros2 launch).

    Arguments an `include` passes are not listed for the included file, and includes whose path
    needs a launch configuration are not followed.
    """
    found = {}
    _collect_args(resolve_launch_file(launch_file), found, set())
    return list(found.values())


def _collect_args(path: Path, found: dict, seen: set) -> None:
    if path in seen:
        return
    seen.add(path)
    stack = list(read_actions(path))
    while stack:
        kind, body = next(iter(stack.pop(0).items()))
        if kind == 'arg' and body['name'] not in found:
            found[body['name']] = ArgSpec(body['name'], body.get('default'),
                                          body.get('description', 'no description given'))
        elif kind == 'group':
            stack = list(children(body)) + stack
        elif kind == 'include':
            try:
                included = _resolve_path(resolve(body['file'], Context(path, {})), 'include')
            except Problem:
                continue
            inner = {}
            _collect_args(included, inner, seen)
            passed = {e['name'] for e in body.get('arg', [])}
            found.update({k: v for k, v in inner.items() if k not in passed and k not in found})


def format_args(args: list) -> str:
    """`--show-args` text, laid out like `ros2 launch --show-args`."""
    if not args:
        return 'No arguments.'
    lines = ["Arguments (pass arguments as '<name>:=<value>'):"]
    for arg in args:
        default = 'required' if arg.default is None else f"default: '{arg.default}'"
        lines += ['', f"    '{arg.name}':", f'        {arg.description}', f'        ({default})']
    return '\n'.join(lines)


def format_nodes(specs: list) -> str:
    """`--print` text: each node with its package, executable, remaps and parameters."""
    lines = []
    for spec in specs:
        lines.append(f'{spec.label}  [{spec.package} {spec.executable}]  ({spec.source})')
        lines += [f'    remap  {a} -> {b}' for a, b in spec.remaps]
        lines += [f'    params-file  {p}' for p in spec.params_files]
        lines += [f'    param  {k} = {v!r}' for k, v in spec.params.items()]
        lines += [f'    args  {shlex.join(spec.arguments)}'] if spec.arguments else []
        lines += [f'    ros_args  {shlex.join(spec.ros_arguments)}'] if spec.ros_arguments else []
    return '\n'.join(lines) if lines else 'No nodes.'
