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
"""Where the nodes' logs go when a long job runs a graph: to a file, not over the progress bars.

A job like vla-main runs hundreds of episodes; every node logging each reset, recorder audit and
feedback check buried the progress bars and the result table. The job's own output (progress,
tables, file paths) is printed; the nodes' log lines go to `<out>/graph.log`, and only errors
also reach the console.
"""

import logging
from pathlib import Path

# ROS 2's console format, as vla_nodes.ros uses when it sets up logging itself.
FORMAT = '[%(levelname)s] [%(created).3f] [%(name)s]: %(message)s'


def node_logs_to(out) -> Path | None:
    """Send log records to `out`/graph.log (INFO and up) and only errors to the console.

    Returns the log file, or None when logging was already set up by the caller (a test, an
    embedding program): then nothing is changed.
    """
    root = logging.getLogger()
    if root.handlers:
        return None
    path = Path(out) / 'graph.log'
    path.parent.mkdir(parents=True, exist_ok=True)
    to_file = logging.FileHandler(path)
    to_file.setLevel(logging.INFO)
    console = logging.StreamHandler()
    console.setLevel(logging.ERROR)
    for handler in (to_file, console):
        handler.setFormatter(logging.Formatter(FORMAT))
        root.addHandler(handler)
    root.setLevel(logging.INFO)
    return path
