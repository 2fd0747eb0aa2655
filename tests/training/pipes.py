"""A pipeline whose step trains with loopml.training.fit, as a user would write it."""

from __future__ import annotations

from sklearn.tree import DecisionTreeClassifier

from loopml.pipelines import current_step, pipeline, step
from loopml.training import fit


@step
def train_tree(ref: str, depth: int) -> float:
    context = current_step()
    with context.start_run() as run:
        result = fit(
            DecisionTreeClassifier(max_depth=depth, random_state=0),
            ref,
            target="label",
            split="main",
            cv=2,
            run=run,
        )
    return result.metrics["test.accuracy"]


@pipeline
def training(ref: str, depth: int = 3):
    train_tree(ref, depth)
