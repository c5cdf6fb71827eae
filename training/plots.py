"""Figures logged with a training run."""

from __future__ import annotations

from pathlib import Path

from training.evaluate import Evaluation


def plot_confusion_matrix(evaluation: Evaluation, path: Path, split: str = "Test split") -> Path:
    """Draw the test confusion matrix (rows: true intent, columns: predicted) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    matrix = np.array(evaluation.confusion)
    fig, ax = plt.subplots(figsize=(8, 7))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(evaluation.labels)), evaluation.labels, rotation=45, ha="right")
    ax.set_yticks(range(len(evaluation.labels)), evaluation.labels)
    for (i, j), value in np.ndenumerate(matrix):
        color = "white" if value > matrix.max() / 2 else "black"
        ax.text(j, i, str(value), ha="center", va="center", color=color)
    ax.set_xlabel("predicted intent")
    ax.set_ylabel("true intent")
    ax.set_title(f"{split}: accuracy {evaluation.accuracy:.3f}, macro-F1 {evaluation.macro_f1:.3f}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
