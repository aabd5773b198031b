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

"""Orchestration: jobs that run a graph of nodes in this process and talk to it on the wire.

Where it fits: the nodes (`nodes/`) know nothing of these jobs; the jobs know the nodes only by
their topics, services and parameters (contract.py), never by their objects. Every graph starts
on the one in-process runner, `ros.launch.Graph` (also `vla-launch`'s).

- episodes.py   the graph with a control node; sim episodes: reset, status, result, clock
- record.py     vla-record: recorder control (interactive) and scripted demos in simulation
- evaluate.py   vla-eval: closed-loop evaluation of policies on held-out sim episodes
- pipeline.py   vla-main: record -> export -> train -> evaluate, the main job
- demo.py       vla-demo: the simulated robot end to end in one command
"""
