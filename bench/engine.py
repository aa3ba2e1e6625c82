"""Engine speed, measured side by side in one process (a benchmark, not a test).

    .venv/bin/python bench/engine.py [--quick] [--steps N] [--processes P]

1. The default problem (300 moons, hidden 3): the article's plain loop, the engine
   (``Trainer.advance``) and scikit-learn's ``MLPClassifier`` doing the same number of
   full-batch gradient steps; prints steps per second and the ratios.
   MLPClassifier averages its gradient and penalises ``alpha/(2n)‖W‖²``; we step with the
   summed gradient + λW. So ``learning_rate_init = ε·n`` and ``alpha = λ`` give the same update
   size (its binary output is one logistic unit rather than a 2-way softmax).
2. The article's comparison of hidden sizes [1, 2, 3, 4, 5, 20, 50]: the plain loop for each
   size one after another versus ``compare`` (all sizes stepped as one stack, each size's
   numbers bit for bit a single run's; on 1 process and across processes).
Each timing is the best of ``--repeat`` runs, taken in turn, to damp noise from other load.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings
from collections.abc import Callable

import numpy as np
from sklearn.datasets import make_moons
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

from boundarylab.engine.compare import compare
from boundarylab.engine.config import RunConfig
from boundarylab.engine.training import Trainer

SIZES = [1, 2, 3, 4, 5, 20, 50]
EPSILON, REG_LAMBDA = 0.01, 0.01


def plain_loop(X: np.ndarray, y: np.ndarray, hidden: int, steps: int) -> dict:
    """The article's build_model, as written there (fancy-index delta, np.power, new arrays
    every step), with a local RandomState instead of the global seed."""
    n = len(X)
    rs = np.random.RandomState(0)
    W1 = rs.randn(2, hidden) / np.sqrt(2)
    b1 = np.zeros((1, hidden))
    W2 = rs.randn(hidden, 2) / np.sqrt(hidden)
    b2 = np.zeros((1, 2))
    for _ in range(steps):
        z1 = X.dot(W1) + b1
        a1 = np.tanh(z1)
        z2 = a1.dot(W2) + b2
        exp_scores = np.exp(z2)
        probs = exp_scores / np.sum(exp_scores, axis=1, keepdims=True)
        delta3 = probs
        delta3[range(n), y] -= 1
        dW2 = (a1.T).dot(delta3)
        db2 = np.sum(delta3, axis=0, keepdims=True)
        delta2 = delta3.dot(W2.T) * (1 - np.power(a1, 2))
        dW1 = np.dot(X.T, delta2)
        db1 = np.sum(delta2, axis=0)
        dW2 += REG_LAMBDA * W2
        dW1 += REG_LAMBDA * W1
        W1 += -EPSILON * dW1
        b1 += -EPSILON * db1
        W2 += -EPSILON * dW2
        b2 += -EPSILON * db2
    return {"W1": W1, "b1": b1, "W2": W2, "b2": b2}


def engine(steps: int) -> None:
    trainer = Trainer(RunConfig.model_validate({"training": {"iterations": steps}}))
    trainer.advance(steps)


def sklearn_mlp(X: np.ndarray, y: np.ndarray, steps: int) -> None:
    mlp = MLPClassifier(
        hidden_layer_sizes=(3,),
        activation="tanh",
        solver="sgd",
        batch_size=len(X),  # one full-batch step per epoch
        learning_rate_init=EPSILON * len(X),
        alpha=REG_LAMBDA,
        momentum=0.0,
        nesterovs_momentum=False,
        max_iter=steps,
        tol=0.0,
        n_iter_no_change=steps + 1,  # never stop early: exactly `steps` updates
        shuffle=False,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp.fit(X, y)
    assert mlp.n_iter_ == steps


def best_of(repeat: int, fns: dict[str, Callable[[], object]]) -> dict[str, float]:
    """Best wall time of each function over `repeat` rounds, the functions taking turns."""
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeat):
        for name, fn in fns.items():
            started = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps, one round")
    parser.add_argument("--steps", type=int, default=None, help="steps per run (default 20000)")
    parser.add_argument("--repeat", type=int, default=None, help="rounds per timing (3)")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    steps = args.steps or (2000 if args.quick else 20000)
    repeat = args.repeat or (1 if args.quick else 3)
    X, y = make_moons(300, noise=0.20, random_state=0)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, NumPy {np.__version__}")  # fmt: skip
    print(f"default problem: 300 moons, hidden 3, {steps} full-batch steps, best of {repeat}")
    t = best_of(
        repeat,
        {
            "plain": lambda: plain_loop(X, y, 3, steps),
            "engine": lambda: engine(steps),
            "sklearn": lambda: sklearn_mlp(X, y, steps),
        },
    )
    for name, seconds in t.items():
        print(f"  {name:8s} {steps / seconds:10.0f} steps/s  ({seconds:.3f} s)")
    print(f"  engine / plain loop   : {t['plain'] / t['engine']:.2f}x faster (target >= 2.5)")
    print(f"  engine / MLPClassifier: {t['sklearn'] / t['engine']:.2f}x faster (target > 1)")

    base = RunConfig.model_validate({"training": {"iterations": steps}})
    print(f"comparison of hidden sizes {SIZES}, {steps} steps each, best of {repeat}")
    fns: dict[str, Callable[[], object]] = {
        "plain loop, one after another": lambda: [plain_loop(X, y, h, steps) for h in SIZES],
        "compare, fused, 1 process": lambda: compare(base, SIZES, processes=1),
    }
    if args.processes > 1:
        fns[f"compare, fused, {args.processes} processes"] = lambda: compare(
            base, SIZES, processes=args.processes
        )
    t = best_of(repeat, fns)
    plain = t.pop("plain loop, one after another")
    print(f"  plain loop, one after another: {plain:.2f} s")
    for name, seconds in t.items():
        print(f"  {name}: {seconds:.2f} s = {seconds / plain:.3f}x the plain loop (target <= 0.2)")


if __name__ == "__main__":
    main()
