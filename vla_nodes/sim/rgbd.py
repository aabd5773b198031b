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

"""RgbdRenderer: colour and metric depth of one MuJoCo camera from a single render pass.

Where it fits: `SimWorld.render()` (`vla_nodes/sim/world.py`) uses it for the scene camera.
`mujoco.Renderer` draws the scene twice for colour and depth (its depth pass is a segmentation
pass); here one `mjr_render` fills both buffers and one `mjr_readPixels` reads both, which
halves the cost of an RGB-D frame on a CPU (Mesa llvmpipe under EGL).

The GL context belongs to the thread that created it: create, render and close on one thread.
"""

import mujoco
import numpy as np


class RgbdRenderer:
    """Offscreen RGB-D rendering of the fixed cameras of a model (one GL context for all)."""

    def __init__(self, model: mujoco.MjModel, width: int, height: int, camera: str):
        """Create the GL context (current on this thread) and the render buffers.

        Args:
            model: the compiled model; its offscreen buffer must be at least width x height.
            width: image width (px).
            height: image height (px).
            camera: name of a fixed camera of the model (the default of `render`).

        Raises:
            ValueError: the image is larger than the offscreen buffer, or no such camera.
        """
        buffer = model.vis.global_
        if width > buffer.offwidth or height > buffer.offheight:
            raise ValueError(f'{width}x{height} exceeds the offscreen buffer '
                             f'{buffer.offwidth}x{buffer.offheight} (<global offwidth/offheight>)')
        self._camera = mujoco.MjvCamera()
        self._camera.type = mujoco.mjtCamera.mjCAMERA_FIXED
        self._default = self._camera.fixedcamid = model.camera(camera).id
        self._model = model
        self._rect = mujoco.MjrRect(0, 0, width, height)
        self._scene = mujoco.MjvScene(model, maxgeom=max(1000, 2 * model.ngeom))
        self._option = mujoco.MjvOption()
        self._gl = mujoco.GLContext(width, height)
        self._gl.make_current()
        self._context = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_150)
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self._context)
        self._context.readDepthMap = mujoco.mjtDepthMap.mjDEPTH_ZEROFAR
        self._rgb = np.empty((height, width, 3), dtype=np.uint8)
        self._depth = np.empty((height, width), dtype=np.float32)

    def render(self, data: mujoco.MjData, camera: str | None = None) -> tuple:
        """Render a camera.

        Args:
            data: the state to draw (poses as of its last kinematics update).
            camera: name of another fixed camera of the model (same size); None = the default.

        Returns:
            (rgb, depth): rgb (H, W, 3) uint8; depth (H, W) float32, metres along the optical
            axis (z-depth), the far plane (vis.map.zfar x extent) where nothing is hit.
        """
        # A camera mounted on a body moves with it: mjv_updateScene reads its pose from data.
        self._camera.fixedcamid = self._default if camera is None else self._model.camera(
            camera).id
        mujoco.mjv_updateScene(self._model, data, self._option, None, self._camera,
                               mujoco.mjtCatBit.mjCAT_ALL, self._scene)
        mujoco.mjr_render(self._rect, self._scene, self._context)
        mujoco.mjr_readPixels(self._rgb, self._depth, self._rect, self._context)
        # Depth buffer (0 at the far plane) -> z-depth, inverting the perspective projection.
        extent = self._model.stat.extent
        near = self._model.vis.map.znear * extent
        far = self._model.vis.map.zfar * extent
        depth = near * far / (near + self._depth.astype(np.float64) * (far - near))
        return np.flipud(self._rgb).copy(), np.flipud(depth).astype(np.float32)

    def close(self) -> None:
        """Free the GL resources (call on the thread that rendered)."""
        if self._context is not None:
            self._context.free()
            self._gl.free()
            self._context = None
