"""Optimizer base: parameter groups, per-parameter state, and a state_dict keyed by position."""
import numpy as np

from fastconv import backend


def _copy_state(state, device=None):
    """A parameter's state with its arrays copied (onto `device` when given), so a saved state
    never shares memory with the one being stepped; numbers stay as they are."""
    copied = {}
    for name, value in state.items():
        if isinstance(value, np.ndarray) or backend.is_cuda_array(value):
            moved = backend.asarray(value, device=device)
            value = moved.copy() if moved is value else moved
        copied[name] = value
    return copied


class Optimizer:
    """Subclasses implement update(param, grad, state, group): one in-place step of param.data."""

    def __init__(self, params, defaults):
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        if any(v < 0 for v in defaults.values() if isinstance(v, (int, float))):
            raise ValueError(f"{type(self).__name__}: hyperparameters must be >= 0, got {defaults}")
        self.defaults = defaults
        self.param_groups = []
        for group in params if isinstance(params[0], dict) else [{"params": params}]:
            self.add_param_group(group)
        # param -> dict of arrays and scalars, created at its first step (Tensors hash by identity)
        self.state = {}

    def add_param_group(self, group):
        """A dict with 'params' and any hyperparameters that override the defaults."""
        self.param_groups.append({**self.defaults, **group, "params": list(group["params"])})

    def zero_grad(self):
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None

    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self.update(p, p.grad.data, self.state.setdefault(p, {}), group)

    def update(self, param, grad, state, group):
        raise NotImplementedError

    def _indexed_params(self):
        return [p for group in self.param_groups for p in group["params"]]

    def state_dict(self):
        """{'state': {index: {name: value}}, 'param_groups': [{hyperparameters, 'params': [index]}]},
        parameters numbered in group order (as in PyTorch), arrays copied."""
        index = {id(p): i for i, p in enumerate(self._indexed_params())}
        groups = [{**g, "params": [index[id(p)] for p in g["params"]]} for g in self.param_groups]
        state = {index[id(p)]: _copy_state(s) for p, s in self.state.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        groups = state_dict["param_groups"]
        sizes, saved_sizes = [len(g["params"]) for g in self.param_groups], [len(g["params"]) for g in groups]
        if sizes != saved_sizes:
            raise ValueError(f"{type(self).__name__}.load_state_dict: saved parameter groups have "
                             f"sizes {saved_sizes}, this optimizer's have {sizes}")
        for group, saved in zip(self.param_groups, groups):
            group.update({k: v for k, v in saved.items() if k != "params"})
        params = self._indexed_params()
        self.state = {params[int(i)]: _copy_state(s, params[int(i)].device)
                      for i, s in state_dict["state"].items()}
