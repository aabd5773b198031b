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

"""A LeRobot v3.0 dataset folder written episode by episode, with depth and intrinsics.

Where it fits: `record/export.py` (vla-export) feeds it the rows and frames it sampled from bags;
`train/data.py` reads the folder back, and so does LeRobot's own `LeRobotDataset`. It knows the
v3 layout (with `lerobot_depth.py`, LeRobot's depth convention), and nothing about ROS or bags.
These two modules are the one place for the format's paths and keys: the reader imports them.

Layout (`codebase_version` 'v3.0'; every episode goes to chunk-000/file-000, with no size-based
file rotation yet):
    meta/info.json      schema, fps, path templates, totals; a video feature's `info` holds what
                        LeRobot's writer puts there (`video.*`, `is_depth_map`, and for depth
                        `depth_unit` and the quantisation `video.depth_min/depth_max/shift/
                        use_log`) plus what the caller adds (the exporter: `intrinsics`, K 3x3
                        px, D, size; `calibration`, camera to base)
    meta/stats.json     per feature: min, max, mean, std, count, q01, q10, q50, q90, q99 (colour
                        per channel in [0, 1]; depth in `depth_unit` (mm) over all pixels, 0 =
                        invalid included, as LeRobot computes it; shape (C, 1, 1))
    meta/tasks.parquet  task (the pandas index) -> task_index
    meta/episodes/chunk-000/file-000.parquet  per episode: length, tasks, row and video ranges,
                        per-episode stats, and the caller's extra columns
    data/chunk-000/file-000.parquet  the caller's columns (vectors as fixed-size float32 lists)
                        plus timestamp = frame_index / fps, frame_index, episode_index, index,
                        task_index
    videos/<key>/chunk-000/file-000.mp4  one frame per row. Colour (H, W, 3) uint8: H.264
                        yuv420p. Depth (H, W) uint16 mm (0 = invalid), by `depth_codec`:
        'hevc12-log' (default): LeRobot's native depth video, so LeRobot reads it. Millimetres
                        are log-quantised to 12-bit codes (DepthQuantizer, the formula of
                        lerobot/datasets/depth_utils.py) and stored losslessly as HEVC gray12le
                        (x265 lossless=1). depth_min is 0 m, so code 0 is exactly the sensor's
                        0 = invalid; the rounding error is at most half a code step, which grows
                        with depth (0.74 mm at 1 m, 1.4 mm at 5 m); depth beyond depth_max
                        (10 m) saturates there.
        'ffv1-mm16': lossless 16-bit millimetres as FFV1 gray16le. vla-train reads it; LeRobot
                        0.6.1 cannot (`Invalid vcodec 'ffv1'`), which its info says.
The folder is built in OUTPUT.partial and renamed by `finish()`, so an interrupted write never
leaves a folder that looks complete. Needs pyarrow and av: pip install 'vla_nodes[data]'.
"""

from fractions import Fraction
import importlib
import json
from pathlib import Path
import shutil
from typing import Any, Sequence

import numpy as np

from vla_nodes.record.lerobot_depth import (DEPTH_CODECS, DEPTH_FFV1_MM16, DEPTH_HEVC12,
                                            DEPTH_UNIT, EXPORT_DEPTH, FFV1_NOTE, IS_DEPTH_MAP)

CODEBASE_VERSION = 'v3.0'
CHUNK_FILE = 'chunk-{chunk_index:03d}/file-{file_index:03d}'
DATA_PATH = 'data/' + CHUNK_FILE + '.parquet'
VIDEO_PATH = 'videos/{video_key}/' + CHUNK_FILE + '.mp4'
EPISODES_PATH = 'meta/episodes/' + CHUNK_FILE + '.parquet'
DATA_GLOB = 'data/*/*.parquet'  # every chunk and file, for the reader
EPISODES_GLOB = 'meta/episodes/*/*.parquet'
META_DIR = 'meta'
INFO_PATH = META_DIR + '/info.json'
TASKS_PATH = META_DIR + '/tasks.parquet'
QUANTILES = {'q01': 0.01, 'q10': 0.10, 'q50': 0.50, 'q90': 0.90, 'q99': 0.99}


class DatasetError(ValueError):
    """A dataset that cannot be written as asked, or read; the message says what to do."""


def require(module: str) -> Any:
    """Import an optional dependency of the `data` extra, or say how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise DatasetError(f'LeRobot datasets need {module}: pip install '
                           f'"vla_nodes[data]" (pyarrow and av)') from None


# --- statistics ---------------------------------------------------------------------------------
def vector_stats(x: np.ndarray) -> dict:
    """min, max, mean, std, count, q01..q99 per column of x (N, D) (quantiles interpolated)."""
    x = np.asarray(x, np.float64)
    stats = {'min': x.min(0), 'max': x.max(0), 'mean': x.mean(0), 'std': x.std(0),
             'count': np.array([len(x)])}
    stats.update({name: np.quantile(x, q, axis=0) for name, q in QUANTILES.items()})
    return {k: v.tolist() for k, v in stats.items()}


def histogram_stats(hist: np.ndarray, scale: float, frames: int) -> dict:
    """Exact stats of integer pixels from per-channel histograms hist (C, B); value = bin * scale.

    Quantiles are the lowest value whose cumulative share reaches q. Values have shape (C, 1, 1),
    as LeRobot stores image stats; count is the number of frames. Empty channels give zeros.
    """
    hist = np.asarray(hist, np.float64)
    values = np.arange(hist.shape[1]) * scale
    total = np.maximum(hist.sum(1), 1)
    mean = hist @ values / total
    seen = hist > 0
    last = hist.shape[1] - 1 - seen[:, ::-1].argmax(1)
    stats = {'min': np.where(seen.any(1), values[seen.argmax(1)], 0.0),
             'max': np.where(seen.any(1), values[last], 0.0), 'mean': mean,
             'std': np.sqrt(np.maximum(hist @ values**2 / total - mean**2, 0.0))}
    cdf = np.cumsum(hist, 1)
    for name, q in QUANTILES.items():
        stats[name] = values[[np.searchsorted(c, q * t) for c, t in zip(cdf, total)]]
    return {**{k: np.reshape(v, (-1, 1, 1)).tolist() for k, v in stats.items()},
            'count': [int(frames)]}


def _histogram(frame: np.ndarray) -> np.ndarray:
    if frame.dtype == np.uint16:  # depth: millimetres, every pixel (0 = invalid included)
        return np.bincount(frame.reshape(-1), minlength=65536)[None, :65536]
    return np.stack([np.bincount(frame[..., c].reshape(-1), minlength=256) for c in range(3)])


# --- files --------------------------------------------------------------------------------------
class _Video:
    """One video file: colour H.264 yuv420p, or depth as `depth_codec` says; GOP 2 (seeking).

    `info` is the feature's info as LeRobot's writer records it (`video.*` from the stream and
    the encoder settings, `is_depth_map`, and for depth `depth_unit` and the quantiser), so
    LeRobot can rebuild the encoder configuration from it when it opens the dataset.
    """

    def __init__(self, path: Path, fps: int, frame: np.ndarray, crf: int,
                 depth_codec: str = DEPTH_HEVC12) -> None:
        av = require('av')
        self.depth = frame.dtype == np.uint16 and frame.ndim == 2
        if not self.depth and not (frame.dtype == np.uint8 and frame.shape[2:] == (3,)):
            raise DatasetError(f'{path.parts[-3]}: frames must be (H, W, 3) uint8 colour or '
                               f'(H, W) uint16 depth in mm; got {frame.dtype} {frame.shape}')
        if depth_codec not in DEPTH_CODECS:
            raise DatasetError(f'unknown depth codec {depth_codec!r}; use one of {DEPTH_CODECS}')
        height, width = frame.shape[:2]
        if not (self.depth and depth_codec == DEPTH_FFV1_MM16) and (width % 2 or height % 2):
            raise DatasetError(f'{path.parts[-3]}: {width}x{height} frames cannot be H.264/HEVC '
                               f'video (width and height must be even); record an even camera '
                               f'resolution')
        self.quantizer = EXPORT_DEPTH if self.depth and depth_codec == DEPTH_HEVC12 else None
        if self.quantizer and min(width, height) < 16:  # x265 refuses smaller pictures
            raise DatasetError(f'{path.parts[-3]}: {width}x{height} depth frames are below the '
                               f'HEVC minimum of 16x16; export them with --depth-codec '
                               f'{DEPTH_FFV1_MM16}')
        if not self.depth:
            codec, encoder, pix_fmt, fmt = 'h264', 'libx264', 'yuv420p', 'rgb24'
            settings = {'g': 2, 'crf': crf, 'preset': 'veryfast', 'extra_options': {}}
        elif self.quantizer:
            # x265's fastest preset: lossless either way, the preset only trades size for time
            codec, encoder, pix_fmt, fmt = 'hevc', 'libx265', 'gray12le', 'gray12le'
            # open-gop=0: x265's default open GOPs start with CRA pictures whose leading
            # frames are dropped when a reader seeks there (LeRobot's and ours seek to each
            # episode's first frame): an episode came back a frame short.
            settings = {'g': 2, 'crf': None, 'preset': 'ultrafast', 'extra_options': {
                'x265-params': 'lossless=1:open-gop=0:log-level=error'}}
        else:
            codec, encoder, pix_fmt, fmt = 'ffv1', 'ffv1', 'gray16le', 'gray16le'
            settings = {'g': None, 'crf': None, 'preset': None, 'extra_options': {}}  # intra
        options = {k: str(v) for k, v in settings.items()
                   if k != 'extra_options' and v is not None}
        path.parent.mkdir(parents=True, exist_ok=True)
        self._container = av.open(str(path), 'w')
        self._stream = self._container.add_stream(encoder, rate=fps,
                                                  options={**options, **settings['extra_options']})
        self._stream.width, self._stream.height = width, height
        self._stream.pix_fmt = pix_fmt
        self._format, self._frame = fmt, av.VideoFrame
        self._time_base = Fraction(1, fps)
        self.frames = 0
        self._closed = False
        self.info = {'video.height': height, 'video.width': width, 'video.codec': codec,
                     'video.pix_fmt': pix_fmt, 'video.fps': fps,
                     'video.channels': 1 if self.depth else 3, 'has_audio': False,
                     **{'video.' + k: v for k, v in settings.items()},
                     'video.fast_decode': 0, 'video.video_backend': 'pyav',
                     IS_DEPTH_MAP: self.depth}
        if self.depth:
            self.info.update({DEPTH_UNIT: 'mm', 'depth.invalid_value': 0})
            self.info.update(self.quantizer.info() if self.quantizer else
                             {'depth.lossless': True, 'note': FFV1_NOTE})

    def add(self, frame: np.ndarray) -> None:
        if self.quantizer:
            frame = self.quantizer.encode_mm(frame)
        picture = self._frame.from_ndarray(frame, format=self._format)
        picture.pts, picture.time_base = self.frames, self._time_base
        for packet in self._stream.encode(picture):
            self._container.mux(packet)
        self.frames += 1

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            for packet in self._stream.encode(None):
                self._container.mux(packet)
            self._container.close()


def _table(columns: dict[str, np.ndarray]) -> Any:
    pa = require('pyarrow')
    arrays = {}
    for name, value in columns.items():
        value = np.asarray(value)
        if value.ndim == 2:  # (N, D) -> fixed-size lists, LeRobot's Sequence(length=D)
            flat = pa.array(value.astype(np.float32).reshape(-1))
            arrays[name] = pa.FixedSizeListArray.from_arrays(flat, value.shape[1])
        else:
            arrays[name] = pa.array(value)
    return pa.table(arrays)


def _tasks_table(tasks: dict[str, int]) -> Any:
    """meta/tasks.parquet as pandas writes it: `task` is the index, `task_index` a column."""
    pa = require('pyarrow')
    table = pa.table({'task_index': pa.array(list(tasks.values()), pa.int64()),
                      'task': pa.array(list(tasks), pa.string())})
    columns = [{'name': name, 'field_name': name, 'pandas_type': kind, 'numpy_type': numpy,
                'metadata': None}
               for name, kind, numpy in (('task_index', 'int64', 'int64'),
                                         ('task', 'unicode', 'object'))]
    pandas = {'index_columns': ['task'], 'column_indexes': [], 'columns': columns,
              'creator': {'library': 'pyarrow', 'version': pa.__version__},
              'pandas_version': '2.2.0'}
    return table.replace_schema_metadata({'pandas': json.dumps(pandas)})


def _write_parquet(table: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    require('pyarrow.parquet').write_table(table, path)


def _feature(value: np.ndarray, names: Sequence[str] | None) -> dict:
    if value.ndim == 2:
        return {'dtype': 'float32', 'shape': [value.shape[1]], 'names': list(names or [])}
    dtype = {'b': 'bool', 'f': 'float32'}.get(value.dtype.kind, 'int64')
    return {'dtype': dtype, 'shape': [1], 'names': None}


# --- the writer ---------------------------------------------------------------------------------
class LeRobotV3Writer:
    """Writes a LeRobot v3.0 dataset: `add_frame` per video frame, `add_episode` per episode.

    Example:
        writer = LeRobotV3Writer(out, fps=30, names={'observation.state': JOINT_NAMES})
        for each episode:
            writer.add_frame('observation.images.color', rgb)   # one per row, in row order
            writer.add_episode({'observation.state': q}, tasks)  # q (N, 7), tasks: N strings
        writer.finish(robot_type='piper', video_info={'observation.images.color': {...}})
    """

    def __init__(self, output: str | Path, fps: int, names: dict | None = None,
                 overwrite: bool = False, crf: int = 23, depth_codec: str = DEPTH_HEVC12) -> None:
        """Check the output folder and start writing into OUTPUT.partial.

        Args:
            output: dataset folder to create.
            fps: frame rate (Hz), an integer as LeRobot stores it.
            names: per vector feature, the names of its dimensions (info.json `names`).
            overwrite: replace an existing dataset (a folder with meta/info.json, or empty).
            crf: H.264 quality of colour videos (lower is better and larger; x264's is 23).
            depth_codec: how depth videos are stored (DEPTH_CODECS; the module docstring).

        Raises:
            DatasetError: output exists and overwrite is False, or it is not a dataset.
        """
        if not (isinstance(fps, int) and fps > 0):
            raise DatasetError(f'fps must be a positive integer (LeRobot stores an int), got '
                               f'{fps!r}')
        if depth_codec not in DEPTH_CODECS:
            raise DatasetError(f'unknown depth codec {depth_codec!r}; use one of {DEPTH_CODECS}')
        self.output, self.fps, self.crf = Path(output), fps, crf
        self.depth_codec = depth_codec
        self._names = dict(names or {})
        if self.output.exists() and not overwrite:
            raise DatasetError(f'{self.output} exists; pass --overwrite to replace it, or '
                               f'choose another output folder')
        if self.output.is_file() or (self.output.exists() and any(self.output.iterdir()) and
                                     not (self.output / INFO_PATH).is_file()):
            raise DatasetError(f'refusing to overwrite {self.output}: it is not a LeRobot '
                               f'dataset (no meta/info.json) and not empty. Choose another '
                               f'output folder.')
        self.root = self.output.with_name(self.output.name + '.partial')
        shutil.rmtree(self.root, ignore_errors=True)  # left by an interrupted write
        self.root.mkdir(parents=True)
        self.episodes: list[dict] = []
        self.tasks: dict[str, int] = {}
        self.frames = 0
        self._videos: dict[str, _Video] = {}
        self._hists: dict[str, np.ndarray] = {}
        self._episode_hists: dict[str, np.ndarray] = {}
        self._columns: dict[str, list] = {}
        self._features: dict[str, dict] = {}
        self._writer = None

    def add_frame(self, key: str, frame: np.ndarray) -> None:
        """Append the next frame of video `key`: (H, W, 3) uint8 RGB or (H, W) uint16 mm."""
        if key not in self._videos:
            path = self.root / VIDEO_PATH.format(video_key=key, chunk_index=0, file_index=0)
            self._videos[key] = _Video(path, self.fps, frame, self.crf, self.depth_codec)
        self._videos[key].add(frame)
        hist = _histogram(frame)
        self._episode_hists[key] = self._episode_hists.get(key, 0) + hist

    def add_episode(self, columns: dict[str, np.ndarray], tasks: Sequence[str],
                    extra: dict | None = None) -> int:
        """Write an episode's rows; every video must have had one frame per row added.

        Args:
            columns: per feature, (N, D) float vectors or (N,) scalars (e.g. a bool flag).
            tasks: N task strings, one per row (task_index is assigned here).
            extra: additional columns of the episode's row in meta/episodes.

        Returns:
            The episode_index.
        """
        n, episode, first = len(tasks), len(self.episodes), self.frames
        counts = {key: video.frames - first for key, video in self._videos.items()}
        if any(count != n for count in counts.values()):
            raise DatasetError(f'episode {episode} has {n} rows but its videos got {counts} '
                               f'frames; add one frame per row to every video')
        for task in tasks:
            self.tasks.setdefault(task, len(self.tasks))
        rows = np.arange(n)
        columns = {**{k: np.asarray(v) for k, v in columns.items()},
                   'timestamp': (rows / self.fps).astype(np.float32), 'frame_index': rows,
                   'episode_index': np.full(n, episode), 'index': first + rows,
                   'task_index': np.array([self.tasks[t] for t in tasks])}
        table = _table(columns)
        if self._writer is None:
            path = self.root / DATA_PATH.format(chunk_index=0, file_index=0)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = require('pyarrow.parquet').ParquetWriter(path, table.schema)
        self._writer.write_table(table)
        stats = {}
        for key, value in columns.items():
            self._features.setdefault(key, _feature(value, self._names.get(key)))
            if value.dtype != bool:
                self._columns.setdefault(key, []).append(value.reshape(n, -1))
                stats[key] = vector_stats(value.reshape(n, -1))
        for key, hist in self._episode_hists.items():
            self._hists[key] = self._hists.get(key, 0) + hist
            stats[key] = self._image_stats(key, hist, n)
        self._episode_hists = {}
        row = {'episode_index': episode, 'tasks': list(dict.fromkeys(tasks)), 'length': n,
               'data/chunk_index': 0, 'data/file_index': 0, 'dataset_from_index': first,
               'dataset_to_index': first + n}
        for key in self._videos:
            row.update({f'videos/{key}/chunk_index': 0, f'videos/{key}/file_index': 0,
                        f'videos/{key}/from_timestamp': first / self.fps,
                        f'videos/{key}/to_timestamp': (first + n) / self.fps})
        row.update({'meta/episodes/chunk_index': 0, 'meta/episodes/file_index': 0})
        row.update({f'stats/{key}/{name}': value for key, feature in stats.items()
                    for name, value in feature.items()})
        self.episodes.append({**row, **(extra or {})})
        self.frames += n
        return episode

    def _image_stats(self, key: str, hist: np.ndarray, frames: int) -> dict:
        scale = 1.0 if self._videos[key].depth else 1 / 255  # depth in its depth_unit, mm
        return histogram_stats(hist, scale, frames)

    def finish(self, robot_type: str | None = None, video_info: dict | None = None,
               meta: dict | None = None) -> Path:
        """Close the files, write meta/ and move the folder into place.

        Args:
            robot_type: info.json robot_type.
            video_info: per video key, entries added to its feature's `info` (intrinsics...).
            meta: extra files for meta/, name -> JSON content (e.g. a sync report).

        Returns:
            The dataset folder.
        """
        self._close()
        if not self.episodes:
            self.abort()
            raise DatasetError('no episodes were added; nothing to write')
        stats = {key: vector_stats(np.concatenate(parts)) for key, parts in self._columns.items()}
        stats.update({key: self._image_stats(key, hist, self.frames)
                      for key, hist in self._hists.items()})
        features = dict(self._features)
        for key, video in self._videos.items():
            features[key] = {'dtype': 'video', 'shape': [video.info['video.height'],
                                                         video.info['video.width'],
                                                         video.info['video.channels']],
                             'names': ['height', 'width', 'channels'],
                             'info': {**video.info, **(video_info or {}).get(key, {})}}
        info = {'codebase_version': CODEBASE_VERSION, 'robot_type': robot_type,
                'total_episodes': len(self.episodes), 'total_frames': self.frames,
                'total_tasks': len(self.tasks), 'chunks_size': 1000,
                'data_files_size_in_mb': 100, 'video_files_size_in_mb': 500, 'fps': self.fps,
                'splits': {'train': f'0:{len(self.episodes)}'}, 'data_path': DATA_PATH,
                'video_path': VIDEO_PATH if self._videos else None, 'features': features}
        files = {'info.json': info, 'stats.json': stats, **(meta or {})}
        for name, content in files.items():
            path = self.root / META_DIR / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(content, indent=2) + '\n', encoding='utf-8')
        _write_parquet(_tasks_table(self.tasks), self.root / TASKS_PATH)
        _write_parquet(require('pyarrow').Table.from_pylist(self.episodes),
                       self.root / EPISODES_PATH.format(chunk_index=0, file_index=0))
        if self.output.exists():
            shutil.rmtree(self.output)
        self.root.rename(self.output)
        return self.output

    def abort(self) -> None:
        """Close the files and delete the partial folder (after an error)."""
        self._close()
        shutil.rmtree(self.root, ignore_errors=True)

    def _close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        for video in self._videos.values():
            video.close()
