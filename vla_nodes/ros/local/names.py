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


"""ROS 2 name handling: namespaces and name expansion."""


def normalize_ns(ns: str) -> str:
    ns = '/' + ns.strip('/')
    return ns


def expand(name: str, namespace: str, node_name: str) -> str:
    """ROS 2 name expansion: '~/x' private, 'x' relative to the namespace, '/x' absolute."""
    if not name:
        raise ValueError('topic or service name must not be empty')
    ns = namespace.rstrip('/')
    if name == '~':
        return f'{ns}/{node_name}'
    if name.startswith('~/'):
        return f'{ns}/{node_name}/{name[2:]}'
    if name.startswith('/'):
        return name
    return f'{ns}/{name}'
