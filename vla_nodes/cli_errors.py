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
