"""What every training script reports: a progress bar, a one-line summary and an optional plot."""
import time
from dataclasses import dataclass, field


def progress_bar(total, desc, unit="epoch"):
    """A tqdm bar; tqdm is imported here so that importing fastconv never needs it."""
    try:
        from tqdm import tqdm
    except ImportError as e:
        raise ModuleNotFoundError("training scripts show progress with tqdm: pip install tqdm "
                                  "(or: pip install fastconv[train])") from e
    return tqdm(total=total, desc=desc, unit=unit, leave=False)


@dataclass
class RunResult:
    """The outcome of one training run; history maps a metric name to its per-epoch values."""
    model: str
    data: str
    epochs: int
    train_accuracy: float
    test_accuracy: float
    seconds: float
    history: dict = field(default_factory=dict)

    def summary(self):
        epochs = f"{self.epochs} epochs" if self.epochs else "no training epochs"
        return (f"{self.model} on {self.data}: {epochs}, train acc {self.train_accuracy:.4f}, "
                f"test acc {self.test_accuracy:.4f}, {self.seconds:.1f} s")

    def plot(self, path):
        """One panel per metric in history, against the epoch, saved as a PNG."""
        import matplotlib
        matplotlib.use("Agg")  # scripts run headless; no display is needed to write a PNG
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, len(self.history), figsize=(4 * len(self.history), 3), squeeze=False)
        for ax, (name, values) in zip(axes[0], self.history.items()):
            ax.plot(range(1, len(values) + 1), values, marker=".")
            ax.set_xlabel("epoch")
            ax.set_title(name)
        fig.suptitle(f"{self.model} on {self.data}")
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)


class Stopwatch:
    def __init__(self):
        self.start = time.perf_counter()

    def seconds(self):
        return time.perf_counter() - self.start
