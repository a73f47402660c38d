"""`command`: a program run with arguments (no shell) on every poll, its standard output
read as JSON, Prometheus text or Kubernetes deployments (`kubectl get deployments -o
json`) into series and rows of the components table, and for Kubernetes into changes.

The program is outside input like a server: it runs in a session of its own (its
process group is killed at the timeout, children included, and after it exits), at
most ``max_output`` bytes of its output are read, a failure is one line (a program not
found, a non-zero exit with the last line of its standard error, cleaned and with
secrets redacted), and its output may be anything (not UTF-8, not JSON, hostile JSON).

What becomes what, by ``format``:

- ``json``: ``series`` maps a series name to a JSON pointer (RFC 6901, ``/items/0/ready``)
  to a number; each of ``components`` is a row whose state is at ``component_path``
  (``/components/{name}``): a word (healthy, degraded, down...), true/false (up/down) or an
  object with ``status`` (or ``state``) and a ``message`` (or ``detail``, ``reason``, ``error``).
- ``prometheus``: ``series`` maps a series name to a PromQL selector; the samples it
  selects are summed (a gauge's value: no rates are taken between polls).
- ``kubernetes``: each of ``components`` is a deployment (``name`` or ``namespace/name``),
  healthy when all its desired replicas are available and its Available condition is
  True, degraded while fewer are available or a rollout is under way, unhealthy when none
  is available or its rollout passed its progress deadline. Its revision and images are a
  change reading (``change/<name> deployment``) on every poll. ``series`` maps names to
  JSON pointers into the same document.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import subprocess
from typing import Any, ClassVar, Literal, NamedTuple

from pydantic import Field, field_validator, model_validator

from cockpit.configmodel import SERIES_NAME, SourceBase, listed_once
from cockpit.model import CHANGE_PREFIX, Reading, Status, state_level
from cockpit.signals.sources._base import Source, SourceError, summarize_components
from cockpit.signals.sources._http import _detail, said_state, score

#: bytes of standard error kept (its last line is the error); the rest is read and dropped
STDERR_KEPT = 16 * 1024
#: a document larger than this is parsed on a worker thread, not on the event loop
THREAD_PARSE = 64 * 1024
#: a pointer or a component name taken from the config as it is into a message: not longer
SHOWN = 60


# ---------------------------------------------------------------- JSON pointers


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def pointer_problem(path: str) -> str | None:
    """Why ``path`` is not a JSON pointer (RFC 6901), or None."""
    if path and not path.startswith("/"):
        return f"{path[:SHOWN]!r} is not a JSON pointer: it starts with '/', e.g. \"/status/ready\""
    for token in path.split("/")[1:]:
        rest = token.replace("~0", "").replace("~1", "")
        if "~" in rest:
            return f"{path[:SHOWN]!r}: '~' is written ~0 in a JSON pointer ('/' is ~1)"
    return None


def pointer_token(name: str) -> str:
    """``name`` as one token of a JSON pointer."""
    return name.replace("~", "~0").replace("/", "~1")


def resolve_pointer(doc: Any, path: str) -> Any:
    """What ``path`` (a valid JSON pointer) points to in ``doc``, or MISSING."""
    node = doc
    if not path:
        return node
    for token in path.split("/")[1:]:
        key = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict):
            if key not in node:
                return MISSING
            node = node[key]
        elif isinstance(node, list):
            if not key.isdecimal() or (len(key) > 1 and key[0] == "0") or not key.isascii():
                return MISSING
            i = int(key)
            if i >= len(node):
                return MISSING
            node = node[i]
        else:
            return MISSING
    return node


def number(value: Any) -> float | None:
    """A JSON value as a series' number (null: no data; a string holding a number counts as
    that number). Raises ValueError saying what it is instead."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("true/false, not a number")
    if isinstance(value, dict):
        raise ValueError("an object, not a number")
    if isinstance(value, list):
        raise ValueError("a list, not a number")
    try:
        v = float(value.strip() if isinstance(value, str) else value)
    except ValueError:
        raise ValueError(f"{str(value)[:30]!r}, not a number") from None
    except OverflowError:
        raise ValueError("a number too large") from None
    if not math.isfinite(v):
        raise ValueError(f"{str(value)[:30]!r}, not a finite number")
    return v


class Row(NamedTuple):
    """One reading a poll gives, before it is stamped: a series' number, a component's state
    (``state`` set) or a change (``change`` set: the series is ``change/<where>``)."""

    series: str
    value: float | None = None
    state: str | None = None
    detail: str = ""
    error: str = ""
    change: bool = False


def json_component(value: Any) -> tuple[str, str]:
    """(state, detail) of a component from what the JSON says of it. Raises ValueError."""
    if isinstance(value, dict):
        said = said_state(value.get("status", value.get("state")))
        if said is None:
            raise ValueError("an object without a \"status\" (or \"state\") word")
        return said, _detail(value)
    said = said_state(value)
    if said is None:
        raise ValueError("not a state word, true/false or an object with a \"status\"")
    return said, ""


def json_rows(doc: Any, series: dict[str, str], components: list[str], component_path: str) -> list[Row]:
    """The series and component rows of a JSON document. A value missing or of the wrong
    type is an error reading of its own series; the others are read."""
    out = pointer_series(doc, series)
    for name in components:
        path = component_path.replace("{name}", pointer_token(name))
        value = resolve_pointer(doc, path)
        if value is MISSING:
            out.append(Row(f"component/{name}", error=f"nothing at {_shown(path)} in the output"))
            continue
        try:
            state, detail = json_component(value)
        except ValueError as e:
            out.append(Row(f"component/{name}", error=f"{_shown(path)} is {e}"))
            continue
        out.append(Row(f"component/{name}", score(state), state, detail))
    return out


def pointer_series(doc: Any, series: dict[str, str]) -> list[Row]:
    out = []
    for name, path in series.items():
        value = resolve_pointer(doc, path)
        if value is MISSING:
            out.append(Row(name, error=f"{name}: nothing at {_shown(path)} in the output"))
            continue
        try:
            v = number(value)
        except ValueError as e:
            out.append(Row(name, error=f"{name}: {_shown(path)} is {e}"))
            continue
        out.append(Row(name, v, detail="" if v is not None else "null"))
    return out


def _shown(path: str) -> str:
    return path if len(path) <= SHOWN else path[:SHOWN - 1] + "…"


# ---------------------------------------------------------------- Prometheus text


def prometheus_rows(text: str, series: dict[str, str]) -> list[Row]:
    """Each series the sum of what its selector selects (checked at load). Raises
    MalformedMetrics naming the first bad line."""
    from cockpit.signals.sources.prom_scrape import parse, parse_selector

    scrape = parse(text)
    out = []
    for name, selector in series.items():
        sel = parse_selector(selector)
        if not scrape.has(sel.name):
            out.append(Row(name, error=f"{name}: metric {sel.name} not found in the output"))
            continue
        picked = sel.select(scrape.samples.get(sel.name, {}))
        if not picked:
            out.append(Row(name, detail=f"{selector[:SHOWN]} selects no series"))
            continue
        out.append(Row(name, sum(picked.values())))
    return out


# ---------------------------------------------------------------- Kubernetes deployments

REVISION = "deployment.kubernetes.io/revision"
CHANGE_CAUSE = "kubernetes.io/change-cause"
NOT_DEPLOYMENTS = "not Kubernetes deployments (expected the JSON of `kubectl get deployments -o json`)"


def _obj(node: Any, key: str) -> dict:
    value = node.get(key) if isinstance(node, dict) else None
    return value if isinstance(value, dict) else {}


def _count(node: dict, key: str, default: int) -> int:
    value = node.get(key, default)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else default


def _text(value: Any, limit: int = 120) -> str:
    return value[:limit] if isinstance(value, str) else ""


def deployments(doc: Any) -> dict[str, dict]:
    """The deployments of ``kubectl get deployments -o json`` (a List) or of one
    deployment's JSON, by ``name`` and by ``namespace/name`` (the first of a name wins).
    Raises SourceError when the document is neither."""
    if isinstance(doc, dict) and isinstance(doc.get("items"), list):
        items = doc["items"]
    elif isinstance(doc, dict) and doc.get("kind") == "Deployment":
        items = [doc]
    else:
        raise SourceError(f"the output is {NOT_DEPLOYMENTS}")
    out: dict[str, dict] = {}
    for item in items:
        if not isinstance(item, dict) or item.get("kind", "Deployment") != "Deployment":
            continue
        meta = _obj(item, "metadata")
        name = meta.get("name")
        if not isinstance(name, str) or not name:
            continue
        namespace = meta.get("namespace")
        if isinstance(namespace, str) and namespace:
            out.setdefault(f"{namespace}/{name}", item)
        out.setdefault(name, item)
    return out


def deployment_state(dep: dict) -> tuple[str, str]:
    """(state, detail) of one deployment: healthy, degraded or unhealthy, with its replica
    counts, revision and the reason when it is not healthy."""
    spec, status = _obj(dep, "spec"), _obj(dep, "status")
    desired = _count(spec, "replicas", 1)
    available = _count(status, "availableReplicas", 0)
    updated = _count(status, "updatedReplicas", 0)
    total = _count(status, "replicas", 0)
    conditions = {c["type"]: c for c in (status.get("conditions") if isinstance(status.get("conditions"), list)
                                         else []) if isinstance(c, dict) and isinstance(c.get("type"), str)}
    avail_cond, progress = conditions.get("Available", {}), conditions.get("Progressing", {})
    generation = _count(_obj(dep, "metadata"), "generation", 0)
    observed = _count(status, "observedGeneration", generation)
    counts = f"{available}/{desired} available"
    revision = _text(_obj(_obj(dep, "metadata"), "annotations").get(REVISION), 20)
    where = f" · revision {revision}" if revision else ""
    if progress.get("reason") == "ProgressDeadlineExceeded":
        why = _text(progress.get("message")) or "progress deadline exceeded"
        return "unhealthy", f"{counts}{where}; rollout stuck: {why}"
    if desired > 0 and available == 0:
        why = _text(avail_cond.get("message"))
        return "unhealthy", f"{counts}{where}" + (f"; {why}" if why else "")
    rolling = observed < generation or updated < desired or total > updated
    if rolling:
        return "degraded", f"{counts}{where}; rollout in progress ({min(updated, desired)}/{desired} updated)"
    if available < desired:
        return "degraded", f"{counts}{where}"
    if avail_cond.get("status") != "True":
        why = _text(avail_cond.get("message"))
        return "degraded", f"{counts}{where}; Available condition is not True" + (f": {why}" if why else "")
    return "healthy", f"{counts}{where}" if desired else f"scaled to 0{where}"


def deployment_change(dep: dict) -> tuple[str, str] | None:
    """(what the deployment is now: its revision and images, who changed it) or None when
    the JSON holds neither a revision nor an image."""
    annotations = _obj(_obj(dep, "metadata"), "annotations")
    revision = _text(annotations.get(REVISION), 20)
    pod = _obj(_obj(_obj(dep, "spec"), "template"), "spec")
    containers = pod.get("containers") if isinstance(pod.get("containers"), list) else []
    images = [_text(c.get("image"), 200) for c in containers if isinstance(c, dict) and _text(c.get("image"))]
    parts = [f"revision {revision}"] if revision else []
    if images:
        parts.append(("image " if len(images) == 1 else "images ") + ", ".join(images[:4])
                     + (f" and {len(images) - 4} more" if len(images) > 4 else ""))
    if not parts:
        return None
    return " · ".join(parts), _text(annotations.get(CHANGE_CAUSE), 200)


def kubernetes_rows(doc: Any, series: dict[str, str], components: list[str]) -> list[Row]:
    """A row and a change for each deployment named in ``components``, and the series."""
    found = deployments(doc)
    out = pointer_series(doc, series)
    for name in components:
        dep = found.get(name)
        if dep is None:
            out.append(Row(f"component/{name}", error=f"no deployment {name} in the output"))
            continue
        state, detail = deployment_state(dep)
        out.append(Row(f"component/{name}", score(state), state, detail))
        change = deployment_change(dep)
        if change is not None:
            out.append(Row(f"{name.rpartition('/')[2]} deployment", state=change[0], detail=change[1], change=True))
    return out


# ---------------------------------------------------------------- config


def parse_document(out: bytes) -> Any:
    """The JSON document a command printed. Raises SourceError saying what is wrong."""
    if not out.strip():
        raise SourceError("the command printed nothing")
    try:
        return json.loads(out)
    except UnicodeDecodeError:
        raise SourceError("the output is not UTF-8 text") from None
    except RecursionError:
        raise SourceError("the output is not JSON: nested too deeply") from None
    except ValueError as e:
        raise SourceError(f"the output is not JSON: {getattr(e, 'msg', e)} at line {getattr(e, 'lineno', '?')} "
                          f"column {getattr(e, 'colno', '?')}") from None


def parse_output(cfg: Any, out: bytes) -> list[Row]:
    """What ``out`` says, read as ``cfg.format`` says. Raises SourceError."""
    if cfg.format == "prometheus":
        try:
            text = out.decode("utf-8")
        except UnicodeDecodeError:
            raise SourceError("malformed metrics: the output is not UTF-8 text") from None
        return prometheus_rows(text, cfg.series)
    doc = parse_document(out)
    if cfg.format == "kubernetes":
        return kubernetes_rows(doc, cfg.series, cfg.components)
    return json_rows(doc, cfg.series, cfg.components, cfg.component_path)


class CommandSource(SourceBase):
    """A program run on every poll (no shell), e.g. `kubectl get deployments -o json` or a script a
    team already has; its output read as JSON, Prometheus text or Kubernetes deployments into
    series and component rows (and, for Kubernetes, each deployment's revision and images as a
    change). A non-zero exit is an error with the last line of its standard error."""

    kind: Literal["command"]
    argv: list[str] = Field(min_length=1, description='Program and arguments, no shell, e.g. ["kubectl", "get", '
                            '"deployments", "-n", "app", "-o", "json"]; the program is looked up in PATH. An '
                            "argument may be env:NAME (read when run, redacted from the output).")
    env: dict[str, str] = Field(default_factory=dict, description="Extra environment; secret values as env:NAME.")
    cwd: str | None = Field(None, description="Working directory (default: the cockpit's).")
    format: Literal["json", "prometheus", "kubernetes"] = Field(
        "json", description="How the output is read: json (series at JSON pointers, components at "
        "component_path), prometheus (the text format; series are selectors, summed) or kubernetes (the JSON of "
        "`kubectl get deployments -o json`; components are deployments, each one's revision and images a change).")
    series: dict[str, str] = Field(
        default_factory=dict, description="Series name -> where its number is: a JSON pointer such as "
        '"/status/readyReplicas" (json, kubernetes; a number or a string holding one, null is no data) or a '
        "PromQL selector whose samples are summed (prometheus).")
    components: list[str] = Field(
        default_factory=list, description="Rows of the components table: for json each is looked up at "
        "component_path; for kubernetes each is a deployment's name (or namespace/name).")
    component_path: str = Field(
        "/components/{name}", description="json: JSON pointer to a component's state, {name} its name: a word "
        "(healthy, degraded, down...), true/false, or an object with status (or state) and message.")
    max_output: int = Field(4 * 1024 * 1024, ge=1024, le=64 * 1024 * 1024,
                            description="Most bytes of output read; a larger output is an error (and the "
                            "command is stopped).")

    feeds: ClassVar[str] = "components"

    @field_validator("argv")
    @classmethod
    def _argv(cls, v: list[str]) -> list[str]:
        from cockpit.programs import check_refs

        if not v[0].strip():
            raise ValueError("the program (argv[0]) is empty")
        if any("\x00" in a for a in v):
            raise ValueError("an argument cannot hold a NUL character")
        check_refs(v)
        return v

    @field_validator("env")
    @classmethod
    def _env(cls, v: dict[str, str]) -> dict[str, str]:
        from cockpit.programs import check_refs
        from cockpit.safetext import SENSITIVE_HEADER, is_secret_ref

        check_refs(v)
        for name, value in v.items():
            if SENSITIVE_HEADER.search(name) and not is_secret_ref(value):
                raise ValueError(f"env {name!r} looks secret: write it as \"env:NAME\" and export NAME")
        return v

    @field_validator("series")
    @classmethod
    def _series_names(cls, v: dict[str, str]) -> dict[str, str]:
        bad = [n for n in v if not SERIES_NAME.fullmatch(n)]
        if bad:
            raise ValueError(f"series names are lower_case_with_underscores: {', '.join(bad)}")
        return v

    @field_validator("components")
    @classmethod
    def _components(cls, v: list[str]) -> list[str]:
        listed_once(v)
        if any(not c.strip() for c in v):
            raise ValueError("a component name is empty")
        return v

    @field_validator("component_path")
    @classmethod
    def _component_path(cls, v: str) -> str:
        if "{name}" not in v:
            raise ValueError("must contain {name}, replaced by each component's name, e.g. \"/components/{name}\"")
        problem = pointer_problem(v.replace("{name}", "x"))
        if problem:
            raise ValueError(problem)
        return v

    @model_validator(mode="after")
    def _what_is_read(self):
        from cockpit.signals.sources.prom_scrape import parse_selector

        problems = []
        if not self.series and not self.components:
            problems.append("series: nothing to read; set series (numbers), components (rows) or both")
        if self.format == "prometheus":
            if self.components:
                problems.append("components: Prometheus text gives series only; rows come from format "
                                "\"json\" or \"kubernetes\"")
            for name, selector in self.series.items():
                try:
                    parse_selector(selector)
                except ValueError as e:
                    problems.append(f"series.{name}: {e}")
        else:
            for name, path in self.series.items():
                problem = pointer_problem(path)
                if problem:
                    problems.append(f"series.{name}: {problem}")
        if self.format != "json" and "component_path" in self.model_fields_set:
            problems.append(f"component_path: only for format \"json\" (this source reads {self.format!r})")
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def series_names(self) -> list[str]:
        return [f"component/{c}" for c in self.components] + list(self.series)


# ---------------------------------------------------------------- running it


class Ran(NamedTuple):
    returncode: int
    stdout: bytes
    stderr: bytes  # its last STDERR_KEPT bytes


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


async def run_capped(argv: list[str], env: dict[str, str] | None, cwd: str | None, timeout: float,
                     limit: int) -> Ran:
    """Run ``argv`` in a session of its own without blocking the event loop; at most
    ``limit`` bytes of its output are read. At ``timeout``, when the output is too large,
    or when the caller gives up (cancellation), its whole process group is killed; so is
    what is left of it once it has exited. Raises SourceError with one line."""
    from cockpit.programs import start_problem

    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd,
            start_new_session=True)
    except OSError as e:
        raise SourceError(start_problem(e, argv[0])) from None
    assert proc.stdout is not None and proc.stderr is not None
    out, err = bytearray(), bytearray()

    async def read_out() -> None:
        while chunk := await proc.stdout.read(64 * 1024):
            out.extend(chunk)
            if len(out) > limit:
                raise SourceError(f"output larger than {_size(limit)}; refusing to read it (max_output)")

    async def read_err() -> None:
        while chunk := await proc.stderr.read(64 * 1024):
            err.extend(chunk)
            del err[:-STDERR_KEPT]

    readers = [asyncio.ensure_future(read_out()), asyncio.ensure_future(read_err())]
    try:
        async with asyncio.timeout(timeout):
            # the output ends when every process holding it has ended (a child too)
            await asyncio.gather(*readers)
            await proc.wait()
    except TimeoutError:
        raise SourceError(f"timed out after {timeout:g}s; the command was killed") from None
    finally:
        _kill_group(proc.pid)  # at the timeout, on an error, and what it left running
        for task in readers:
            task.cancel()
        if proc.returncode is None:
            try:
                await asyncio.shield(proc.wait())
            except asyncio.CancelledError:
                pass
        # its pipes closed now, not when the event loop next gets round to it (it may be closing)
        transport = getattr(proc, "_transport", None)
        if transport is not None:
            transport.close()
    return Ran(proc.returncode or 0, bytes(out), bytes(err))


def _size(limit: int) -> str:
    return f"{limit // (1024 * 1024)} MiB" if limit % (1024 * 1024) == 0 else f"{limit // 1024} KiB"


def last_line(stderr: bytes) -> str:
    """The last line of standard error that says something, cleaned (one line, at most 200
    characters, secrets redacted)."""
    from cockpit.safetext import clean

    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    return clean(lines[-1], limit=200) if lines else ""


def exit_error(returncode: int, stderr: bytes) -> str:
    """One line for a command that did not exit 0."""
    if returncode < 0:
        try:
            what = f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            what = f"killed by signal {-returncode}"
    else:
        what = f"exit {returncode}"
    said = last_line(stderr)
    return f"{what}: {said}" if said else f"{what} (nothing on standard error)"


class Command(Source):
    """Run the command, read its output."""

    kind = "command"
    #: seconds past the command's own timeout the poller waits (killing it and saying so)
    GRACE = 2.0

    @property
    def deadline(self) -> float:
        return self.timeout + self.GRACE

    async def fetch(self) -> list[Reading]:
        from cockpit.programs import cwd_problem, resolve_argv, resolve_env
        from cockpit.safetext import SecretError

        cfg = self.cfg
        where = f"sources.{cfg.name}"
        try:
            argv = resolve_argv(cfg.argv, f"{where}.argv")
            env = resolve_env(cfg.env, f"{where}.env")
        except SecretError as e:
            raise SourceError(str(e)) from None
        problem = cwd_problem(cfg.cwd)
        if problem:
            raise SourceError(problem)
        ran = await run_capped(argv, env, cfg.cwd, cfg.timeout, cfg.max_output)
        if ran.returncode != 0:
            raise SourceError(exit_error(ran.returncode, ran.stderr))
        as_of = self.ctx.clock.monotonic()
        if len(ran.stdout) > THREAD_PARSE:
            rows = await asyncio.to_thread(parse_output, cfg, ran.stdout)
        else:
            rows = parse_output(cfg, ran.stdout)
        return [self._reading(r, as_of) for r in rows]

    def _reading(self, row: Row, as_of: float) -> Reading:
        if row.change:
            return self.change(row.series, row.state or "", by=row.detail, as_of=as_of)
        if row.error:
            return self.reading(row.series, None, status=Status.ERROR, error=row.error, as_of=as_of)
        return self.reading(row.series, row.value, state=row.state, detail=row.detail, as_of=as_of)


def summarize(readings: list[Reading]) -> tuple[bool, str]:
    """`cockpit check`: the rows (how many healthy, which failed), every series' number, and
    how many deployments' revisions it follows."""
    from cockpit.signals.check import summarize_series

    rows, numbers, changes = [], [], []
    for r in readings:
        if not r.history:
            (rows if r.series.startswith("component/") else changes if r.series.startswith(CHANGE_PREFIX)
             else numbers).append(r)
    ok, parts = True, []
    if rows:
        ok, text = summarize_components(rows)
        bad = [r for r in rows if r.ok and state_level(r.state) > 0]
        if bad and len(rows) > 1:
            text += " (" + "; ".join(f"{r.series.removeprefix('component/')} {r.state}" for r in bad) + ")"
        parts.append(text)
    if numbers:
        numbers_ok, text = summarize_series(numbers)
        ok = ok and numbers_ok
        parts.append(text)
    if changes:
        parts.append("; ".join(f"{r.series.removeprefix(CHANGE_PREFIX)} {r.state}" for r in changes[:3]))
    return ok, ", ".join(parts) if parts else "no readings"


CONFIG = CommandSource
SOURCE = Command
