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

"""ChunkRelease in lock-step: a chunk due while the worker still runs a dropped one."""

import threading

from vla_nodes.nodes.policy_release import ChunkRelease


def test_a_due_chunk_queued_behind_a_dropped_inference_is_waited_for_not_cancelled():
    unblock, published = threading.Event(), []

    def infer(obs, stamp_ns):
        if obs == 'old':  # the previous episode's model call, still running
            unblock.wait(5)
        return obs, stamp_ns

    release = ChunkRelease(None, infer, lambda obs, stamp: published.append(obs), delay_s=0.0)
    try:
        release._delay_ns = 10**12  # held: released by drop() at the episode start
        release._pending = release._worker.submit(infer, 'old', 0)
        assert release.drop()  # a new episode
        release._delay_ns = 0  # due at once: released while 'new' waits behind 'old'
        threading.Timer(0.2, unblock.set).start()
        release.submit(('new', 5), now_ns=5)
        assert published == ['new'] and not release.busy
    finally:
        release.shutdown()
