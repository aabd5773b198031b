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

"""Substitutions of the launch-file subset: `$(var)`, `$(env)`, `$(find-pkg-share)`, `$(dirname)`.

Where it fits: `launch_file.py` evaluates actions and calls `text` on every attribute; this
module parses a string into literal parts and substitutions and evaluates them in a `Context`
(the current file and the launch configurations). Semantics: see launch_file.py.
"""

from dataclasses import dataclass
import os
from pathlib import Path
import re

from vla_nodes.ros.launch_schema import Problem

PACKAGE = 'vla_nodes'
_IDENTIFIER = re.compile(r'[A-Za-z][A-Za-z0-9_-]*')


@dataclass
class Context:
    """Where evaluation stands: the current file and the launch configurations."""

    file: Path
    configs: dict


@dataclass(frozen=True)
class _Sub:
    """A parsed `$(name arg ...)`; each argument is a list of text and nested `_Sub` parts."""

    name: str
    args: tuple


def parse_template(text: str) -> list:
    """Split `text` into literal strings and `_Sub`s (launch's substitution grammar)."""
    parts, buf, i = [], '', 0
    while i < len(text):
        if text.startswith('$(', i):
            parts += [buf] if buf else []
            sub, i = _parse_sub(text, i)
            parts.append(sub)
            buf = ''
        else:
            buf += text[i]
            i += 1
    return parts + ([buf] if buf else [])


def _parse_sub(text: str, i: int) -> tuple:
    """Parse the substitution starting at text[i] == '$'; return it and the index after ')'."""
    match = _IDENTIFIER.match(text, i + 2)
    if match is None:
        raise Problem(f'bad substitution in {text!r}: expected a name after "$("')
    name, i, args = match.group(), match.end(), []
    while i < len(text) and text[i] != ')':
        if text[i] != ' ':
            raise Problem(f'bad substitution in {text!r} at {text[i:]!r}')
        arg, i = _parse_argument(text, i + 1)
        args.append(arg)
    if i >= len(text):
        raise Problem(f'unclosed "$(" in {text!r}')
    return _Sub(name, tuple(args)), i + 1


def _parse_argument(text: str, i: int) -> tuple:
    """One substitution argument (optionally quoted); return its parts and the next index."""
    quote = text[i] if i < len(text) and text[i] in '\'"' else None
    parts, buf, i = [], '', i + (quote is not None)
    while i < len(text):
        if quote and text[i] == quote:
            return parts + ([buf] if buf else []), i + 1
        if not quote and text[i] in ' )':
            break
        if text.startswith('$(', i):
            parts += [buf] if buf else []
            sub, i = _parse_sub(text, i)
            parts.append(sub)
            buf = ''
            continue
        buf += text[i]
        i += 1
    if quote:
        raise Problem(f'unclosed quote in {text!r}')
    return parts + ([buf] if buf else []), i


def evaluate(parts: list, ctx: Context) -> str:
    return ''.join(p if isinstance(p, str) else _substitute(p, ctx) for p in parts)


def _substitute(sub: _Sub, ctx: Context) -> str:
    args = [evaluate(a, ctx) for a in sub.args]
    count = {'var': (1,), 'env': (1, 2), 'find-pkg-share': (1,), 'dirname': (0,)}.get(sub.name)
    if count is None:
        raise Problem(f'unknown substitution $({sub.name}); vla-launch supports var, env, '
                      f'find-pkg-share and dirname')
    if len(args) not in count:
        raise Problem(f'$({sub.name}) takes {" or ".join(map(str, count))} argument(s), got '
                      f'{len(args)}')
    if sub.name == 'var':
        if args[0] not in ctx.configs:
            raise Problem(f"launch configuration '{args[0]}' is not set (declare it with an "
                          f'arg or let before using $(var {args[0]}))')
        return ctx.configs[args[0]]
    if sub.name == 'env':
        value = os.environ.get(args[0], args[1] if len(args) == 2 else None)
        if value is None:
            raise Problem(f"environment variable '{args[0]}' is not set and $(env) has no "
                          f'default')
        return value
    if sub.name == 'dirname':
        return str(ctx.file.parent)
    return str(package_share(args[0]))


def package_share(package: str) -> Path:
    if package != PACKAGE:
        raise Problem(f"$(find-pkg-share {package}): only '{PACKAGE}' is available without "
                      f'ROS; run files using other packages with ros2 launch')
    from vla_nodes import paths
    try:
        return paths.package_share()
    except FileNotFoundError as err:
        raise Problem(str(err)) from None


def resolve(value: str, ctx: Context) -> str:
    return evaluate(parse_template(value), ctx)


def resolve_optional(value, ctx: Context) -> str | None:
    return None if value is None else resolve(value, ctx)
