"""Planning a run before it starts: the resolved preset, the steps, the memory and the time.

One service, with no UI in it, for every place that says what a run will take: the Train tab's
estimate and anything else that plans (the CLI). ``plan.make_plan`` does the maths from plain
inputs; ``inputs`` gathers those inputs from a workspace (the backbone's config.json, the data's
size and token lengths, this machine's devices); ``calibration`` keeps the step times measured by
finished runs so later plans on this machine use them.

The memory number is the worker's own (``studio.training.speed.choose``), so the page shows what
the run will record as its estimate.
"""

from studio.planning.calibration import Calibration, Measurement, measure_run
from studio.planning.inputs import BackboneInfo, DataSize, Machine, backbone_info, data_size, machine, plan_for
from studio.planning.plan import Plan, make_plan

__all__ = ["BackboneInfo", "Calibration", "DataSize", "Machine", "Measurement", "Plan", "backbone_info", "data_size",
           "machine", "make_plan", "measure_run", "plan_for"]
