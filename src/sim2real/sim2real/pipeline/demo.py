"""The end-to-end sim-to-real pipeline that `sim2real demo` runs on the reality proxy.

Stages (each writes into the output folder, so a failed run leaves everything it made):
  1. pretrain - in simulation, in parallel: K exploration policies (diversity bonus), explore/, and the base
                task policy on the nominal sim, policies/base/
  2. collect  - the reality proxy over ROS, the exploration dispatcher and the logger: bag/ (robot side
                `proxy`: the 100 Hz sim bridge in lockstep; `franka`: the 1 kHz franka_ros2 emulation with the
                hardware collect stack, episodes started as an operator does)
  3. dataset  - bag -> transitions: dataset.npz
  4. fit      - DROPO, E-DROPO, SysID and uniform distributions: fits/METHOD.yaml
  5. train    - the base policy fine-tuned under each training distribution (none, uniform, each fit, oracle)
                for the same number of steps: policies/NAME/; with --seeds N, seeds 1..N-1 again from their own
                base policies: policies/seedK/NAME/
  6. deploy   - each (seed 0) policy served by policy_server to the reality proxy over DDS (robot side `franka`:
                to the franka emulation, behind the command supervisor), its nodes' logs in evaluation/NAME/;
                every seed's policy evaluated in process on the same proxy
  7. adapt    - only with --progressive: progressive transfer's last step, the fitted-DR policy fine-tuned on
                the target itself for a budget of target episodes: policies/adapted/
  8. vision   - only with --survey (which also adds the rows adr, active, memory and simopt to train and deploy):
                the puck located from the workspace camera, with and without visual randomization: vision/
  9. report   - report.md with its PNG figures

ROS is reached only through processes (the stack runner, `sim2real eval --over-ros`), so the pipeline stays
free of rclpy like the rest of the core.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable

from sim2real.pipeline import stages
from sim2real.pipeline.plan import ROBOT_SIDES, STAGES, DemoRun, load_plan
from sim2real_core.cluster import Cluster


def run_demo(out: str | os.PathLike, quick: bool = False, reality: str | None = None, start: str = STAGES[0],
             log: Callable[[str], None] = print, progressive: bool = False, survey: bool = False,
             robot_side: str = ROBOT_SIDES[0], seeds: int | None = None,
             cluster: Cluster | None = None) -> DemoRun:
    """Run the stages into `out` from `start` on (earlier stages' results are read from out/results.json);
    `progressive` and `survey` add the plan's optional rows and stages;
    `seeds`: PPO seeds per row (default: the budget's); `cluster`: where the rows train and evaluate (default:
    a local Ray instance with all CPUs).

    Returns the run; its results are also in out/results.json and the report in out/report.md.
    """
    if start not in STAGES:
        raise ValueError(f"unknown stage {start!r}; stages: {', '.join(STAGES)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    plan = load_plan(quick, reality, progressive=progressive, robot_side=robot_side, seeds=seeds, survey=survey)
    if start not in plan.stages:
        raise ValueError(f"stage {start!r} is not part of this plan (stages: {', '.join(plan.stages)})")
    with cluster or Cluster() as where:
        run = DemoRun(out=out, plan=plan, log=log, cluster=where)
        if start != run.plan.stages[0]:
            run.resume(start)
        for name in run.plan.stages[run.plan.stages.index(start):]:
            log(f"== {name} ==")
            began = time.perf_counter()
            getattr(stages, name)(run)
            run.timings[name] = round(time.perf_counter() - began, 1)
            run.save()
            log(f"   {name} done in {run.timings[name]:.1f} s")
    return run
