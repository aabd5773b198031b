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

"""The import graph keeps its layers: cores know nothing of ROS, only the graph layer runs nodes.

Layers, bottom up: the cores (`arm/`, `sim/`, `perception/`, `models/`, `policy/`, `train/`,
`camera/`) import nothing of ROS; the façade (`ros/`) knows ROS and never imports what sits on it;
`nodes/` adapts cores to the façade; the orchestration modules run graphs of nodes. Message
classes and conversions (`ros.msgs` with its `type_store` and `msg_classes`, `ros.image`,
`ros.convert`) are data, which the dataset code may use; the node API (`from vla_nodes import
ros`, executors, launch, backends, `vla_nodes.nodes`) is not.
Imports inside functions count too: they are read from the source with `ast`, not by importing.
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / 'vla_nodes'
CORES = ('arm', 'sim', 'perception', 'models', 'policy', 'train', 'camera')
ORCHESTRATION = ('vla_nodes.orchestration',)
DATA = {'vla_nodes.ros.msgs', 'vla_nodes.ros.type_store', 'vla_nodes.ros.msg_classes',
        'vla_nodes.ros.image', 'vla_nodes.ros.convert'}
ROS = ('rclpy', 'rosbags', 'cv_bridge', 'launch_ros', 'vla_nodes.ros', 'vla_nodes.nodes')
# Imports that cross a boundary today, each with the reason it is still there. An entry that no
# longer happens fails the test too, so the list only shrinks.
KNOWN = {
    # vla-train's closed-loop check runs vla-eval; train.py (being changed by issue 15) calls it.
    ('vla_nodes.train.validation', 'vla_nodes.orchestration.evaluate.evaluate'),
    ('vla_nodes.train.validation', 'vla_nodes.orchestration.evaluate.PolicySpec'),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def imported(path: Path) -> set:
    """Every dotted name `path` imports: `from a import b` gives 'a.b', as `import a.b` does."""
    package = module_name(path).split('.')
    if path.name != '__init__.py':
        package = package[:-1]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = '.'.join(package[:len(package) - node.level + 1] if node.level else [])
            module = '.'.join(filter(None, [base, node.module or '']))
            names |= {f'{module}.{alias.name}' for alias in node.names}
    return names


def graph() -> dict:
    return {module_name(path): imported(path) for path in sorted(PACKAGE.rglob('*.py'))}


def within(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + '.') for p in prefixes)


def node_api(name: str) -> bool:
    return within(name, ('vla_nodes.ros', 'vla_nodes.nodes', 'rclpy')) and not within(name, DATA)


def crossings(rule) -> set:
    return {(module, name) for module, names in graph().items() for name in names
            if rule(module, name)}


def test_the_graph_is_read_whole():
    modules = graph()
    assert {'vla_nodes.ros.launch', 'vla_nodes.nodes.policy_node', 'vla_nodes.arm.piper',
            'vla_nodes.orchestration.record'} <= set(modules)
    assert 'vla_nodes.ros.launch' in modules['vla_nodes.orchestration.demo']  # in a function
    assert 'vla_nodes.ros.msgs' in modules['vla_nodes.record.bag']


def test_cores_import_nothing_of_ros_nor_what_runs_nodes():
    def rule(module, name):
        return (within(module, [f'vla_nodes.{core}' for core in CORES])
                and (within(name, ROS) or within(name, ORCHESTRATION)))
    assert crossings(rule) == KNOWN


def test_only_nodes_and_orchestration_use_the_node_api():
    def rule(module, name):
        allowed = within(module, ('vla_nodes.ros', 'vla_nodes.nodes', *ORCHESTRATION))
        return node_api(name) and not allowed
    assert crossings(rule) == set()


def test_the_facade_imports_nothing_above_it():
    """Regressions pinned: ros/launch.py imported vla_nodes.nodes to find the node classes."""
    def rule(module, name):
        return (within(module, ['vla_nodes.ros'])
                and (within(name, ['vla_nodes.nodes']) or within(name, ORCHESTRATION)
                     or within(name, [f'vla_nodes.{core}' for core in CORES])))
    assert crossings(rule) == set()


def test_nodes_do_not_run_graphs():
    def rule(module, name):
        return within(module, ['vla_nodes.nodes']) and within(name, ORCHESTRATION)
    assert crossings(rule) == set()
