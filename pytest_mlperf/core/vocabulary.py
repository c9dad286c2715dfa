"""The words every part of the plugin shares: scenario, mode, profile.

A leaf module: it imports nothing of the package (nor loadgen), so options, the marker, backends,
reports and loadgen's bridge can all use it without importing each other.
"""

from __future__ import annotations

import enum


class Scenario(enum.Enum):
    OFFLINE = "Offline"
    SERVER = "Server"
    SINGLE_STREAM = "SingleStream"
    INTERACTIVE = "Interactive"

    @property
    def loadgen_name(self) -> str:
        """Interactive is loadgen's Server scenario with the ``-interactive`` model limits."""
        return "Server" if self is Scenario.INTERACTIVE else self.value

    @property
    def streaming(self) -> bool:
        """Scenarios that measure TTFT/TPOT need the first token of every query."""
        return self is not Scenario.OFFLINE

    @classmethod
    def parse(cls, value: str | Scenario) -> Scenario:
        """``"server"``, ``"Server"`` or ``Scenario.SERVER`` -> ``Scenario.SERVER``; a
        ValueError listing the valid names otherwise."""
        return _parse(cls, value)


class Mode(enum.Enum):
    PERFORMANCE = "performance"
    ACCURACY = "accuracy"
    BOTH = "both"

    def runs(self) -> tuple[Mode, ...]:
        return (Mode.PERFORMANCE, Mode.ACCURACY) if self is Mode.BOTH else (self,)

    @classmethod
    def parse(cls, value: str | Mode) -> Mode:
        return _parse(cls, value)


class Profile(enum.Enum):
    """``quick``: CI-sized runs over the data set once; ``official``: mlperf.conf durations."""

    QUICK = "quick"
    OFFICIAL = "official"

    @classmethod
    def parse(cls, value: str | Profile) -> Profile:
        return _parse(cls, value)


def _parse(kind: type[enum.Enum], value: object) -> enum.Enum:  # type: ignore[type-arg]
    if isinstance(value, kind):
        return value
    if isinstance(value, str):
        for member in kind:
            if member.value.lower() == value.strip().lower():
                return member
    raise ValueError(f"{value!r} is not one of " + ", ".join(m.value for m in kind))
