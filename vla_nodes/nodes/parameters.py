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

"""The one way a node declares its parameters: a module-level `PARAMETERS` dict, one call.

Every node module holds `PARAMETERS = {name: default, ...}` (a comment per entry says what it
means), and its `__init__` reads them all with `p = declare_parameters(self, PARAMETERS)`.
Why this one: the defaults are readable (and importable by tests and launch code) without
constructing a node, each parameter is spelled once, and range checks (`ranges`, e.g.
`arm.driver_params.RANGES`) and dynamic typing are options of the same call instead of
hand-written `declare_parameter` sequences (issue 13 found four styles in seven nodes).
"""

from vla_nodes import ros
from vla_nodes.nodes import StartupError


def _descriptor(name: str, default, ranges, dynamic_typing):
    r = ranges.get(name)
    if r is None:
        return ros.ParameterDescriptor(dynamic_typing=True) if name in dynamic_typing else None
    kind = 'integer_range' if isinstance(default, int) else 'floating_point_range'
    make = ros.IntegerRange if isinstance(default, int) else ros.FloatingPointRange
    number = type(default)  # rclpy's messages check int vs float strictly
    return ros.ParameterDescriptor(description=r.why, **{kind: [make(
        from_value=number(r.low), to_value=number(r.high), step=number(0))]})


def declare_parameters(node, defaults: dict, ranges=None, dynamic_typing=()) -> dict:
    """Declare every parameter of `defaults` on `node`; their values by name.

    Args:
        node: the ros.Node.
        defaults: name -> default value (the module's PARAMETERS).
        ranges: name -> Range (low, high, why) for numeric parameters that must lie in it
            (rclpy and the local backend refuse other values, also on `ros2 param set`).
        dynamic_typing: names whose type may differ from the default's (e.g. a serial number
            written as an integer).

    Raises:
        StartupError: a value of the wrong type, or outside its range or NaN, with what to
            write instead.
    """
    ranges = ranges or {}
    values = {}
    for name, default in defaults.items():
        descriptor = _descriptor(name, default, ranges, dynamic_typing)
        try:
            if descriptor is None:
                values[name] = node.declare_parameter(name, default).value
            else:
                values[name] = node.declare_parameter(name, default, descriptor).value
        except ros.InvalidParameterTypeException as err:  # e.g. 30 for 30.0: says so
            raise StartupError(str(err)) from None
        except ros.InvalidParameterValueException:
            # rclpy's exception does not carry the value: declare unranged to read it.
            value = node.declare_parameter(name, default).value
            r = ranges[name]
            kind = 'an integer' if isinstance(default, int) else 'a finite number'
            raise StartupError(
                f'parameter {name} = {value!r} refused: write {kind} in [{r.low:g}, '
                f'{r.high:g}] ({r.why}), e.g. the default {name}: {default!r}') from None
    return values
