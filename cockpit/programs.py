"""Running a program the config names (the `command` action and the `command` source):
an argv, never through a shell, its environment with ``env:NAME`` references resolved at
the moment of use (their values join the secret registry, so they are redacted from
whatever the program prints), and one line for a program that cannot be started."""

from __future__ import annotations

import os

from cockpit.safetext import is_secret_ref, resolve_secret


def check_refs(values: list[str] | dict[str, str]) -> None:
    """Config check: a value starting with "env:" must be a valid ``env:NAME`` reference
    (a typo would otherwise be passed to the program as it is)."""
    items = [(f"[{i}]", v) for i, v in enumerate(values)] if isinstance(values, list) else \
        [(repr(k), v) for k, v in values.items()]
    for key, value in items:
        if value.startswith("env:") and not is_secret_ref(value):
            raise ValueError(f"{key}: {value!r} is not a valid env:NAME reference (letters, digits and _)")


def resolve_env(env: dict[str, str], where: str) -> dict[str, str]:
    """The program's environment: the cockpit's own plus ``env`` with its references
    resolved. Raises SecretError naming the variable and where it is referenced."""
    return {**os.environ, **{k: resolve_secret(v, f"{where} {k}") for k, v in env.items()}}


def resolve_argv(argv: list[str], where: str) -> list[str]:
    """``argv`` with each ``env:NAME`` entry replaced by the variable's value. Raises SecretError."""
    return [resolve_secret(a, f"{where}[{i}]") for i, a in enumerate(argv)]


def cwd_problem(cwd: str | None) -> str | None:
    """Why the program cannot be started in ``cwd``, or None."""
    if cwd and not os.path.isdir(cwd):
        return f"the working folder {cwd} does not exist (cwd in the config)"
    return None


def start_problem(exc: OSError, program: str) -> str:
    """One line for a program that could not be started (exec failed)."""
    if isinstance(exc, FileNotFoundError):
        return f"program not found: {program} (check argv and PATH)"
    if isinstance(exc, PermissionError):
        return f"not allowed to run {program} (is it executable?)"
    return f"cannot run {program}: {(exc.strerror or str(exc)).lower()}"
