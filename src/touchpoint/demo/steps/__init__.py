"""The demo's steps: one module per capability, each running that capability on the demo shop.

A step receives the loaded warehouse, the simulator's ground truth and the demo folder, and returns a
JSON-able summary; its ``headline`` turns that summary into the one line ``touchpoint demo`` prints.
:data:`STEPS` is the registry, in the order the steps run. The domains know nothing of the demo: the
steps call the library as a user would. A new capability adds a module here and one entry to ``STEPS``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from touchpoint.demo.steps import audiences, automations, experiments, identity, journeys, kpis, mmm, plan, predict
from touchpoint.warehouse import Warehouse


@dataclass(frozen=True)
class Step:
    """One capability's demo: ``run`` does the work, ``headline`` sums its result up in one line."""

    name: str
    run: Callable[[Warehouse, dict[str, Any], Path], dict[str, Any]]
    headline: Callable[[dict[str, Any]], str]


STEPS: tuple[Step, ...] = (
    Step("identity", identity.run_demo, identity.headline),
    Step("journeys", journeys.run_demo, journeys.headline),
    Step("predict", predict.run_demo, predict.headline),
    Step("kpis", kpis.run_demo, kpis.headline),
    Step("audiences", audiences.run_demo, audiences.headline),
    Step("automations", automations.run_demo, automations.headline),
    Step("experiments", experiments.run_demo, experiments.headline),
    Step("mmm", mmm.run_demo, mmm.headline),
    Step("calibration", mmm.run_calibration_demo, mmm.calibration_headline),  # one more fit (see docs/mmm.md)
    Step("plan", plan.run_demo, plan.headline),
)

BY_NAME: dict[str, Step] = {step.name: step for step in STEPS}
