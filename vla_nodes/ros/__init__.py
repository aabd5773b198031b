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

"""The one place that knows whether ROS 2 exists: rclpy's names, from rclpy or from `local`.

Node code writes `from vla_nodes import ros` and `class DepthNode(ros.Node)`; everything else reads
like rclpy. The backend is chosen once, at import:

- `rclpy`: real ROS 2 (robots), the default when `import rclpy` works;
- `local`: the built-in in-process runtime (laptops, CI, the simulated robot), the default
  otherwise;
- `zenoh`: the `local` runtime over `zenoh_bus.ZenohBus` (rmw_zenoh's key expressions, tokens and
  CDR), so nodes in several processes or machines, and ROS 2 nodes on rmw_zenoh_cpp, meet.

Set `VLA_ROS_BACKEND` to force one.
"""

import importlib.util
import logging
import os

from vla_nodes.ros.qos import (  # noqa: F401  (QoS names are the same for every backend)
    DurabilityPolicy, HistoryPolicy, qos_profile_latched, qos_profile_sensor_data,
    qos_profile_system_default, QoSProfile, ReliabilityPolicy)


def _choose_backend() -> str:
    wanted = os.environ.get('VLA_ROS_BACKEND', '').strip().lower()
    if wanted in ('', 'auto'):
        return 'rclpy' if importlib.util.find_spec('rclpy') is not None else 'local'
    if wanted not in ('rclpy', 'local', 'zenoh'):
        raise ImportError(f'VLA_ROS_BACKEND={wanted!r}: choose rclpy, local or zenoh')
    return wanted


BACKEND = _choose_backend()

if BACKEND == 'rclpy':  # pragma: no cover - needs a ROS 2 installation
    from rclpy import init, ok, shutdown, spin, spin_once, spin_until_future_complete  # noqa
    from rclpy import try_shutdown  # noqa: F401
    from rclpy.callback_groups import (  # noqa: F401
        MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup)
    from rclpy.clock import Clock  # noqa: F401
    from rclpy.duration import Duration  # noqa: F401
    from rclpy.executors import (  # noqa: F401
        ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor)
    from rclpy.logging import get_logger  # noqa: F401
    from rclpy.node import Node  # noqa: F401
    from rclpy.parameter import Parameter  # noqa: F401
    from rclpy.qos import (  # noqa: F401,F811
        DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data,
        qos_profile_system_default)
    from rclpy.time import Time  # noqa: F401
    from rcl_interfaces.msg import (  # noqa: F401
        FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult)
    from rclpy.exceptions import (  # noqa: F401
        InvalidParameterTypeException, InvalidParameterValueException)
    qos_profile_latched = QoSProfile(  # noqa: F811
        depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
else:
    from vla_nodes.ros.clock import Clock, Duration, Time  # noqa: F401
    from vla_nodes.ros.local import (  # noqa: F401
        ExternalShutdownException, MultiThreadedExecutor, MutuallyExclusiveCallbackGroup, Node,
        ReentrantCallbackGroup, SingleThreadedExecutor, get_logger, init, ok, shutdown, spin,
        spin_once, spin_until_future_complete, try_shutdown)
    from vla_nodes.ros.params import (  # noqa: F401
        FloatingPointRange, IntegerRange, InvalidParameterTypeException,
        InvalidParameterValueException, Parameter, ParameterDescriptor, SetParametersResult)

    if not logging.getLogger().handlers:
        # ROS 2's console format, so logs read the same with and without ROS.
        logging.basicConfig(level=os.environ.get('VLA_LOG_LEVEL', 'INFO').upper(),
                            format='[%(levelname)s] [%(created).3f] [%(name)s]: %(message)s')
