"""Replay flights as production traffic: predictions over HTTP, labels back days later.

Day by day, in scheduled-departure order, each day's flights are posted to the server's
predict endpoint in batches (one HTTP request carries up to ``batch_rows`` records, as a
busy client would send them). The answers (prediction id, the served version, the
probability of a delay) are kept per flight. A flight's true label is known once it has
left, but here it reaches the platform ``label_delay_days`` later, as labels often do:
on day d the labels of day d - k are posted to the feedback endpoint with their
prediction ids. Every ``tick_days`` days the caller's ``on_tick`` runs with the replay's
clock (the end of that day), which is where monitoring and the loop controller act.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
import orjson
import pandas as pd

from loopml.core import BackendError, ValidationError
from loopml.demo._flights import FEATURES, TARGET, TIME

__all__ = ["Replay", "ReplayOptions", "ServedTraffic", "TrafficClient"]

_JSON = {"content-type": "application/json"}
_FEEDBACK_BATCH = 5000


class TrafficClient:
    """Posts records and labels to one deployment of a running server."""

    def __init__(self, url: str, deployment: str, timeout_s: float = 120.0) -> None:
        self._http = httpx.Client(base_url=url, timeout=timeout_s)
        self._predict = f"/v1/deployments/{deployment}/predict"
        self._feedback = f"/v1/deployments/{deployment}/feedback"

    def close(self) -> None:
        self._http.close()

    def _post(self, path: str, body: Any) -> Any:
        response = self._http.post(path, content=orjson.dumps(body), headers=_JSON)
        if response.status_code != 200:
            raise BackendError(
                f"POST {path} answered {response.status_code}: {response.text[:500]}"
            )
        return response.json()

    def predict(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        answers: list[dict[str, Any]] = self._post(self._predict, records)["predictions"]
        return answers

    def feedback(self, items: list[dict[str, Any]]) -> int:
        """Posts labels; the number accepted (an unknown id is a bug here: it raises)."""
        result = self._post(self._feedback, items)
        if result["unknown"]:
            raise BackendError(
                f"the server did not know {len(result['unknown'])} prediction ids, e.g. "
                f"{result['unknown'][0]}"
            )
        return int(result["accepted"])


@dataclass(frozen=True)
class ReplayOptions:
    batch_rows: int = 1000
    label_delay_days: int = 2
    tick_days: int = 7

    def __post_init__(self) -> None:
        for name in ("batch_rows", "tick_days"):
            if getattr(self, name) < 1:
                raise ValidationError(f"{name} must be at least 1; got {getattr(self, name)}")
        if self.label_delay_days < 0:
            raise ValidationError(f"label_delay_days must be >= 0; got {self.label_delay_days}")


@dataclass
class ServedTraffic:
    """What production answered for each replayed flight (row order of the replay)."""

    prediction_id: npt.NDArray[np.object_]
    probability: npt.NDArray[np.float64]
    model_version: npt.NDArray[np.object_]
    labelled: npt.NDArray[np.bool_]

    @classmethod
    def empty(cls, rows: int) -> ServedTraffic:
        return cls(
            np.full(rows, "", dtype=object),
            np.full(rows, np.nan),
            np.full(rows, "", dtype=object),
            np.zeros(rows, dtype=bool),
        )


Tick = Callable[[dt.datetime, "Replay"], None]
Advance = Callable[[int], None]


FLIGHT_KEY = "flight"  # each record's place in the replay: the canary's sticky key


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready records of the features (a missing number becomes null), each with its
    :data:`FLIGHT_KEY`, which the server logs but does not feed to the model."""
    features = frame[list(FEATURES)]
    plain = features.astype(object).where(features.notna(), None)
    records: list[dict[str, Any]] = plain.to_dict("records")
    for position, record in zip(frame.index, records, strict=True):
        record[FLIGHT_KEY] = str(position)
    return records


def _chunks(start: int, stop: int, size: int) -> Iterator[tuple[int, int]]:
    for low in range(start, stop, size):
        yield low, min(low + size, stop)


class Replay:
    """Replays ``flights`` (sorted by departure) through ``client``; see the module doc."""

    def __init__(
        self, flights: pd.DataFrame, client: TrafficClient, options: ReplayOptions
    ) -> None:
        self.flights = flights.reset_index(drop=True)
        self.client = client
        self.options = options
        self.served = ServedTraffic.empty(len(self.flights))
        days = self.flights[TIME].dt.normalize()
        self._day_bounds = self._bounds(days)
        self._labelled = 0
        self.last_prediction_id: str | None = None  # of the newest answer served
        self.seconds = {"serve": 0.0, "labels": 0.0}

    @staticmethod
    def _bounds(days: pd.Series[Any]) -> list[tuple[dt.datetime, int, int]]:
        values = days.to_numpy()
        starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
        stops = np.r_[starts[1:], len(values)]
        return [
            (pd.Timestamp(values[a]).to_pydatetime(), int(a), int(b))
            for a, b in zip(starts, stops, strict=True)
        ]

    @property
    def days(self) -> int:
        return len(self._day_bounds)

    @property
    def labelled_count(self) -> int:
        """Flights whose labels were sent: always the first ones, labels come in order."""
        return self._labelled

    def _serve(self, start: int, stop: int) -> None:
        served = self.served
        for low, high in _chunks(start, stop, self.options.batch_rows):
            answers = self.client.predict(_records(self.flights.iloc[low:high]))
            if len(answers) != high - low:
                raise BackendError(f"{high - low} records posted, {len(answers)} answers")
            for offset, answer in enumerate(answers):
                served.prediction_id[low + offset] = answer["prediction_id"]
                served.model_version[low + offset] = (
                    answer.get("answered_by") or answer["model_version"]
                )
                served.probability[low + offset] = float(
                    (answer.get("probabilities") or {}).get("1", answer["prediction"])
                )
            self.last_prediction_id = answers[-1]["prediction_id"]

    def _label(self, start: int, stop: int) -> None:
        labels = self.flights[TARGET].to_numpy()
        for low, high in _chunks(start, stop, _FEEDBACK_BATCH):
            items = [
                {"prediction_id": self.served.prediction_id[i], "label": int(labels[i])}
                for i in range(low, high)
            ]
            self.client.feedback(items)
            self.served.labelled[low:high] = True
            self._labelled = high

    def run(self, on_tick: Tick, advance: Advance | None = None) -> ServedTraffic:
        """Serve every day, send labels as they come due, tick every ``tick_days``."""
        delay = self.options.label_delay_days
        bounds = self._day_bounds
        for index, (day, start, stop) in enumerate(bounds):
            started = time.perf_counter()
            self._serve(start, stop)
            self.seconds["serve"] += time.perf_counter() - started
            if index >= delay:
                started = time.perf_counter()
                _, label_start, label_stop = bounds[index - delay]
                self._label(label_start, label_stop)
                self.seconds["labels"] += time.perf_counter() - started
            if (index + 1) % self.options.tick_days == 0 or index == len(bounds) - 1:
                on_tick(day + dt.timedelta(days=1), self)
            if advance is not None:
                advance(stop - start)
        return self.served
