"""The registry of step kinds (sqlite-utils ``@migrations()`` style): each module of ``migrate.steps``
declares its ``KIND``, a typed ``Params`` class and registers its ``run`` with :data:`STEP_REGISTRY`.

Kept apart from ``migrate.steps`` and ``migrate.plan`` so that both can import it without a cycle.
Parameters are pydantic models: a saved plan or a journal is input anyone with write access can edit, so
reading one back validates every step's parameters (unknown fields refused).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator, TypeVar

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from .plan import Step
    from .steps.base import StepContext


class StepParams(BaseModel):
    """A step's parameters: what its ``run`` needs besides a fresh read of the world."""

    model_config = ConfigDict(extra="forbid", frozen=True)


Observed = dict[str, Any]
RunStep = Callable[["StepContext", "Step"], Observed]
R = TypeVar("R", bound=RunStep)


@dataclass(frozen=True)
class StepKind:
    kind: str
    params: type[StepParams]
    run: RunStep


class StepRegistry:
    """Step kinds by name; registering a kind twice raises (one module per kind)."""

    def __init__(self) -> None:
        self._kinds: dict[str, StepKind] = {}

    def register(self, kind: str, params: type[StepParams]) -> Callable[[R], R]:
        def decorate(run: R) -> R:
            if kind in self._kinds:
                raise ValueError(f"step kind '{kind}' is registered twice")
            self._kinds[kind] = StepKind(kind, params, run)
            return run

        return decorate

    def get(self, kind: str) -> StepKind:
        return self._kinds[kind]

    def __contains__(self, kind: object) -> bool:
        return kind in self._kinds

    def __iter__(self) -> Iterator[str]:
        return iter(self._kinds)

    def __len__(self) -> int:
        return len(self._kinds)


STEP_REGISTRY = StepRegistry()
register = STEP_REGISTRY.register


def step_registry() -> StepRegistry:
    """The registry with every built-in step registered (importing ``migrate.steps`` registers them)."""
    from . import steps  # noqa: F401  (registers the built-in kinds)

    return STEP_REGISTRY
