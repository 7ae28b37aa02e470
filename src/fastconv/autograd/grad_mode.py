"""Whether operations record a graph for backward (off inside `no_grad`)."""
import functools

_enabled = True


def is_grad_enabled():
    return _enabled


class no_grad:
    """Context manager (and decorator) that stops graph recording, e.g. for evaluation."""

    def __enter__(self):
        global _enabled
        self._previous, _enabled = _enabled, False

    def __exit__(self, *exc):
        global _enabled
        _enabled = self._previous

    def __call__(self, fn):
        @functools.wraps(fn)
        def without_grad(*args, **kwargs):
            with no_grad():
                return fn(*args, **kwargs)
        return without_grad
