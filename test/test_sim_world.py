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

"""SimWorld (vla_nodes/sim/world.py) against numpy FK, ray casting and its own contract.

Kinematics agree with the DH chain, servos track, the RGB-D camera is metric and calibrated,
resets are seeded, and the gripper can pick up the cube.
"""

import math
import os

os.environ.setdefault('MUJOCO_GL', 'egl')  # mujoco picks its GL backend when first imported

import mujoco  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from vla_nodes import contract  # noqa: E402
from vla_nodes.arm import kinematics  # noqa: E402
from vla_nodes.sim import expert, piper_mjcf  # noqa: E402
from vla_nodes.sim.robot_model import DEFAULT_JOINT_MAP, ModelError  # noqa: E402
from vla_nodes.sim.world import SimConfig, SimWorld  # noqa: E402

READY = np.array(contract.READY_POSITIONS)


def _set_arm_qpos(sim: SimWorld, q6) -> None:
    """Teleport the arm joints (rad) and recompute kinematics, without physics."""
    for name, value in zip(contract.ARM_JOINTS, q6):
        sim.data.qpos[sim.model.joint(name).qposadr[0]] = value
    mujoco.mj_kinematics(sim.model, sim.data)


def _project(sim: SimWorld, point) -> np.ndarray:
    """Pixel (u, v) of a base_link point (m), through camera_pose and K."""
    k_matrix, _, _ = sim.intrinsics()
    in_cam = np.linalg.inv(sim.camera_pose()) @ np.append(point, 1.0)
    uvw = k_matrix @ in_cam[:3]
    return uvw[:2] / uvw[2]


def _ray_z_depth(sim: SimWorld, u: int, v: int) -> tuple:
    """(z-depth, ray length) in m of the first surface seen through pixel (u, v), by mj_ray."""
    k_matrix, _, _ = sim.intrinsics()
    pose = sim.camera_pose()
    ray = np.linalg.solve(k_matrix, [u, v, 1.0])  # optical frame, z = 1
    direction = pose[:3, :3] @ ray
    length = np.linalg.norm(direction)
    geom = np.array([-1], dtype=np.int32)
    dist = mujoco.mj_ray(sim.model, sim.data, pose[:3, 3], direction / length, None, 1, -1, geom)
    return dist / length, dist


def test_ee_site_matches_numpy_fk_within_1mm_1deg(world):
    lower, upper = kinematics.limit_arrays()
    for q in np.random.default_rng(5).uniform(lower, upper, size=(100, 6)):
        _set_arm_qpos(world, q)
        sites = ((0.0, world.ee_pose()), (kinematics.TCP_OFFSET_M, world.tcp_pose()))
        for tcp_offset_m, site_pose in sites:
            fk = kinematics.forward_kinematics(q, tcp_offset_m=tcp_offset_m)
            assert np.linalg.norm(site_pose[:3, 3] - fk[:3, 3]) < 1e-3
            angle = np.linalg.norm(kinematics.rotation_log(site_pose[:3, :3].T @ fk[:3, :3]))
            assert angle < math.radians(1.0)
    world.reset(0)


def test_old_firmware_dh_variant_builds_the_matching_arm():
    sim = SimWorld(SimConfig(dh_is_offset=0))
    lower, upper = kinematics.limit_arrays()
    for q in np.random.default_rng(6).uniform(lower, upper, size=(20, 6)):
        _set_arm_qpos(sim, q)
        np.testing.assert_allclose(sim.ee_pose(), kinematics.forward_kinematics(q, 0), atol=1e-6)


def test_reset_puts_arm_at_ready_and_objects_on_table(world):
    world.reset(3)
    np.testing.assert_allclose(world.joint_positions(), READY, atol=1e-9)
    np.testing.assert_allclose(world.joint_velocities(), np.zeros(7))
    assert world.time == 0.0
    cube = world.object_pose('cube')[:3, 3]
    plate = world.object_pose('plate')[:3, 3]
    (x_min, y_min), (x_max, y_max) = world.config.cube_region
    assert x_min <= cube[0] <= x_max and y_min <= cube[1] <= y_max
    assert cube[2] == pytest.approx(0.02)
    assert np.linalg.norm(cube[:2] - plate[:2]) >= world.config.min_separation_m
    world.step(0.5)
    assert world.object_pose('cube')[2, 3] == pytest.approx(0.02, abs=1e-3)  # rests on the table


def test_seeded_reset_is_reproducible_and_seeds_differ(world):
    poses = {}
    for seed in (1, 2, 1):
        world.reset(seed)
        poses.setdefault(seed, []).append(world.object_pose('cube'))
    np.testing.assert_array_equal(poses[1][0], poses[1][1])
    assert np.linalg.norm(poses[1][0][:3, 3] - poses[2][0][:3, 3]) > 1e-3
    world.reset(1)
    world.reset()  # continues seed 1's stream: a new placement, the same one every time
    first_follow_up = world.object_pose('cube')
    assert not np.allclose(first_follow_up, poses[1][0])
    world.reset(1)
    world.reset()
    np.testing.assert_array_equal(world.object_pose('cube'), first_follow_up)


def test_step_keeps_exact_average_rate(world):
    world.reset(0)
    for _ in range(200):
        world.step(0.005)  # 200 Hz timer on a 2 ms physics step: 2 or 3 steps each
    assert world.time == pytest.approx(1.0, abs=world.config.physics_dt / 2)
    with pytest.raises(ValueError):
        world.step(-0.1)


def test_actuators_track_step_target_within_1deg_in_1_5s(world):
    world.reset(0)
    target = READY + np.array([0.5, 0.3, -0.4, 0.5, -0.5, 0.8, -0.03])
    applied = world.set_targets(target)
    np.testing.assert_allclose(applied, target)
    world.step(1.5)
    error_deg = np.degrees(np.abs(world.joint_positions()[:6] - target[:6]))
    assert error_deg.max() < 1.0, error_deg
    assert np.abs(world.joint_velocities()[:6]).max() < 0.01
    np.testing.assert_allclose(world.ee_pose(), kinematics.forward_kinematics(target[:6]),
                               atol=2e-3)


@pytest.mark.parametrize('opening', [0.07, 0.0, 0.03])
def test_gripper_opening_reaches_target(world, opening):
    world.reset(0)
    world.set_targets(np.append(READY[:6], opening))
    world.step(1.0)
    assert world.joint_positions()[6] == pytest.approx(opening, abs=1e-3)


def test_a_crash_does_not_push_the_fingers_past_the_grippers_stop(world):
    """The fingers' range is a hard stop, as on the arm.

    With MuJoCo's soft joint limits an arm crashing with its gripper open read up to 0.10 m,
    and the driver's feedback guard faulted ("gripper reads 0.0750, outside [-0.005, 0.075]")
    in an evaluation.
    """
    from vla_nodes.arm.feedback_guard import plausible_bounds
    limits = np.array([[contract.PIPER_LIMITS[n].lower, contract.PIPER_LIMITS[n].upper]
                       for n in contract.JOINT_NAMES])
    rng, widest = np.random.default_rng(0), 0.0
    for seed in (0, 1):
        world.reset(seed)
        for _ in range(10):  # random targets across the whole range: the arm hits the table
            q = rng.uniform(limits[:, 0], limits[:, 1])
            q[6] = rng.choice([0.0, 0.07])
            world.set_targets(q)
            for _ in range(100):
                world.step(0.01)
                widest = max(widest, world.joint_positions()[6])
    assert widest <= plausible_bounds()[1][6], widest


def test_set_targets_clamps_to_limits_and_rejects_bad_input(world):
    world.reset(0)
    applied = world.set_targets([4.0, -1.0, 1.0, 0.0, 0.0, 0.0, 0.2])
    upper_j1 = contract.PIPER_LIMITS['joint1'].upper
    np.testing.assert_allclose(applied, [upper_j1, 0.0, 0.0, 0.0, 0.0, 0.0, 0.07])
    with pytest.raises(ValueError):
        world.set_targets([0.0, 1.0, -1.0, 0.0, math.nan, 0.0, 0.05])
    with pytest.raises(ValueError):
        world.set_targets([0.0] * 6)
    np.testing.assert_allclose(world.data.ctrl[:7], applied)  # bad input changed nothing


def test_intrinsics_are_the_pinhole_of_fovy():
    sim = SimWorld(SimConfig(width=640, height=480, fovy_deg=58.0))
    k_matrix, width, height = sim.intrinsics()
    focal = 240.0 / math.tan(math.radians(29.0))  # 432.97 px
    np.testing.assert_allclose(k_matrix, [[focal, 0, 319.5], [0, focal, 239.5], [0, 0, 1]])
    assert (width, height) == (640, 480)


def test_camera_optical_frame_looks_at_target(world):
    pose = world.camera_pose()
    np.testing.assert_allclose(pose[:3, 3], world.config.camera_pos)
    to_target = np.subtract(world.config.camera_target, world.config.camera_pos)
    np.testing.assert_allclose(pose[:3, 2], to_target / np.linalg.norm(to_target), atol=1e-9)
    assert pose[2, 1] < 0.0  # image Y (down) points down in the world
    np.testing.assert_allclose(pose[:3, :3].T @ pose[:3, :3], np.eye(3), atol=1e-9)
    np.testing.assert_allclose(_project(world, world.config.camera_target), [159.5, 119.5])


def test_depth_and_colour_at_the_cube_centre_pixel(world):
    world.reset(4)
    rgb, depth = world.render()
    assert rgb.shape == (240, 320, 3) and rgb.dtype == np.uint8
    assert depth.shape == (240, 320) and depth.dtype == np.float32
    u, v = np.round(_project(world, world.object_pose('cube')[:3, 3])).astype(int)
    expected, _ = _ray_z_depth(world, u, v)
    assert depth[v, u] == pytest.approx(expected, abs=5e-3)
    # The visible face lies between the cube centre and its nearest corner, along the optical axis.
    centre = np.append(world.object_pose('cube')[:3, 3], 1.0)
    centre_z = (np.linalg.inv(world.camera_pose()) @ centre)[2]
    assert centre_z - 0.02 * math.sqrt(3) <= depth[v, u] <= centre_z
    red, green, blue = rgb[v, u].astype(int)
    assert red > 100 and red > 2 * green and red > 2 * blue


def test_depth_is_z_depth_not_ray_length(world):
    world.reset(0)
    _, depth = world.render()
    u, v = 5, 234  # a table pixel near a corner: the ray is long and slanted
    z_depth, ray_length = _ray_z_depth(world, u, v)
    assert ray_length - z_depth > 0.1
    assert depth[v, u] == pytest.approx(z_depth, abs=5e-3)


def test_render_after_close_reopens(world):
    world.close()
    rgb, _ = world.render()
    assert rgb.mean() > 20.0


def _top_down(position, yaw: float) -> np.ndarray:
    """Tool pose pointing straight down with the fingers closing along `yaw` (rad)."""
    closing = np.array([math.cos(yaw), math.sin(yaw), 0.0])
    down = np.array([0.0, 0.0, -1.0])
    pose = np.eye(4)
    pose[:3, :3] = np.column_stack([np.cross(closing, down), closing, down])
    pose[:3, 3] = position
    return pose


def test_top_down_grasp_lifts_the_cube(world):
    world.reset(2)
    cube = world.object_pose('cube')
    # The cube is symmetric under 90 deg turns: close within 45 deg of base y, where j6 is near 0.
    yaw = (math.atan2(cube[1, 0], cube[0, 0]) - math.pi / 4) % (math.pi / 2) + math.pi / 4
    q = READY[:6]
    centre = cube[:3, 3]
    for offset_z, opening in ((0.06, 0.07), (0.0, 0.07), (0.0, 0.0), (0.06, 0.0)):
        q = kinematics.inverse_kinematics(_top_down(centre + [0, 0, offset_z], yaw), q,
                                          tcp_offset_m=kinematics.TCP_OFFSET_M)
        world.set_targets(np.append(q, opening))
        world.step(1.0)
    assert world.object_pose('cube')[2, 3] > 0.07  # lifted 5+ cm off the table
    assert world.joint_positions()[6] == pytest.approx(0.04, abs=2e-3)  # fingers on the cube


# --- the camera against geometry -----------------------------------------------------------------

@pytest.mark.parametrize('config', [SimConfig(), SimConfig(width=640, height=480, fovy_deg=45.0)],
                         ids=['320x240', '640x480-fovy45'])
def test_depth_is_the_distance_to_the_table_plane_and_reprojects_onto_it(config):
    """Every pixel that sees the table top (z = 0) has the plane's z-depth within 1 mm.

    The plane's depth is computed from K and camera_pose alone, so this also pins the principal
    point and focal length: half a pixel off would put slanted table pixels millimetres off.
    """
    sim = SimWorld(config)
    try:
        _, depth = sim.render()
        k_matrix, width, height = sim.intrinsics()
        pose = sim.camera_pose()
        table = sim.model.geom('table').id
        u, v = np.meshgrid(np.arange(0, width, 7), np.arange(0, height, 7))
        rays = np.linalg.solve(k_matrix, np.stack([u.ravel(), v.ravel(), np.ones(u.size)]))
        directions = pose[:3, :3] @ rays  # (3, N) base_link, scaled so the optical z is 1
        plane_depth = -pose[2, 3] / directions[2]  # optical z where the ray meets z = 0
        checked = []
        for i in np.flatnonzero(directions[2] < 0):
            geom = np.array([-1], dtype=np.int32)
            length = np.linalg.norm(directions[:, i])
            hit = mujoco.mj_ray(sim.model, sim.data, pose[:3, 3], directions[:, i] / length,
                                None, 1, -1, geom)
            if geom[0] == table and hit == pytest.approx(plane_depth[i] * length, abs=1e-6):
                checked.append(i)
        assert len(checked) > 0.4 * u.size  # the table fills much of the view
        rendered = depth[v.ravel()[checked], u.ravel()[checked]]
        np.testing.assert_allclose(rendered, plane_depth[checked], rtol=0.0, atol=1e-3)
        # Back through K: the rendered depth puts every one of those pixels on the plane.
        points = pose[:3, :3] @ (rays[:, checked] * rendered) + pose[:3, 3:4]
        np.testing.assert_allclose(points[2], 0.0, atol=1e-3)
    finally:
        sim.close()


# --- a user's robot MJCF -------------------------------------------------------------------------

MY_JOINT_MAP = tuple(f'{n}:my_{n}' for n in contract.ARM_JOINTS) + (
    'gripper:my_finger_left+my_finger_right',)


@pytest.fixture(scope='module')
def my_robot_file(tmp_path_factory):
    """The built-in Piper saved as a user's robot-only MJCF with other joint names.

    The gripper is driven like menagerie's: a position actuator on one finger, the other coupled.
    """
    robot = mujoco.MjSpec.from_string(piper_mjcf.robot_mjcf())
    spec = mujoco.MjSpec()
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    spec.attach(robot, frame=spec.worldbody.add_frame(), prefix='my_')
    spec.delete(spec.actuator('my_gripper'))
    grip = spec.add_actuator(name='my_grip', target='my_finger_left',
                             trntype=mujoco.mjtTrn.mjTRN_JOINT)
    grip.set_to_position(kp=800.0, kv=40.0)  # on one finger: twice the opening servo's gains
    grip.forcelimited, grip.forcerange = 1, [-30.0, 30.0]
    spec.compile()
    path = tmp_path_factory.mktemp('user_mjcf') / 'my_piper.xml'
    path.write_text(spec.to_xml())
    return path


def test_user_mjcf_with_a_joint_map_drives_like_the_built_in(my_robot_file):
    sim = SimWorld(SimConfig(mjcf_path=str(my_robot_file), joint_map=MY_JOINT_MAP))
    try:
        np.testing.assert_allclose(sim.joint_positions(), READY, atol=1e-9)
        assert sim.arm.finger_bodies == ('my_finger_left', 'my_finger_right')
        np.testing.assert_allclose(sim.arm.ctrl_scale, [1, 1, 1, 1, 1, 1, 0.5])
        target = READY + np.array([0.5, 0.3, -0.4, 0.5, -0.5, 0.8, -0.03])
        sim.set_targets(target)
        sim.step(1.5)
        assert np.degrees(np.abs(sim.joint_positions()[:6] - target[:6])).max() < 1.0
        assert sim.joint_positions()[6] == pytest.approx(target[6], abs=1e-3)
        rgb, depth = sim.render()  # our scene camera was added around their robot
        assert rgb.shape == (240, 320, 3) and np.nanmin(depth) > 0.1
        # Their robot runs our tasks: contacts come from the mapped fingers.
        ok, seconds = expert.run_episode('pick_red_cube', 1, world=sim)
        assert ok, seconds
        with pytest.raises(KeyError, match="no site 'ee'"):
            sim.ee_pose()
    finally:
        sim.close()


def test_bad_user_mjcf_gives_a_clear_error(tmp_path):
    with pytest.raises(ModelError, match="mjcf_path '/nonexistent/piper.xml' is not a file"):
        SimWorld(SimConfig(mjcf_path='/nonexistent/piper.xml'))
    garbage = tmp_path / 'garbage.xml'
    garbage.write_text('<mujoco><worldbody><body></mujoco>')
    with pytest.raises(ModelError, match='garbage.xml.*cannot be used'):
        SimWorld(SimConfig(mjcf_path=str(garbage)))
    scene = tmp_path / 'scene.xml'  # a scene, not a robot: its floor clashes with ours
    scene.write_text(piper_mjcf.build_mjcf(SimConfig()))
    with pytest.raises(ModelError, match='robot only'):
        SimWorld(SimConfig(mjcf_path=str(scene)))


@pytest.mark.parametrize('joint_map, message', [
    (MY_JOINT_MAP[:6], 'leaves out gripper'),
    (('joint1=my_joint1',) + MY_JOINT_MAP[1:], "is not 'ours:theirs'"),
    (MY_JOINT_MAP[:6] + ('wrist:my_finger_left',), "'wrist' is not one of"),
    (DEFAULT_JOINT_MAP, "maps 'joint1' to 'joint1', which the model does not have"),
    (('joint1:my_finger_left',) + MY_JOINT_MAP[1:], 'not a hinge'),
])
def test_bad_joint_map_names_the_problem(my_robot_file, joint_map, message):
    with pytest.raises(ModelError, match=message):
        SimWorld(SimConfig(mjcf_path=str(my_robot_file), joint_map=joint_map))


def test_fingers_with_negative_strokes_on_a_tendon_open_by_the_opening(tmp_path):
    """A gripper like older menagerie files.

    The second finger's range is negative and one actuator drives a tendon over both
    (coefficients +1, -1).
    """
    links = ''.join(f'<body name="l{i}" pos="0 0 0.05"><joint name="a{i}" axis="0 0 1" '
                    f'range="-3 3"/><geom type="capsule" size="0.01" fromto="0 0 0 0 0 0.05"/>'
                    for i in range(1, 7))
    fingers = ''.join(f'<body name="f{i}"><joint name="f{i}" type="slide" axis="0 1 0" '
                      f'range="{r}"/><geom type="box" size="0.01 0.005 0.02"/></body>'
                      for i, r in ((1, '0 0.035'), (2, '-0.035 0')))
    path = tmp_path / 'negative.xml'
    path.write_text(f"""<mujoco><compiler autolimits="true"/>
<option integrator="implicitfast"/><worldbody>{links}{fingers}{'</body>' * 6}</worldbody>
<tendon><fixed name="split"><joint joint="f1" coef="1"/><joint joint="f2" coef="-1"/></fixed>
</tendon><equality><joint joint1="f2" joint2="f1" polycoef="0 -1 0 0 0"/></equality>
<actuator>{''.join(f'<position joint="a{i}" kp="50" kv="2"/>' for i in range(1, 7))}
<position name="grip" tendon="split" kp="200" kv="10"/></actuator></mujoco>""")
    joint_map = tuple(f'joint{i}:a{i}' for i in range(1, 7)) + ('gripper:f1+f2',)
    sim = SimWorld(SimConfig(mjcf_path=str(path), joint_map=joint_map))
    np.testing.assert_allclose(sim.arm.finger_sign, [1.0, -1.0])
    assert sim.arm.ctrl_scale[6] == pytest.approx(1.0)  # tendon length = f1 - f2 = opening
    assert sim.joint_positions()[6] == pytest.approx(READY[6])
    sim.set_targets(np.append(READY[:6], 0.03))
    sim.step(1.0)
    assert sim.joint_positions()[6] == pytest.approx(0.03, abs=1e-3)
    assert sim.data.qpos[sim.arm.finger_qpos[1]] == pytest.approx(-0.015, abs=1e-3)
