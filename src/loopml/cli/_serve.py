"""``loopml serve DEPLOYMENT``: the REST app under uvicorn (uvloop, httptools)."""

from __future__ import annotations

import math
import os
from typing import Annotated, Any

import typer

from loopml.cli._app import app, settings_from
from loopml.core import Settings, load_settings

_DEPLOYMENT_ENV = "LOOPML_SERVE_DEPLOYMENT"
_DURABLE_ENV = "LOOPML_SERVE_DURABLE_LOG"
_MONITORING_ENV = "LOOPML_SERVE_MONITORING"
_SEGMENT_ENV = "LOOPML_SERVE_SEGMENT_INTERVAL_S"


def _collectors(settings: Settings, deployment: str, enabled: bool) -> list[Any]:
    """Monitoring's collector for /metrics: the latest stored report's samples and the
    deployment's firing alerts (serving itself never imports monitoring)."""
    if not enabled:
        return []
    from loopml.monitoring import MonitoringCollector

    return [MonitoringCollector(settings, deployment)]


def _finite(value: float) -> float:
    if math.isnan(value):  # a range check lets NaN through: it compares false both ways
        raise typer.BadParameter(f"expected a number of seconds; got {value}")
    return value


def app_from_env() -> Any:
    """The app factory each uvicorn worker process calls (with ``--workers`` above 1)."""
    from loopml.serving import SEGMENT_INTERVAL_S, create_app

    settings, deployment = load_settings(), os.environ[_DEPLOYMENT_ENV]
    return create_app(
        settings,
        deployment,
        durable_log=os.environ.get(_DURABLE_ENV, "1") == "1",
        collectors=_collectors(settings, deployment, os.environ.get(_MONITORING_ENV, "1") == "1"),
        freeze_gc=True,
        segment_interval_s=float(os.environ.get(_SEGMENT_ENV, SEGMENT_INTERVAL_S)),
    )


@app.command("serve")
def serve(
    ctx: typer.Context,
    deployment: Annotated[str, typer.Argument(help="Deployment to serve.")],
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    durable_log: Annotated[
        bool,
        typer.Option(
            "--durable-log/--no-durable-log",
            help="Respond only once each prediction is fsynced to the log (default).",
        ),
    ] = True,
    monitoring: Annotated[
        bool,
        typer.Option(
            "--monitoring/--no-monitoring",
            help="Expose the latest monitoring report and firing alerts on /metrics (default).",
        ),
    ] = True,
    access_log: Annotated[
        bool,
        typer.Option(
            "--access-log/--no-access-log",
            help="Log a line per HTTP request (off by default: every prediction is in the "
            "prediction log already, and the line costs a tenth of a request).",
        ),
    ] = False,
    segment_interval: Annotated[
        float,
        typer.Option(
            min=0.05,
            max=3600.0,  # the log's MAX_SEGMENT_INTERVAL_S; 2.0 below is its default
            # SEGMENT_INTERVAL_S (neither imported: serving loads only once serve() runs)
            callback=_finite,
            help="Seconds between turning the prediction log's journal into a segment, "
            "which monitoring and `predictions tail` on other machines read.",
        ),
    ] = 2.0,
) -> None:
    """Serve DEPLOYMENT: POST /v1/deployments/DEPLOYMENT/predict, /healthz, /readyz, /metrics."""
    import uvicorn

    from loopml.serving import create_app

    settings = settings_from(ctx)
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "loop": "uvloop",
        "http": "httptools",
        "ws": "none",  # no websocket endpoints: skip importing a websocket library
        "log_level": "info",
        "access_log": access_log,
    }
    if workers == 1:
        collectors = _collectors(settings, deployment, monitoring)
        served = create_app(
            settings,
            deployment,
            durable_log=durable_log,
            collectors=collectors,
            freeze_gc=True,
            segment_interval_s=segment_interval,
        )
        uvicorn.run(served, **options)
        return
    os.environ.update(
        {
            "LOOPML_HOME": str(settings.home),
            "LOOPML_DB_URL": settings.db_url,
            "LOOPML_ARTIFACTS_URL": str(settings.artifacts_url),
            _DEPLOYMENT_ENV: deployment,
            _DURABLE_ENV: "1" if durable_log else "0",
            _MONITORING_ENV: "1" if monitoring else "0",
            _SEGMENT_ENV: str(segment_interval),
        }
    )
    uvicorn.run("loopml.cli._serve:app_from_env", factory=True, workers=workers, **options)
