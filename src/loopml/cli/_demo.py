"""``loopml demo``: the tracking quickstart (the closed-loop demo replaces it later).

It trains a small logistic regression, written in plain Python so the demo needs
nothing beyond loopml, with six settings nested under one sweep run, then reads
the runs back the way a user would.
"""

from __future__ import annotations

import math
import random
from typing import Annotated

import typer
from rich.progress import Progress
from rich.table import Table

from loopml.cli._app import app, settings_from
from loopml.cli._output import console, format_number
from loopml.tracking import ActiveRun, Client

EXPERIMENT = "quickstart"


def _make_data(seed: int, n: int = 1200) -> list[tuple[list[float], int]]:
    rng = random.Random(seed)
    true_weights = [1.5, -2.0, 0.7, 0.0]
    rows = []
    for _ in range(n):
        x = [rng.gauss(0, 1) for _ in true_weights]
        logit = sum(w * v for w, v in zip(true_weights, x, strict=True)) + rng.gauss(0, 0.8)
        rows.append((x, int(logit > 0)))
    return rows


def _train(
    run: ActiveRun, data: list[tuple[list[float], int]], lr: float, l2: float, epochs: int
) -> list[float]:
    split = int(len(data) * 0.8)
    train, valid = data[:split], data[split:]
    weights = [0.0] * (len(data[0][0]) + 1)
    for epoch in range(epochs):
        loss = 0.0
        for x, y in train:
            z = weights[0] + sum(w * v for w, v in zip(weights[1:], x, strict=True))
            p = 1 / (1 + math.exp(-max(min(z, 30), -30)))
            loss -= y * math.log(p + 1e-12) + (1 - y) * math.log(1 - p + 1e-12)
            gradient = p - y
            weights[0] -= lr * gradient
            for i, v in enumerate(x):
                weights[i + 1] -= lr * (gradient * v + l2 * weights[i + 1])
        correct = sum(
            int(
                (weights[0] + sum(w * v for w, v in zip(weights[1:], x, strict=True)) > 0)
                == bool(y)
            )
            for x, y in valid
        )
        run.log_metrics(
            {"train_loss": loss / len(train), "val_accuracy": correct / len(valid)}, step=epoch
        )
    return weights


@app.command()
def demo(
    ctx: typer.Context,
    epochs: Annotated[int, typer.Option(help="Training epochs per run.")] = 15,
) -> None:
    """Run the tracking quickstart: a small sweep tracked in ./.loopml, then read back."""
    settings = settings_from(ctx)
    client = Client(settings)
    data = _make_data(seed=7)
    grid = [(lr, l2) for lr in (0.001, 0.01, 0.1) for l2 in (0.0, 0.01)]
    console.print(f"[bold]loopml tracking quickstart[/bold]: store {settings.db_url}")
    with client.start_run(EXPERIMENT, name="sweep", params={"grid_size": len(grid)}) as sweep:
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("training", total=len(grid))
            for lr, l2 in grid:
                with sweep.start_child(
                    name=f"lr={lr} l2={l2}", params={"lr": lr, "l2": l2, "epochs": epochs}
                ) as run:
                    weights = _train(run, data, lr, l2, epochs)
                    run.log_dict({"weights": weights}, "model/weights.json")
                progress.advance(task)
        best = client.search_runs(
            EXPERIMENT,
            filter=f"attributes.parent_id = '{sweep.id}'",
            order_by=["metrics.val_accuracy DESC"],
            max_results=1,
        )[0]
        sweep.log_metric("best_val_accuracy", best.metrics["val_accuracy"])
        sweep.set_tag("best_run", best.id)

    runs = client.search_runs(
        EXPERIMENT,
        filter=f"attributes.parent_id = '{sweep.id}'",
        order_by=["metrics.val_accuracy DESC"],
    )
    table = Table("run", "lr", "l2", "val_accuracy", "train_loss", title="this sweep, best first")
    for child in runs:
        table.add_row(
            child.name,
            child.params["lr"],
            child.params["l2"],
            format_number(child.metrics["val_accuracy"]),
            format_number(child.metrics["train_loss"]),
        )
    console.print(table)
    console.print(
        "What this showed: every run recorded its params, a metric per epoch, an artifact stored "
        "by content digest, and the code and machine it ran on; runs nested under one sweep; "
        "search ordered them by a metric.\nExplore:\n"
        f"  loopml runs list -e {EXPERIMENT} -o 'metrics.val_accuracy DESC'\n"
        f"  loopml runs show {best.id}\n"
        f"  loopml runs compare {' '.join(r.id for r in runs[:2])}"
    )
    client.close()
