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

"""SimWorld: the MuJoCo Piper on a table with a red cube, a green plate and an RGB-D camera.

A blue block is also in the scene, stowed under the table until a task puts it on the table with
`place_object` (`vla_nodes/sim/tasks.py`); tasks read contacts through `model` and `data`.

The sim_node drives it from ROS timers (`step`, `render`), and the simulated CAN firmware
(`sim/piper_can.py`) reads `joint_positions` and calls `set_targets`, so the real driver code runs
unchanged against it. Units follow `contract.py`: joints in rad, gripper opening in m, depth in m.
The world frame is base_link. The scene comes from `piper_mjcf.build_mjcf`, whose arm is built
from the same DH chain as `vla_nodes.arm.kinematics`, so `ee_pose()` equals `forward_kinematics`.
`SimConfig.mjcf_path` swaps in a user's robot (e.g. mujoco_menagerie's `agilex_piper/piper.xml`)
with its joints named by `SimConfig.joint_map` (`vla_nodes/sim/robot_model.py`).

Rendering is offscreen (`MUJOCO_GL=egl` unless already set) through one lazily created
`RgbdRenderer` (`vla_nodes/sim/rgbd.py`); call `close()` to free it.
"""

from dataclasses import dataclass
import math
import os

os.environ.setdefault('MUJOCO_GL', 'egl')  # must precede the mujoco import, which picks the GL

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from vla_nodes import contract  # noqa: E402
from vla_nodes.sim.rgbd import RgbdRenderer  # noqa: E402
from vla_nodes.sim.robot_model import (  # noqa: E402
    ArmBinding, CAMERA_NAME, compile_model, DEFAULT_JOINT_MAP, parse_joint_map,
    WRIST_CAMERA_NAME)

_MJ_TO_OPTICAL = np.diag([1.0, -1.0, -1.0])  # MuJoCo camera (X right, Y up, -Z view) -> optical
OBJECTS = ('cube', 'plate', 'block')  # the scene's movable bodies, by name (object_pose)


@dataclass(frozen=True)
class SimConfig:
    """Scene, camera and physics settings.

    Attributes:
        width: image width (px); 320 keeps CI fast, 640 matches the real camera stream.
        height: image height (px).
        seed: seed of the first reset; later resets without a seed continue its stream.
        physics_dt: physics time step (s).
        fovy_deg: vertical field of view (deg); 58 is the D455 depth sensor's, which the
            aligned colour image takes on.
        camera_pos: camera position in base_link (m): in front of the arm, to its left and
            above, about 0.9 m from the workspace (inside the D455's best depth range), so that
            arm, gripper, cube and plate are all in view and the arm hides little of the table.
        camera_target: point the optical axis passes through (m): between the workspace and
            the gripper at the ready pose.
        cube_size_m: edge length of the red cube (m).
        cube_region: ((x_min, y_min), (x_max, y_max)) of the cube centre on the table (m).
            Within it a top-down grasp and a pre-grasp 6 cm higher are both reachable: j5's
            +-70 deg limit caps top-down reach at about 0.38 m from the base 8 cm above the table.
        cube_yaw_range: (low, high) of the cube's yaw about the vertical (rad). The cube looks
            the same every 90 deg, so a range 90 deg wide covers every look; any rule that picks
            a grasp from that circle must wrap somewhere (a 90 deg jump of joint6, which a policy
            learning from demos averages into a miss), so the range is a little narrower and the
            expert (`sim/expert.py`) puts its wrap in the gap.
        plate_region: same for the plate centre (m), within top-down reach for placing.
        min_separation_m: minimum distance between the cube and plate centres (m).
        dh_is_offset: piper_sdk DH variant the arm is built from (0 or 1).
        mjcf_path: a user's robot MJCF instead of the built-in Piper ('' = built-in); see
            `vla_nodes/sim/robot_model.py` for what the file must hold.
        joint_map: 'ours:theirs' joint names of that robot, one per contract joint.
    """

    width: int = 320
    height: int = 240
    seed: int = 0
    physics_dt: float = 0.002
    fovy_deg: float = 58.0
    camera_pos: tuple = (0.8, 0.45, 0.6)
    camera_target: tuple = (0.2, 0.0, 0.17)
    cube_size_m: float = 0.04
    cube_region: tuple = ((0.2, -0.13), (0.34, 0.13))
    cube_yaw_range: tuple = (-0.7, 0.7)  # +-40 deg: a 10 deg gap on the 90 deg circle
    plate_region: tuple = ((0.2, -0.17), (0.34, 0.17))
    min_separation_m: float = 0.12
    dh_is_offset: int = 1
    mjcf_path: str = ''
    joint_map: tuple = DEFAULT_JOINT_MAP


def _pose(pos, xmat) -> np.ndarray:
    """(4, 4) transform from a (3,) position and a flat (9,) rotation matrix."""
    pose = np.eye(4)
    pose[:3, :3] = np.reshape(xmat, (3, 3))
    pose[:3, 3] = pos
    return pose


class SimWorld:
    """A seeded MuJoCo tabletop with the Piper, driven by joint targets.

    `model` and `data` are the raw MuJoCo structures, for tasks and tests that need contacts or
    ray casts; everything else goes through the methods.
    """

    def __init__(self, config: SimConfig = SimConfig()):
        """Compile the scene and reset it with `config.seed`.

        Args:
            config: scene, camera and physics settings.

        Raises:
            robot_model.ModelError (a ValueError): `mjcf_path` or `joint_map` cannot be used.
        """
        self.config = config
        joint_map = parse_joint_map(config.joint_map)  # bad input fails before compiling
        self.model = compile_model(config)
        self.data = mujoco.MjData(self.model)
        self.arm = ArmBinding.from_model(self.model, joint_map)
        self._lower = np.array([contract.PIPER_LIMITS[n].lower for n in contract.JOINT_NAMES])
        self._upper = np.array([contract.PIPER_LIMITS[n].upper for n in contract.JOINT_NAMES])
        self._renderer = None
        self._leftover_s = 0.0
        self._rng = None  # set by reset
        self.reset(config.seed)

    # --- episode -------------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> None:
        """Arm to `contract.READY_POSITIONS`, cube and plate to random spots, time to 0.

        Args:
            seed: reseeds the object placement; None continues the current random stream.
        """
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        mujoco.mj_resetData(self.model, self.data)
        ready = np.asarray(contract.READY_POSITIONS)
        self.data.qpos[self.arm.arm_qpos] = ready[:6]
        self.data.qpos[self.arm.finger_qpos] = (
            self.arm.finger_sign * ready[6] / len(self.arm.finger_qpos))
        cube_xy = self._rng.uniform(*self.config.cube_region)
        plate_xy = self._sample_plate(cube_xy)
        cube_yaw = self._rng.uniform(*self.config.cube_yaw_range)
        self._place('cube', cube_xy, self.config.cube_size_m / 2, cube_yaw)
        self._place('plate', plate_xy, 0.005, 0.0)
        self.set_targets(contract.READY_POSITIONS)
        self._leftover_s = 0.0
        mujoco.mj_forward(self.model, self.data)

    def _sample_plate(self, cube_xy: np.ndarray) -> np.ndarray:
        """Draw a plate centre at least `min_separation_m` from the cube (m)."""
        while True:
            xy = self._rng.uniform(*self.config.plate_region)
            if np.linalg.norm(xy - cube_xy) >= self.config.min_separation_m:
                return xy

    def place_object(self, name: str, xy, yaw: float = 0.0) -> None:
        """Put a free object at rest on the table top, for task set-ups after `reset`.

        Args:
            name: 'cube', 'plate' or 'block'.
            xy: (2,) centre on the table in base_link (m).
            yaw: rotation about the vertical (rad).
        """
        geom = self.model.geom(name)
        # Half height above the table: a box's z half size, a cylinder's half length.
        is_cylinder = geom.type[0] == mujoco.mjtGeom.mjGEOM_CYLINDER
        half_height = geom.size[1] if is_cylinder else geom.size[2]
        self._place(name, xy, float(half_height), yaw)
        mujoco.mj_forward(self.model, self.data)

    def _place(self, body: str, xy, z: float, yaw: float) -> None:
        """Put a free body at (x, y, z) (m) with a yaw (rad) about the vertical, at rest."""
        joint = self.model.joint(body)
        adr = joint.qposadr[0]
        self.data.qpos[adr:adr + 7] = (*xy, z, math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2))
        self.data.qvel[joint.dofadr[0]:joint.dofadr[0] + 6] = 0.0

    # --- physics -------------------------------------------------------------------------------
    @property
    def time(self) -> float:
        """Simulated time since the last reset (s)."""
        return float(self.data.time)

    def step(self, seconds: float) -> None:
        """Advance physics by `seconds`, in whole physics steps; the remainder carries over.

        Args:
            seconds: simulated duration (s), >= 0. 5 ms at dt = 2 ms runs 2 or 3 steps so the
                average rate stays exact.
        """
        if not seconds >= 0.0:
            raise ValueError(f'step needs seconds >= 0, got {seconds}')
        total = self._leftover_s + seconds
        steps = int(math.floor(total / self.model.opt.timestep + 1e-9))
        self._leftover_s = total - steps * self.model.opt.timestep
        if steps:
            mujoco.mj_step(self.model, self.data, nstep=steps)
            # mj_step leaves body, site and camera poses at the last step's start: bring them
            # to the new joint positions so that poses and joint_positions() agree.
            mujoco.mj_kinematics(self.model, self.data)

    def set_targets(self, q7) -> np.ndarray:
        """Command joint position targets, clamped to `contract.PIPER_LIMITS`.

        Args:
            q7: (7,) joint1..joint6 (rad) and gripper opening (m).

        Returns:
            (7,) the targets actually applied after clamping.

        Raises:
            ValueError: wrong shape or a NaN / Inf entry (nothing is applied).
        """
        q7 = np.asarray(q7, dtype=np.float64)
        if q7.shape != (7,) or not np.all(np.isfinite(q7)):
            raise ValueError(f'set_targets needs 7 finite values, got {q7!r}')
        applied = np.clip(q7, self._lower, self._upper)
        self.data.ctrl[self.arm.actuators] = applied * self.arm.ctrl_scale
        return applied

    def joint_positions(self) -> np.ndarray:
        """(7,) joint1..joint6 (rad) and gripper opening (m, sum of both finger strokes)."""
        fingers = np.dot(self.data.qpos[self.arm.finger_qpos], self.arm.finger_sign)
        return np.append(self.data.qpos[self.arm.arm_qpos], fingers)

    def joint_velocities(self) -> np.ndarray:
        """(7,) joint1..joint6 (rad/s) and gripper opening rate (m/s)."""
        fingers = np.dot(self.data.qvel[self.arm.finger_dof], self.arm.finger_sign)
        return np.append(self.data.qvel[self.arm.arm_dof], fingers)

    # --- poses ---------------------------------------------------------------------------------
    def ee_pose(self) -> np.ndarray:
        """(4, 4) flange (SDK end-effector, link6) pose in base_link (m), from the site 'ee'."""
        return self._site_pose('ee')

    def tcp_pose(self) -> np.ndarray:
        """(4, 4) grasp centre between the finger pads in base_link (m).

        Equals `forward_kinematics(q, tcp_offset_m=TCP_OFFSET_M)` (vla_nodes.arm.kinematics).
        """
        return self._site_pose('tcp')

    def _site_pose(self, name: str) -> np.ndarray:
        """(4, 4) pose of site `name` in base_link (m)."""
        try:
            site = self.data.site(name)
        except KeyError:
            raise KeyError(f"the robot model has no site {name!r}: add <site name='{name}'/> to "
                           "its flange body (the built-in Piper has 'ee' and 'tcp')") from None
        return _pose(site.xpos, site.xmat)

    def object_pose(self, name: str) -> np.ndarray:
        """(4, 4) pose of body `name` ('cube', 'plate' or 'block') in base_link (m)."""
        body = self.data.body(name)
        return _pose(body.xpos, body.xmat)

    def camera_pose(self, camera: str = CAMERA_NAME) -> np.ndarray:
        """(4, 4) optical frame (X right, Y down, Z forward) of a camera in base_link (m).

        Args:
            camera: the MuJoCo camera, CAMERA_NAME (fixed) or WRIST_CAMERA_NAME (on link6).
        """
        cam = self.data.cam(self._camera_name(camera))
        pose = _pose(cam.xpos, cam.xmat)
        pose[:3, :3] = pose[:3, :3] @ _MJ_TO_OPTICAL
        return pose

    # --- camera --------------------------------------------------------------------------------
    def intrinsics(self, camera: str = CAMERA_NAME) -> tuple:
        """Exact pinhole intrinsics of a camera's rendered images (no distortion).

        Args:
            camera: a camera of the model; its field of view is the model's (`fovy`).

        Returns:
            (K, width, height): K (3, 3) float64 in pixels, pixel centres at integer coordinates
            (OpenCV / CameraInfo convention); width and height in pixels.
        """
        width, height = self.config.width, self.config.height
        fovy = float(self.model.cam_fovy[self.model.camera(self._camera_name(camera)).id])
        focal = 0.5 * height / math.tan(math.radians(fovy) / 2)
        k_matrix = np.array([
            [focal, 0.0, (width - 1) / 2],
            [0.0, focal, (height - 1) / 2],
            [0.0, 0.0, 1.0],
        ])
        return k_matrix, width, height

    def _camera_name(self, camera: str) -> str:
        if camera not in self.cameras:
            raise KeyError(f'the robot model has no camera {camera!r} (it has {self.cameras}); '
                           f"a user MJCF adds a wrist camera as <camera name='{WRIST_CAMERA_NAME}'"
                           '/> in its flange body')
        return camera

    @property
    def cameras(self) -> tuple:
        """Names of the model's cameras."""
        return tuple(self.model.camera(i).name for i in range(self.model.ncam))

    def render(self, camera: str = CAMERA_NAME) -> tuple:
        """Render a camera (CAMERA_NAME, the scene camera, or WRIST_CAMERA_NAME).

        Every camera shares the image size; `intrinsics(camera)` gives its K.

        Returns:
            (rgb, depth): rgb (H, W, 3) uint8; depth (H, W) float32, metres along the optical
            axis (z-depth, not ray length), 20 m where nothing is hit.
        """
        if self._renderer is None:
            self._renderer = RgbdRenderer(self.model, self.config.width, self.config.height,
                                          CAMERA_NAME)
        return self._renderer.render(self.data, self._camera_name(camera))

    def close(self) -> None:
        """Free the renderer (the GL context); the world stays usable and renders again lazily."""
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
