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

"""Parameters and `--ros-args` for the ROS-free backends, following rclpy's rules.

Types are strict as in rclpy: a parameter declared as a float refuses an int override, so a
parameter file that works here also works on a robot. Parameter files are ROS 2 YAML
(`node_name: {ros__parameters: {...}}`, node keys matched as rcl does: `node_key_matches`);
nested dictionaries become dotted names.
"""

from dataclasses import dataclass, field
import enum
from pathlib import Path
import re

import yaml

from vla_nodes.cli_errors import one_line


class ParameterException(Exception):
    pass


class ParameterNotDeclaredException(ParameterException):
    pass


class ParameterAlreadyDeclaredException(ParameterException):
    pass


class InvalidParameterTypeException(ParameterException):
    pass


class InvalidParameterValueException(ParameterException):
    pass


class ParameterType(enum.IntEnum):
    NOT_SET = 0
    BOOL = 1
    INTEGER = 2
    DOUBLE = 3
    STRING = 4
    BYTE_ARRAY = 5
    BOOL_ARRAY = 6
    INTEGER_ARRAY = 7
    DOUBLE_ARRAY = 8
    STRING_ARRAY = 9

    @classmethod
    def from_parameter_value(cls, value) -> 'ParameterType':
        """The type rclpy infers for a Python value; TypeError for values ROS cannot hold."""
        if value is None:
            return cls.NOT_SET
        if isinstance(value, bool):
            return cls.BOOL
        if isinstance(value, int):
            return cls.INTEGER
        if isinstance(value, float):
            return cls.DOUBLE
        if isinstance(value, str):
            return cls.STRING
        if isinstance(value, (bytes, bytearray)):
            return cls.BYTE_ARRAY
        if isinstance(value, (list, tuple)):
            return _array_type(value)
        raise TypeError(f'{type(value).__name__} is not a valid parameter type')


def _array_type(values) -> ParameterType:
    kinds = {ParameterType.from_parameter_value(v) for v in values}
    if not kinds:
        # rclpy cannot type an empty list; it becomes a string array.
        return ParameterType.STRING_ARRAY
    table = {ParameterType.BOOL: ParameterType.BOOL_ARRAY,
             ParameterType.INTEGER: ParameterType.INTEGER_ARRAY,
             ParameterType.DOUBLE: ParameterType.DOUBLE_ARRAY,
             ParameterType.STRING: ParameterType.STRING_ARRAY}
    if len(kinds) != 1 or next(iter(kinds)) not in table:
        raise TypeError(f'parameter arrays must hold one primitive type, got {list(values)!r}')
    return table[next(iter(kinds))]


@dataclass
class FloatingPointRange:
    """rcl_interfaces/FloatingPointRange: closed interval; step 0 = any value in it."""

    from_value: float = 0.0
    to_value: float = 0.0
    step: float = 0.0


@dataclass
class IntegerRange:
    """rcl_interfaces/IntegerRange: closed interval; step 0 = any value in it."""

    from_value: int = 0
    to_value: int = 0
    step: int = 0


@dataclass
class ParameterDescriptor:
    """rcl_interfaces/ParameterDescriptor subset that affects behaviour."""

    name: str = ''
    type: int = 0
    description: str = ''
    read_only: bool = False
    dynamic_typing: bool = False
    # At most one entry each, as in rcl_interfaces (a bounded sequence of size 1).
    floating_point_range: list = field(default_factory=list)
    integer_range: list = field(default_factory=list)


@dataclass
class SetParametersResult:
    successful: bool = True
    reason: str = ''


class Parameter:
    """A named, typed value (rclpy.parameter.Parameter)."""

    Type = ParameterType

    def __init__(self, name: str, type_: ParameterType | None = None, value=None):
        if type_ is None:
            type_ = ParameterType.from_parameter_value(value)
        elif value is not None and not _value_fits(ParameterType(type_), value):
            raise TypeError(f'value {value!r} does not fit parameter type {type_.name}')
        self._name = name
        self._type = ParameterType(type_)
        self._value = list(value) if isinstance(value, tuple) else value

    @property
    def name(self) -> str:
        return self._name

    @property
    def type_(self) -> ParameterType:
        return self._type

    @property
    def value(self):
        return self._value

    def __repr__(self):
        return f'Parameter({self._name!r}, {self._type.name}, {self._value!r})'

    def to_parameter_msg(self):
        """rcl_interfaces/Parameter, as rclpy's: what `~/set_parameters` carries."""
        from vla_nodes.ros.msgs import rcl_interfaces
        value = rcl_interfaces.ParameterValue(type=int(self._type))
        if self._type != ParameterType.NOT_SET:
            setattr(value, _VALUE_FIELDS[self._type], self._value)
        return rcl_interfaces.Parameter(name=self._name, value=value)

    @classmethod
    def from_parameter_msg(cls, msg) -> 'Parameter':
        """The Parameter an rcl_interfaces/Parameter carries (rclpy's)."""
        type_ = ParameterType(msg.value.type)
        if type_ == ParameterType.NOT_SET:
            return cls(msg.name, type_)
        value = getattr(msg.value, _VALUE_FIELDS[type_])
        if type_.name.endswith('_ARRAY'):  # the message's sequences (array('q'), ...) as lists
            value = bytes(value) if type_ == ParameterType.BYTE_ARRAY else list(value)
        return cls(msg.name, type_, value)


# rcl_interfaces/ParameterValue: the field that holds each type's value (bool_value, ...).
_VALUE_FIELDS = {t: f'{t.name.lower()}_value' for t in ParameterType if t != ParameterType.NOT_SET}


def _value_fits(type_: ParameterType, value) -> bool:
    try:
        return ParameterType.from_parameter_value(value) == type_
    except TypeError:
        return False


def check_type(name: str, declared: ParameterType, value, dynamic: bool) -> None:
    """Raise InvalidParameterTypeException like rclpy when `value` changes a static type."""
    got = ParameterType.from_parameter_value(value)
    if dynamic or declared == ParameterType.NOT_SET or got == declared:
        return
    # An empty YAML list carries no type: accept it for any array type.
    if isinstance(value, (list, tuple)) and not value and declared.name.endswith('ARRAY'):
        return
    raise InvalidParameterTypeException(
        f"Trying to set parameter '{name}' to {value!r} of type {got.name}, expecting type "
        f'{declared.name}. Fix the value in the parameter file or launch file (e.g. write 30.0 '
        f'rather than 30 for a float).')


def check_range(name: str, value, descriptor: ParameterDescriptor) -> None:
    """Raise InvalidParameterValueException like rclpy for a value outside the descriptor's range.

    As in rclpy, a float range applies to DOUBLE values and an integer range to INTEGER ones;
    NaN is outside every range. Steps other than 0 are not implemented (none is used).
    """
    kind = ParameterType.from_parameter_value(value)
    ranges = (descriptor.floating_point_range if kind == ParameterType.DOUBLE
              else descriptor.integer_range if kind == ParameterType.INTEGER else [])
    for r in ranges:
        low, high = min(r.from_value, r.to_value), max(r.from_value, r.to_value)
        if not low <= value <= high:  # False for NaN
            raise InvalidParameterValueException(
                f"Invalid parameter value ({value}) for parameter '{name}'. Reason: Parameter "
                f'{name} out of range. Min: {low}, Max: {high}, value: {value}')


# --- parameter services --------------------------------------------------------------------------

def start_parameter_services(node) -> None:
    """Serve `~/set_parameters` (rcl_interfaces/SetParameters) on a local node, as rclpy does.

    Each parameter is set on its own through `node.set_parameters`; a refusal is answered, not
    raised.
    """
    from vla_nodes.ros.msgs import rcl_interfaces

    def on_set(request, response):
        for msg in request.parameters:
            try:
                result = node.set_parameters([Parameter.from_parameter_msg(msg)])[0]
            except (ParameterException, TypeError, ValueError) as err:
                result = SetParametersResult(False, str(err))
            response.results.append(rcl_interfaces.SetParametersResult(
                successful=result.successful, reason=result.reason))
        return response
    try:
        node.create_service(rcl_interfaces.SetParameters, '~/set_parameters', on_set)
    except RuntimeError as err:  # a node of the same name holds it: ROS only warns too
        node.get_logger().warning(f'{err}; node names should be unique')


# --- parameter files -----------------------------------------------------------------------------

def flatten(params: dict, prefix: str = '') -> dict:
    """{'a': {'b': 1}} -> {'a.b': 1}: ROS 2 names nested YAML parameters with dots."""
    flat = {}
    for key, value in params.items():
        name = f'{prefix}{key}'
        if isinstance(value, dict):
            flat.update(flatten(value, name + '.'))
        else:
            flat[name] = value
    return flat


def load_params_file(path, node_fqn: str) -> dict:
    """Parameters of one node (fully qualified name, e.g. '/ns/camera') from a ROS 2 YAML file.

    Node keys follow rcl_yaml_param_parser (nested keys join with '/', names are validated) and
    are matched by `node_key_matches`; later matching entries override earlier ones.
    """
    result = {}
    for key, params in read_params_file(path):
        if node_key_matches(key, node_fqn):
            result.update(params)
    return result


def read_params_file(path) -> list:
    """[(node key, {dotted name: value})] of a ROS 2 parameter file, all checked as rcl does.

    Raises:
        FileNotFoundError: no such file. ValueError: not a parameter file rcl would load; the
            message names the file and the entry.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'parameter file not found: {path}')
    try:
        doc = yaml.load(path.read_text(encoding='utf-8'), Loader=_RclYamlLoader) or {}
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as err:
        raise ValueError(f'{path}: not valid YAML: {one_line(err)}') from err
    if not isinstance(doc, dict):
        raise ValueError(f'{path}: a parameter file maps node names to ros__parameters')
    sections = []
    for key, params in _node_sections(path, doc, ''):
        if not isinstance(params, dict):
            raise ValueError(f"{path}: '{key}': ros__parameters must map names to values")
        flat = flatten(params)
        for name, value in flat.items():
            try:
                ParameterType.from_parameter_value(value)
            except TypeError as err:
                raise ValueError(f"{path}: '{key}': parameter '{name}': {err}") from None
        sections.append((key, flat))
    return sections


class _RclYamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader without aliases.

    rcl_yaml_param_parser refuses them ("Will not support aliasing"), and a recursive one would
    never end.
    """

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, f'aliases (*{event.anchor}) are not supported by ROS 2 parameter '
                f'files; write the value out', event.start_mark)
        return super().compose_node(parent, index)


def _node_sections(path, doc: dict, prefix: str):
    """(node key, ros__parameters) of a parameter file, in file order, every key validated.

    Keys above `ros__parameters` are joined with '/' as rcl does ('left: {driver: ...}' is
    'left/driver'); rcl refuses the whole file when one key is not a valid name, so do we.
    """
    for key, body in doc.items():
        key = str(key)
        name = key if not prefix else prefix + ('' if prefix.endswith('/') else '/') + key
        if not isinstance(body, dict) or not body:
            raise ValueError(f"{path}: entry '{name}' has no 'ros__parameters' section")
        for inner, value in body.items():
            if inner == 'ros__parameters':
                problem = node_key_problem(name)
                if problem:
                    raise ValueError(f"{path}: node key '{name}' {problem}")
                yield name, value or {}
            else:
                yield from _node_sections(path, {inner: value}, name)


_NAME_TOKEN = re.compile(r'[A-Za-z_][A-Za-z0-9_]*', re.ASCII)


def node_key_problem(key: str) -> str | None:
    """Why rcl refuses this node key (rcl_yaml_param_parser `_validate_name`), else None.

    Every '/'-separated token is a ROS name token, or a whole-token wildcard '*' / '**'.
    """
    tokens = key[1:].split('/') if key.startswith('/') else key.split('/')
    for token in tokens:
        if token in ('*', '**'):
            continue
        if not token:
            return "has an empty name token (repeated or trailing '/'); write e.g. '/ns/node'"
        if not _NAME_TOKEN.fullmatch(token):
            return (f"has an invalid token '{token}': names are letters, digits and '_' "
                    f"(not starting with a digit); wildcards are whole tokens '*' or '**'")
    return None


def node_key_matches(key: str, node_fqn: str) -> bool:
    r"""Whether a parameter-file key selects the node with this fully qualified name.

    Exactly rclpy's rule (`_populate_node_parameters_from_rcl_params`, node.cpp): a key not
    starting with '/' gets one, '/*' becomes the regex '(/\w+)' and the whole fully qualified
    name must match. Hence '/**' matches any number of namespace tokens, '/*' exactly one, and a
    bare 'driver' is '/driver': the node in the root namespace only, never '/left/driver'.
    """
    if node_key_problem(key):
        return False
    name = key if key.startswith('/') else '/' + key
    return re.fullmatch(name.replace('/*', r'(/\w+)'), node_fqn, re.ASCII) is not None


# --- command-line arguments ---------------------------------------------------------------------

@dataclass
class RosArgs:
    """What `--ros-args` carries for a node: remaps, parameter files and overrides."""

    remaps: list = field(default_factory=list)        # [(node_or_None, from, to)]
    params_files: list = field(default_factory=list)  # [Path]
    params: list = field(default_factory=list)        # [(node_or_None, name, value)]
    node_name: str | None = None
    namespace: str | None = None

    def merged(self, other: 'RosArgs') -> 'RosArgs':
        """These arguments followed by `other` (later wins, as in rcl)."""
        return RosArgs(self.remaps + other.remaps, self.params_files + other.params_files,
                       self.params + other.params, other.node_name or self.node_name,
                       other.namespace or self.namespace)


def parse_ros_args(args) -> RosArgs:
    """Parse the `--ros-args ... [--]` sections of an argument list (rcl's syntax)."""
    parsed = RosArgs()
    args = list(args or [])
    i, inside = 0, False
    while i < len(args):
        arg = args[i]
        if arg == '--ros-args':
            inside = True
        elif arg == '--' and inside:
            inside = False
        elif inside:
            if arg in ('-r', '--remap', '-p', '--param', '--params-file'):
                if i + 1 >= len(args):
                    raise ValueError(f'{arg} needs a value')
                _apply_flag(parsed, arg, args[i + 1])
                i += 1
            elif arg in ('--log-level', '--enclave'):
                i += 1  # accepted and ignored without ROS
            else:
                raise ValueError(f'unknown ROS argument {arg!r}')
        i += 1
    return parsed


def _split_rule(rule: str):
    if ':=' not in rule:
        raise ValueError(f"expected 'from:=to', got {rule!r}")
    left, right = rule.split(':=', 1)
    node = None
    if ':' in left and not left.startswith('__'):
        node, left = left.split(':', 1)
    return node, left, right


def _apply_flag(parsed: RosArgs, flag: str, value: str) -> None:
    if flag == '--params-file':
        parsed.params_files.append(Path(value))
        return
    node, left, right = _split_rule(value)
    if flag in ('-r', '--remap'):
        if left == '__node' or left == '__name':
            parsed.node_name = right
        elif left == '__ns':
            parsed.namespace = right
        else:
            parsed.remaps.append((node, left, right))
    else:
        parsed.params.append((node, left, yaml.safe_load(right)))
