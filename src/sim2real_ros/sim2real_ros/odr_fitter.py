"""odr_fitter: fit a simulator parameter distribution on request and apply it to the sim bridge.

Service ~/fit (std_srvs/Trigger): fit the dataset at `data_path` with `method` over `space`, write the
distribution YAML to `output_path`, then (if `apply_to` names a node) set that node's `physics.<name>`
parameters to the fitted means through its ~/set_parameters service (rcl_interfaces/SetParameters). The
response says what was fitted, or why not. Progress (state, iteration, objective, evaluations) is published
on /diagnostics while fitting and every `diagnostics_period` seconds.

Parameters: PARAMETERS below (`ros2 param describe /odr_fitter NAME`): the node's own, then every field of
sim2real_core.fit.options.FitOptions (the options of `sim2real fit`). All but diagnostics_period are settable
at run time, and the next ~/fit uses them.
"""
from __future__ import annotations

import sys
import threading
import time

from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.srv import SetParameters
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.node import Node
from rclpy.parameter import Parameter
from std_srvs.srv import Trigger

from sim2real_core.config import ConfigError, validate_options
from sim2real_core.fit.files import fit_file, physics_overrides
from sim2real_core.fit.methods import METHODS
from sim2real_core.fit.options import FitOptions

from . import contract
from .descriptors import Param, declare, option_parameters
from .messages import diagnostic_array, diagnostic_status
from .node_main import run_node
from .service_calls import answered

PARAMETERS = tuple(Param(*entry, read_only=False) for entry in (
    ("data_path", "", "dataset to fit (.npz, or a directory of .npy files)"),
    ("method", "dropo", f"fitting method (one of {' | '.join(METHODS)})"),
    ("space", "fr3_reach", "parameter space name in config/parameter_spaces, or a path"),
    ("parameters", "", "comma-separated subset of the space ('': every model parameter)"),
    ("system", "", "simulated system ('': the space's)"),
    ("output_path", "", "distribution YAML to write"),
    ("report_dir", "", "folder for the fit report ('': none)"),
    ("apply_to", contract.SIM_BRIDGE_NAME, "node whose physics.<name> parameters get the fitted means "
                                           "('': do not apply)"),
    ("apply_timeout", 10.0, "how long to wait for that node's ~/set_parameters", "s", 0.0, float("inf")),
)) + option_parameters(FitOptions) + (
    Param("diagnostics_period", 1.0, "seconds between /diagnostics messages", "s", 1e-3, 3600.0),)

class OdrFitterNode(Node):
    """ROS 2 wrapper of sim2real_core.fit.files.fit_file (see the module docstring)."""

    def __init__(self):
        super().__init__("odr_fitter")
        period = declare(self, PARAMETERS)["diagnostics_period"]
        self._status = {"state": "idle", "iteration": 0, "objective": "", "evaluations": 0, "message": ""}
        self._lock = threading.Lock()
        self._busy = threading.Lock()
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, contract.DIAGNOSTICS, contract.EVENT_QOS)
        self._param_clients: dict[str, object] = {}
        self._client_group = ReentrantCallbackGroup()
        self.create_service(Trigger, "~/fit", self._on_fit, callback_group=MutuallyExclusiveCallbackGroup())
        self.create_timer(period, self._publish_diagnostics, callback_group=MutuallyExclusiveCallbackGroup())
        self.get_logger().info("ready: call ~/fit to fit data_path and apply the result")

    def _param(self, name: str):
        return self.get_parameter(name).value

    def _set_status(self, **values) -> None:
        with self._lock:
            self._status.update(values)

    def _publish_diagnostics(self) -> None:
        with self._lock:
            status = dict(self._status)
        level = {"error": "error"}.get(status["state"], "ok")
        msg = diagnostic_status("odr_fitter: fit", self.get_fully_qualified_name(), level,
                                status.pop("message") or status["state"], status)
        self.diagnostics_pub.publish(diagnostic_array(self.get_clock().now().to_msg(), [msg]))

    def _on_fit(self, request, response):
        if not self._busy.acquire(blocking=False):
            response.success, response.message = False, "a fit is already running"
            return response
        try:
            response.success, response.message = self._fit()
        finally:
            self._busy.release()
        self._publish_diagnostics()
        return response

    def _fit(self) -> tuple[bool, str]:
        data_path, out = self._param("data_path"), self._param("output_path")
        if not data_path or not out:
            return False, "set the parameters data_path and output_path first"
        method = self._param("method")
        self._set_status(state="fitting", iteration=0, objective="", evaluations=0, message=f"{method} on {data_path}",
                         method=method, data_path=data_path)
        start = time.monotonic()

        def progress(row):
            self._set_status(iteration=row["iteration"], objective=f"{row['objective']:.6g}",
                             evaluations=row["evaluations"])
            self._publish_diagnostics()

        parameters = [n.strip() for n in self._param("parameters").split(",") if n.strip()] or None
        try:
            options = validate_options(FitOptions, {name: self._param(name) for name in FitOptions.model_fields},
                                       "parameters")
            done = fit_file(data_path, method, self._param("space"), out, options,
                            system=self._param("system") or None, parameters=parameters, progress=progress)
            if self._param("report_dir"):
                from sim2real_core.fit.report import write_report
                write_report(done.result, done.data, done.predictor, self._param("report_dir"))
        except (ConfigError, ValueError, FileNotFoundError, KeyError) as exc:
            self._set_status(state="error", message=f"fit failed: {exc}")
            return False, f"fit failed: {exc}"
        summary = (f"{method}: wrote {done.path} in {time.monotonic() - start:.1f} s; "
                   + ", ".join(f"{n}={v:.4g}" for n, v in zip(done.result.distribution.space.names,
                                                                done.result.distribution.mean))
                   + f"; {len(done.warnings)} warnings" + "".join(f"; WARNING: {w}" for w in done.warnings))
        target = self._param("apply_to")
        if target:
            ok, why = self._apply(target, physics_overrides(done.result))
            if not ok:
                self._set_status(state="error", message=f"{summary}; not applied: {why}")
                return False, f"{summary}; not applied to {target}: {why}"
            summary += f"; applied to {target}"
        self._set_status(state="done", message=summary)
        return True, summary

    def _apply(self, target: str, values: dict[str, float]) -> tuple[bool, str]:
        """Set parameters on another node through its ~/set_parameters service."""
        service = f"/{target.lstrip('/')}/set_parameters"
        client = self._param_clients.get(service)
        if client is None:
            client = self._param_clients[service] = self.create_client(SetParameters, service,
                                                                 callback_group=self._client_group)
        timeout = float(self._param("apply_timeout"))
        if not client.wait_for_service(timeout_sec=timeout):
            return False, f"service {service} not available within {timeout:g} s"
        request = SetParameters.Request()
        request.parameters = [Parameter(name, value=value).to_parameter_msg() for name, value in values.items()]
        try:  # setting the same values twice is harmless: sent again while a fresh client's answer is lost
            result = answered(lambda: client.call_async(request), lambda: time.sleep(0.01), timeout, service)
        except TimeoutError as exc:
            return False, str(exc)
        failures = [f"{p.name}: {r.reason}" for p, r in zip(request.parameters, result.results)
                    if not r.successful]
        return (not failures), "; ".join(failures)


def main() -> None:
    """ros2 run sim2real_ros odr_fitter --ros-args -p data_path:=reach.npz -p output_path:=fit.yaml"""
    sys.exit(run_node(OdrFitterNode, threads=3))


if __name__ == "__main__":
    main()
