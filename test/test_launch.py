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

"""vla-launch: the YAML launch subset evaluated like ros2 launch, and nodes run in one process.

Fixture launch and parameter files live in test/data/launch/; small invalid files are written to
tmp_path next to the test that needs them.
"""

import os
from pathlib import Path
import signal
import textwrap
import threading
import time

import pytest
import yaml

from vla_nodes import paths
from vla_nodes.ros.launch import main, node_arguments, node_class, run
from vla_nodes.ros.launch_file import (
    declared_args, format_args, format_nodes, load_launch, NodeSpec, resolve_launch_file)
from vla_nodes.ros.launch_schema import LaunchError

DATA = Path(__file__).parent / 'data' / 'launch'


def by_name(specs):
    return {spec.full_name: spec for spec in specs}


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


# --- args, substitutions, parameters, remaps, conditions ---------------------------------------

def test_defaults_substitutions_and_typed_params(monkeypatch):
    monkeypatch.delenv('VLA_LAUNCH_TEST_HOME', raising=False)
    specs = load_launch(DATA / 'basic.launch.yaml', {})
    assert [s.full_name for s in specs] == ['/cam_sim/camera', '/recorder']
    camera = specs[0]
    assert (camera.package, camera.executable) == ('vla_nodes', 'camera_node')
    assert camera.name == 'camera'
    assert camera.namespace == '/cam_sim'
    assert camera.params_files == [DATA / 'camera_params.yaml']
    assert camera.remaps == [('image', '/sim/image_raw')]
    assert camera.source == DATA / 'basic.launch.yaml'
    # Literal YAML values keep their type; substituted text is read with YAML rules.
    assert camera.params == {
        'fps': 30, 'serial': '30', 'scale': 0.5, 'enabled': True, 'rate_hz': 15,
        'rate_text': '15', 'joints': ['joint1', 'joint2'], 'gains': [1.0, 2.5],
        'home': '/tmp/default_home', 'share': str(paths.package_share()), 'limits.lower': -1.5}
    assert type(camera.params['rate_hz']) is int


def test_command_line_args_override_defaults_and_flip_conditions(monkeypatch):
    monkeypatch.setenv('VLA_LAUNCH_TEST_HOME', '/home/robot')
    specs = load_launch(str(DATA / 'basic.launch.yaml'),
                        {'robot': 'piper', 'rate': '2.5', 'use_policy': 'True'})
    assert [s.full_name for s in specs] == ['/cam_piper/camera', '/policy']
    camera = specs[0]
    assert camera.remaps == [('image', '/piper/image_raw')]
    assert camera.params['rate_hz'] == 2.5
    assert camera.params['rate_text'] == '2.5'
    assert camera.params['home'] == '/home/robot'


def test_invalid_condition_value_is_refused():
    with pytest.raises(LaunchError, match=r"basic\.launch\.yaml: node: condition if.*'yes'"):
        load_launch(DATA / 'basic.launch.yaml', {'use_policy': 'yes'})


def test_find_pkg_share_of_another_package_is_refused(tmp_path):
    path = write(tmp_path, 'x.launch.yaml', """\
        launch:
        - let: {name: p, value: $(find-pkg-share turtlesim)/launch}
        """)
    with pytest.raises(LaunchError, match=r'x\.launch\.yaml: let: .*find-pkg-share turtlesim'):
        load_launch(path, {})


def test_env_without_default_must_be_set(tmp_path, monkeypatch):
    monkeypatch.delenv('VLA_LAUNCH_UNSET', raising=False)
    path = write(tmp_path, 'x.launch.yaml', """\
        launch:
        - let: {name: p, value: $(env VLA_LAUNCH_UNSET)}
        """)
    with pytest.raises(LaunchError, match="environment variable 'VLA_LAUNCH_UNSET'"):
        load_launch(path, {})
    monkeypatch.setenv('VLA_LAUNCH_UNSET', 'set')
    assert load_launch(path, {}) == []


def test_missing_required_arg_is_named(tmp_path):
    path = write(tmp_path, 'x.launch.yaml', """\
        launch:
        - arg: {name: robot_ip}
        - node: {pkg: vla_nodes, exec: arm_driver_node, name: $(var robot_ip)}
        """)
    with pytest.raises(LaunchError, match="required argument 'robot_ip'"):
        load_launch(path, {})
    assert [s.name for s in load_launch(path, {'robot_ip': 'arm'})] == ['arm']


def test_unknown_action_names_file_and_action(tmp_path):
    path = write(tmp_path, 'bad.launch.yaml', """\
        launch:
        - arg: {name: a, default: '1'}
        - executable: {cmd: ls}
        """)
    with pytest.raises(LaunchError) as err:
        load_launch(path, {})
    assert str(path) in str(err.value)
    assert "unknown action 'executable'" in str(err.value)


def test_unknown_action_inside_a_skipped_group_is_still_refused(tmp_path):
    # launch parses the whole file before running it, so a false condition hides nothing.
    path = write(tmp_path, 'bad.launch.yaml', """\
        launch:
        - group:
            if: 'false'
            children:
            - set_env: {name: A, value: b}
        """)
    with pytest.raises(LaunchError, match="unknown action 'set_env'"):
        load_launch(path, {})


def test_unknown_attribute_names_action_and_attribute(tmp_path):
    path = write(tmp_path, 'bad.launch.yaml', """\
        launch:
        - node: {pkg: vla_nodes, exec: sim_node, respawn: 'true'}
        """)
    with pytest.raises(LaunchError, match=r"bad\.launch\.yaml: node: unknown attribute 'respawn'"):
        load_launch(path, {})


def test_non_string_attribute_is_refused_as_ros2_launch_does(tmp_path):
    path = write(tmp_path, 'bad.launch.yaml', """\
        launch:
        - arg: {name: rate, default: 30}
        """)
    with pytest.raises(LaunchError, match="arg: attribute 'default' must be a string"):
        load_launch(path, {})


def test_missing_parameter_file_is_an_error(tmp_path):
    path = write(tmp_path, 'x.launch.yaml', """\
        launch:
        - node:
            pkg: vla_nodes
            exec: sim_node
            param: [{from: $(dirname)/nowhere.yaml}]
        """)
    with pytest.raises(LaunchError, match=r'parameter file not found: .*nowhere\.yaml'):
        load_launch(path, {})


def test_parameter_files_must_come_before_inline_values(tmp_path):
    write(tmp_path, 'p.yaml', '/**: {ros__parameters: {a: 1}}\n')
    path = write(tmp_path, 'x.launch.yaml', """\
        launch:
        - node:
            pkg: vla_nodes
            exec: sim_node
            param:
            - {name: a, value: 2}
            - {from: $(dirname)/p.yaml}
        """)
    with pytest.raises(LaunchError, match="list 'from:' parameter files before inline"):
        load_launch(path, {})


def test_relative_paths_are_taken_from_the_working_directory(tmp_path, monkeypatch):
    write(tmp_path, 'inner.launch.yaml', """\
        launch:
        - node: {pkg: vla_nodes, exec: sim_node, name: inner}
        """)
    outer = write(tmp_path, 'outer.launch.yaml', """\
        launch:
        - include: {file: inner.launch.yaml}
        """)
    monkeypatch.chdir(tmp_path)
    assert [s.full_name for s in load_launch(outer, {})] == ['/inner']
    monkeypatch.chdir(DATA)
    with pytest.raises(LaunchError) as err:
        load_launch(outer, {})
    assert str(outer) in str(err.value)
    assert f'included launch file not found: {DATA / "inner.launch.yaml"}' in str(err.value)


# --- include and group -------------------------------------------------------------------------

def test_include_passes_args_and_leaks_configurations_like_ros2_launch():
    nodes = by_name(load_launch(DATA / 'include.launch.yaml', {}))
    assert list(nodes) == ['/left_arm', '/right/right_arm', '/probe']
    assert nodes['/left_arm'].params == {'can_port': 'can0'}
    assert nodes['/left_arm'].source == DATA / 'arm.launch.yaml'
    assert nodes['/right/right_arm'].params == {'can_port': 'can1'}
    # The bare include is not scoped: its args stay set; the grouped one's do not.
    assert nodes['/probe'].params == {'arm_name': 'left_arm', 'can_port': 'can0'}


def test_include_args_follow_the_command_line():
    nodes = load_launch(DATA / 'include.launch.yaml', {'side': 'front'})
    assert nodes[0].full_name == '/front_arm'


def test_a_value_set_before_an_include_wins_over_its_default(tmp_path):
    path = write(tmp_path, 'x.launch.yaml', f"""\
        launch:
        - let: {{name: can_port, value: can7}}
        - include:
            file: {DATA / 'arm.launch.yaml'}
            arg: [{{name: arm_name, value: a}}]
        """)
    assert load_launch(path, {})[0].params == {'can_port': 'can7'}


def test_include_must_pass_required_args_explicitly(tmp_path):
    # launch checks an include's required args against the include's own arg list.
    path = write(tmp_path, 'x.launch.yaml', f"""\
        launch:
        - let: {{name: arm_name, value: a}}
        - include: {{file: {DATA / 'arm.launch.yaml'}}}
        """)
    with pytest.raises(LaunchError, match=r"arm\.launch\.yaml: required argument 'arm_name'"):
        load_launch(path, {})


def test_missing_include_file_names_both_files(tmp_path):
    path = write(tmp_path, 'x.launch.yaml', """\
        launch:
        - include: {file: $(dirname)/missing.launch.yaml}
        """)
    with pytest.raises(LaunchError) as err:
        load_launch(path, {})
    message = str(err.value)
    assert message.startswith(f'{path}: include: ')
    assert str(tmp_path / 'missing.launch.yaml') in message


def test_groups_scope_configurations_and_push_namespaces():
    nodes = by_name(load_launch(DATA / 'group.launch.yaml', {}))
    assert list(nodes) == ['/sim/sim', '/sim/arm/left/driver', '/top/absolute', '/isolated',
                           '/after']
    assert nodes['/sim/sim'].params == {'color': 'blue'}
    assert nodes['/sim/arm/left/driver'].namespace == '/sim/arm/left'
    assert nodes['/top/absolute'].namespace == '/top'
    # forwarding: false starts from nothing but the kept values (evaluated outside the group).
    assert nodes['/isolated'].params == {'kept': 'red'}
    assert nodes['/isolated'].namespace is None
    # The scoped group's 'blue' is gone; the unscoped group's 'shape' stayed.
    assert nodes['/after'].params == {'color': 'red', 'shape': 'cube'}


def test_group_without_forwarding_hides_outer_values(tmp_path):
    path = write(tmp_path, 'x.launch.yaml', """\
        launch:
        - let: {name: color, value: red}
        - group:
            forwarding: false
            children:
            - let: {name: c, value: $(var color)}
        """)
    with pytest.raises(LaunchError, match="launch configuration 'color' is not set"):
        load_launch(path, {})


def test_invalid_pushed_namespace_is_refused(tmp_path):
    path = write(tmp_path, 'x.launch.yaml', """\
        launch:
        - push-ros-namespace: {namespace: 2arms}
        """)
    with pytest.raises(LaunchError, match=r"push-ros-namespace: invalid namespace '/2arms'"):
        load_launch(path, {})


# --- package files, --show-args, --print ------------------------------------------------------

def test_package_launch_files_are_found_only_for_vla_nodes():
    with pytest.raises(LaunchError, match="only 'vla_nodes' is available"):
        resolve_launch_file(('turtlesim', 'multisim.launch.py'))
    with pytest.raises(LaunchError, match=r'launch/nope\.launch\.yaml: launch file not found'):
        resolve_launch_file(('vla_nodes', 'nope.launch.yaml'))


def test_declared_args_lists_included_args_not_passed_by_the_include():
    args = declared_args(DATA / 'include.launch.yaml')
    assert [(a.name, a.default) for a in args] == [('side', 'left'), ('can_port', 'can0')]
    text = format_args(declared_args(DATA / 'basic.launch.yaml'))
    assert "    'robot':\n        which robot: sim or piper\n        (default: 'sim')" in text


def test_main_print_shows_resolved_nodes(capsys):
    assert main([str(DATA / 'basic.launch.yaml'), 'robot:=piper', '--print']) == 0
    out = capsys.readouterr().out
    assert out.startswith('/cam_piper/camera  [vla_nodes camera_node]')
    assert '    remap  image -> /piper/image_raw\n' in out
    assert "    param  serial = '30'\n" in out
    assert '/recorder  [vla_nodes teleop_recorder_node]' in out


def test_main_show_args_and_errors(capsys, tmp_path):
    assert main([str(DATA / 'include.launch.yaml'), '--show-args']) == 0
    assert "'side':" in capsys.readouterr().out
    bad = write(tmp_path, 'bad.launch.yaml', 'launch:\n- executable: {cmd: ls}\n')
    assert main([str(bad), '--print']) == 1
    assert f"vla-launch: error: {bad}: unknown action 'executable'" in capsys.readouterr().err


def test_format_nodes_of_nothing():
    assert format_nodes([]) == 'No nodes.'


# --- from a NodeSpec to a node -----------------------------------------------------------------

def test_node_arguments_follow_rclpy_and_keep_param_types(tmp_path):
    spec = NodeSpec('vla_nodes', 'camera_node', name='camera', namespace='/sim',
                    params_files=[Path('/cfg/sim.yaml')],
                    params={'fps': 30, 'serial': '30', 'gains': [1.0, 2.5]},
                    remaps=[('image', '/sim/image_raw')], arguments=['--verbose'],
                    ros_arguments=['--log-level', 'debug'])
    args = node_arguments(spec, tmp_path)
    [written] = list(tmp_path.iterdir())
    assert args == ['--verbose', '--ros-args', '--log-level', 'debug',
                    '--ros-args', '-r', '__node:=camera', '-r', '__ns:=/sim',
                    '--params-file', '/cfg/sim.yaml', '--params-file', str(written),
                    '-r', 'image:=/sim/image_raw']
    assert yaml.safe_load(written.read_text()) == {
        '/sim/camera': {'ros__parameters': {'fps': 30, 'serial': '30', 'gains': [1.0, 2.5]}}}


def test_unnamed_node_params_apply_to_all_nodes(tmp_path):
    args = node_arguments(NodeSpec('vla_nodes', 'sim_node', params={'a': 1}), tmp_path)
    assert args[:2] == ['--ros-args', '--params-file']
    assert yaml.safe_load(Path(args[2]).read_text()) == {'/**': {'ros__parameters': {'a': 1}}}


def test_node_class_resolution():
    spec = NodeSpec('vla_nodes', 'thing', source=Path('x.launch.yaml'))
    assert node_class(spec, {'thing': 'vla_nodes.ros.launch:NodeSpec'}) is NodeSpec
    with pytest.raises(LaunchError, match=r"unknown executable 'thing' \(known: other\)"):
        node_class(spec, {'other': NodeSpec})
    with pytest.raises(LaunchError, match="package 'demo_nodes_cpp' cannot run without ROS"):
        node_class(NodeSpec('demo_nodes_cpp', 'talker'), {'talker': NodeSpec})


# --- running nodes on the local backend --------------------------------------------------------

def make_nodes():
    """Two tiny nodes, written like ROS examples, that record what happened to them."""
    from vla_nodes import ros
    from vla_nodes.ros.msgs import std_msgs

    class Recorded(ros.Node):
        instances = []

        def __init__(self, name, **kwargs):
            super().__init__(name, **kwargs)
            self.destroyed = False
            self.instances.append(self)

        def destroy_node(self):
            self.destroyed = True
            super().destroy_node()

    class Talker(Recorded):
        def __init__(self, **kwargs):
            super().__init__('talker', **kwargs)
            self.text = self.declare_parameter('text', 'hello').value
            self.period = self.declare_parameter('period', 0.5).value
            self.publisher = self.create_publisher(std_msgs.String, 'chatter', 10)
            self.create_timer(self.period, self.tick)

        def tick(self):
            self.publisher.publish(std_msgs.String(data=self.text))

    class Listener(Recorded):
        def __init__(self, **kwargs):
            super().__init__('listener', **kwargs)
            self.heard = []
            self.create_subscription(std_msgs.String, 'heard',
                                     lambda msg: self.heard.append(msg.data), 10)

    class Broken(Recorded):
        def __init__(self, **kwargs):
            super().__init__('broken', **kwargs)
            raise ValueError('no camera attached')

    return ros, {'talker': Talker, 'listener': Listener, 'broken': Broken}, Recorded.instances


def test_run_starts_remapped_nodes_with_params_and_destroys_them():
    ros, executables, instances = make_nodes()
    specs = load_launch(DATA / 'talk.launch.yaml', {})
    nodes = run(specs, duration=0.5, executables=executables)
    talker, listener = nodes
    assert instances == [talker, listener]
    assert talker.get_fully_qualified_name() == '/demo/speaker'
    assert listener.get_fully_qualified_name() == '/ear'
    assert (talker.text, talker.period) == ('launched', 0.02)
    # 0.5 s at 50 Hz: allow for a slow machine, but many messages must have arrived.
    assert len(listener.heard) >= 5
    assert set(listener.heard) == {'launched'}
    assert talker.destroyed and listener.destroyed
    assert not ros.ok()


def test_a_failing_node_stops_the_launch_and_destroys_the_others(tmp_path):
    ros, executables, instances = make_nodes()
    path = write(tmp_path, 'x.launch.yaml', """\
        launch:
        - node: {pkg: vla_nodes, exec: talker, name: speaker}
        - node: {pkg: vla_nodes, exec: broken, name: camera, namespace: arm}
        """)
    with pytest.raises(LaunchError) as err:
        run(load_launch(path, {}), duration=5.0, executables=executables)
    assert 'node /arm/camera (vla_nodes broken) failed to start: ValueError: no camera' in str(
        err.value)
    assert [node.get_name() for node in instances] == ['speaker', 'camera']
    assert instances[0].destroyed
    assert not ros.ok()


def test_the_graph_runner_spins_on_a_thread_with_a_control_node_and_stops_clean():
    """vla-record, vla-eval and vla-main run their graphs through the same runner as run()."""
    from vla_nodes.ros.launch import Graph
    from vla_nodes.ros.msgs import std_msgs
    ros, executables, instances = make_nodes()
    specs = load_launch(DATA / 'talk.launch.yaml', {})
    heard = []
    with Graph(specs, executables, single_threaded=True, control='ctl') as graph:
        assert [n.get_name() for n in graph.nodes] == ['speaker', 'ear'] and ros.ok()
        graph.control.create_subscription(std_msgs.String, '/demo/remapped',
                                          lambda msg: heard.append(msg.data), 10)
        graph.spin_in_thread()
        end = time.monotonic() + 10.0
        while len(heard) < 3 and time.monotonic() < end:
            time.sleep(0.01)
    assert heard[:3] == ['launched'] * 3
    assert all(node.destroyed for node in instances) and graph.nodes == []
    assert graph.control is None and not ros.ok()
    graph.stop()  # twice is harmless


def test_ctrl_c_ends_the_launch_cleanly():
    ros, executables, instances = make_nodes()
    specs = load_launch(DATA / 'talk.launch.yaml', {})
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer.start()
    try:
        nodes = run(specs, executables=executables)
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    assert nodes[1].heard
    assert all(node.destroyed for node in nodes)
    assert not ros.ok()
