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

"""The one path from a bad input to what a command-line tool prints: one line, exit code 1.

Every CLI runs its body through `run_cli`; modules raise an `InputError` subclass (BagError,
LaunchError) whose message names the file and says what to do. Anything else is a bug and keeps
its traceback.
"""

import sys
from typing import Callable


class InputError(Exception):
    """Input a tool cannot use (a damaged bag, a bad launch file); the message says what to do."""


def one_line(text) -> str:
    """`text` (or an exception) on one line: messages quote parsers that span several."""
    return ' '.join(str(text).split())


def run_cli(prog: str, body: Callable[[], int], errors: tuple = ()) -> int:
    """body(); an InputError, OSError or one of `errors` becomes `prog: error: ...` and 1."""
    try:
        return body()
    except (InputError, OSError, *errors) as err:
        print(f'{prog}: error: {one_line(err)}', file=sys.stderr)
        return 1
