"""The loop: policies and the controller that retrains, canaries, promotes and rolls back."""

__all__: list[str] = []
