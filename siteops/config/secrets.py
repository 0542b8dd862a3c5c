"""Secrets from the environment: `NAME`, or the file named by `NAME_FILE`.

The file form is how compose and Kubernetes mount secrets (`/run/secrets/...`); the plain
variable is for a developer's shell. One rule for every secret the platform reads:

- exactly one of the two may be set: both set is refused (which one wins would be a guess,
  and a stale variable silently overriding a rotated file is the failure we want loud);
- the value is stripped (files end in a newline; `$(cat file)` and copy-paste add blanks);
- a file that cannot be read, or holds nothing but blanks, is refused, as is a blank value;
- an empty variable (`NAME=`, common in compose files) counts as not set.

A refusal names the variable and the file, never the value: the messages reach logs, task
results and `siteops` output. Callers turn `SecretError` into their own error class (a
connector's `AuthError`/`PermanentError`, a CLI failure) so retry classification is theirs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, overload


class SecretError(RuntimeError):
    """A secret is missing or misconfigured; the message never contains the secret."""


def read_secret_file(variable: str, path: Path | str) -> str:
    """The stripped contents of the secret file `path`, which the variable `variable` named."""
    problem = ""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        problem = f"cannot read it: {exc.strerror}"
    except UnicodeDecodeError:
        # The codec's exception holds the file's bytes: raised outside this block, so it is
        # not even chained as __context__ (which error reporters walk).
        problem = "not UTF-8 text"
    if problem:
        raise SecretError(f"{variable} {path}: {problem}")
    secret = text.strip()
    if not secret:
        raise SecretError(f"{variable} {path}: the file is empty")
    return secret


@overload
def read_secret(name: str, *, required: Literal[True], environ: Mapping[str, str] | None = None) -> str: ...


@overload
def read_secret(name: str, *, required: bool = False, environ: Mapping[str, str] | None = None) -> str | None: ...


def read_secret(name: str, *, required: bool = False, environ: Mapping[str, str] | None = None) -> str | None:
    """`name`'s secret from `environ` (default `os.environ`), or None when neither `name` nor
    `name_FILE` is set (a `SecretError` instead when `required`)."""
    env = os.environ if environ is None else environ
    value = env.get(name) or ""
    path = env.get(f"{name}_FILE") or ""
    if value and path:
        raise SecretError(f"both {name} and {name}_FILE ({path}) are set: set only one")
    if path:
        return read_secret_file(f"{name}_FILE", path)
    if value:
        secret = value.strip()
        if not secret:
            raise SecretError(f"{name} is set but blank")
        return secret
    if required:
        raise SecretError(f"{name} (or {name}_FILE) is not set")
    return None
