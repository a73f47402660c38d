"""Scenario drills: the simulator runs a scripted fault and reacts to the trainee's
actions (a rollback clears a bad deploy, scaling out drains an exhausted pool,
emergency mode stops a cost runaway or a throttled dependency).

A scenario is a TOML file (teams write their own; the built-ins below are examples)::

    [scenario]
    name = "bad-deploy"
    description = "v1.5.0 lands with 5xx on /api (seed 001)"
    seed = 7                      # the simulator's random seed
    severity = "P1"               # the severity a responder should set

    [targets]                     # seconds after the first fault starts
    acknowledge = 120
    severity = 180
    mitigate = 300

    [[faults]]
    kind = "bad_deploy"           # one of cockpit.drill.simulator.FAULT_KINDS
    at = 20                       # seconds after the drill starts
    version = "v1.5.0"

    [fixes]                       # which action (by key) clears which fault
    bad_deploy = ["r"]

The actions a scenario drill runs are the demo's (e, r, s, b), applied to the
simulator in the same process by ``SimulatorExecutor``: never over the network,
never a real executor.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cockpit.drill.simulator import FAULT_KINDS, Fault

ACTION_KEYS = {"e": "Emergency mode", "r": "Rollback", "s": "Scale out", "b": "Restore backup"}


class ScenarioError(Exception):
    """A scenario that cannot be used, said in one line naming the file."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScenarioInfo(_Model):
    name: str = Field(min_length=1, max_length=60)
    description: str = Field(min_length=1, max_length=200)
    seed: int = 7
    severity: Literal["P0", "P1", "P2", "P3"]


class Targets(_Model):
    acknowledge: float = Field(300.0, gt=0)
    severity: float = Field(300.0, gt=0)
    mitigate: float = Field(900.0, gt=0)
    update_every: float | None = Field(None, gt=0, description="Seconds between status updates, if they count.")


class FaultSpec(_Model):
    kind: str
    at: float = Field(ge=0)
    component: str | None = None
    version: str | None = None

    @field_validator("kind")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in FAULT_KINDS:
            raise ValueError(f"unknown fault {v!r}; one of {', '.join(FAULT_KINDS)}")
        return v


class Scenario(_Model):
    scenario: ScenarioInfo
    targets: Targets = Field(default_factory=Targets)
    faults: list[FaultSpec] = Field(min_length=1)
    fixes: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("fixes")
    @classmethod
    def _keys(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for fault, keys in v.items():
            if fault not in FAULT_KINDS:
                raise ValueError(f"fixes: unknown fault {fault!r}")
            for k in keys:
                if k not in ACTION_KEYS:
                    raise ValueError(f"fixes.{fault}: {k!r} is not an action key ({', '.join(ACTION_KEYS)})")
        return v

    def sim_faults(self) -> tuple[Fault, ...]:
        return tuple(Fault(f.kind, f.at, f.component, f.version) for f in self.faults)


def _builtin(name: str, description: str, severity: str, faults: str, fixes: str, ack: int = 120,
             sev: int = 180, mitigate: int = 300) -> str:
    return (f'[scenario]\nname = "{name}"\ndescription = "{description}"\nseed = 7\nseverity = "{severity}"\n\n'
            f"[targets]\nacknowledge = {ack}\nseverity = {sev}\nmitigate = {mitigate}\n\n{faults}\n[fixes]\n{fixes}\n")


BUILTIN: dict[str, str] = {
    "bad-deploy": _builtin("bad-deploy", "v1.5.0 lands with 5xx on /api and latency climbing (seed 001)", "P1",
                           '[[faults]]\nkind = "bad_deploy"\nat = 20\nversion = "v1.5.0"\n', 'bad_deploy = ["r"]'),
    "db-exhaustion": _builtin("db-exhaustion", "the database connection pool runs dry under load (seeds 001, 004)",
                              "P1", '[[faults]]\nkind = "db_exhaustion"\nat = 20\n', 'db_exhaustion = ["s"]'),
    "cost-runaway": _builtin("cost-runaway", "token spend runs away past the $100/day threshold (seed 000)", "P2",
                             '[[faults]]\nkind = "cost_runaway"\nat = 20\n', 'cost_runaway = ["e"]', mitigate=600),
    "throttling": _builtin("throttling", "Bedrock throttles the model calls: errors and slow answers (seed 000)",
                           "P1", '[[faults]]\nkind = "throttling"\nat = 20\n', 'throttling = ["e"]'),
    "component-failure": _builtin("component-failure", "the ai-gateway component fails; support mode needed "
                                  "(seed 002)", "P2",
                                  '[[faults]]\nkind = "component_failure"\nat = 20\ncomponent = "ai-gateway"\n',
                                  'component_failure = ["e"]'),
}


def parse(text: str, where: str) -> Scenario:
    try:
        return Scenario.model_validate(tomllib.loads(text))
    except tomllib.TOMLDecodeError as e:
        raise ScenarioError(f"{where}: not valid TOML: {e}") from None
    except ValidationError as e:
        first = e.errors()[0]
        place = ".".join(str(p) for p in first["loc"])
        raise ScenarioError(f"{where}: {place}: {first['msg']}") from None


def load(name_or_path: str) -> Scenario:
    """A built-in scenario by name, or a scenario file."""
    if name_or_path in BUILTIN:
        return parse(BUILTIN[name_or_path], f"built-in scenario {name_or_path}")
    path = Path(name_or_path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        close = closest(name_or_path)
        hint = f"did you mean {' or '.join(close)}?" if close else f"built-ins: {', '.join(BUILTIN)}"
        raise ScenarioError(f"{path}: cannot read the scenario: {e.strerror or e} ({hint})") from None
    return parse(text, str(path))


def listing() -> list[tuple[str, str]]:
    return [(name, parse(text, name).scenario.description) for name, text in BUILTIN.items()]


def is_scenario(arg: str) -> bool:
    """Whether ``cockpit drill ARG`` names a scenario (a built-in or a .toml) rather than a tape."""
    return arg in BUILTIN or arg.endswith(".toml")


def closest(arg: str) -> list[str]:
    """The built-in scenarios ``arg`` may have meant (a typo, _ for -), closest first."""
    import difflib

    plain = arg.strip().lower().replace("_", "-").replace(" ", "-")
    return difflib.get_close_matches(plain, list(BUILTIN), n=3, cutoff=0.6)
