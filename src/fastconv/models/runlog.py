"""What every training run reports: a progress bar, a one-line summary and an optional plot."""
import time
from dataclasses import dataclass, field
from typing import Dict, List, Sequence, Tuple


def progress_bar(total, desc, unit="epoch", show=True):
    """A tqdm bar (drawing nothing unless `show`: the ranks of a distributed run other than 0);
    tqdm is imported here so that importing fastconv never needs it."""
    try:
        from tqdm import tqdm
    except ImportError as e:
        raise ModuleNotFoundError("training scripts show progress with tqdm: pip install tqdm "
                                  "(or: pip install fastconv[train])") from e
    return tqdm(total=total, desc=desc, unit=unit, leave=False, disable=not show)


@dataclass
class RunResult:
    """The outcome of one training run. history maps a metric name to its values, one per epoch
    unless x_axis names what else they were measured against (knn: accuracy per k)."""
    model: str
    data: str
    epochs: int
    train_accuracy: float
    test_accuracy: float
    seconds: float
    history: Dict[str, List[float]] = field(default_factory=dict)
    x_axis: Dict[str, Tuple[str, Sequence]] = field(default_factory=dict)  # metric -> (label, values)

    def summary(self):
        epochs = f"{self.epochs} epochs" if self.epochs else "no training epochs"
        return (f"{self.model} on {self.data}: {epochs}, train acc {self.train_accuracy:.4f}, "
                f"test acc {self.test_accuracy:.4f}, {self.seconds:.1f} s")

    def panels(self):
        """[(metric, x label, x values, values)]: what plot() draws, one panel per metric."""
        return [(name, *self.x_axis.get(name, ("epoch", list(range(1, len(values) + 1)))), values)
                for name, values in self.history.items()]

    def plot(self, path):
        """One panel per metric in history, against the epoch or its x_axis, saved as a PNG."""
        import matplotlib
        matplotlib.use("Agg")  # scripts run headless; no display is needed to write a PNG
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator

        # at least 6 inches wide: the title names the model and the data, and must not be cut
        fig, axes = plt.subplots(1, len(self.history), figsize=(max(6, 4 * len(self.history)), 3.2), squeeze=False)
        for ax, (name, label, xs, values) in zip(axes[0], self.panels()):
            ax.plot(xs, values, marker=".")
            if name in self.x_axis:
                ax.set_xticks(list(xs))  # the values measured at (k = 1, 3, 5, ...)
            else:
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole epochs
            ax.set_xlabel(label)
            ax.set_title(name)
        fig.suptitle(f"{self.model} on {self.data}", fontsize=10)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)


class Stopwatch:
    def __init__(self):
        self.start = time.perf_counter()

    def seconds(self):
        return time.perf_counter() - self.start
