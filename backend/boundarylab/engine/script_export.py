"""Take a run home: a run's config as a standalone NumPy script in the article's style.

``run_script(config)`` returns the text of a Python program that needs only NumPy and
scikit-learn and trains the same network the server trains for ``config``: the same points,
split, initialisation, batches and updates, so the losses it prints match the run's history
(the same float operations in the same order wherever the engine defines an order). The
layers are unrolled (``W1, b1, z1, a1, W2, …``) so the loop reads like the article's
``build_model``: forward propagation, back-propagation, the update.

Pure: config in, text out. Everything the script does is written out here once, as
templates; only the parts a config does not use are left out.
"""

from __future__ import annotations

import json

from boundarylab.engine.config import RunConfig

# What a hidden layer's activation and its derivative (from the output a) look like in the
# script; the same float operations as activations.py.
ACTIVATION_CODE = {
    "tanh": ("np.tanh({z})", "1 - np.power({a}, 2)"),
    "sigmoid": ("1.0 / (1.0 + np.exp(-{z}))", "(1.0 - {a}) * {a}"),
    "relu": ("np.maximum({z}, 0.0)", "({a} > 0.0).astype(float)"),
    "linear": ("{z}", "np.ones_like({a})"),
}

# Each data set's generator as the engine draws it (datasets.py), as script text.
DATASET_CODE = {
    "moons": "X_all, y_all = make_moons(n_samples, noise=noise, random_state=data_seed)\n",
    "circles": (
        "X_all, y_all = make_circles(n_samples, noise=noise, factor=0.5, random_state=data_seed)\n"
    ),
    "xor": """\
rs = np.random.RandomState(data_seed)
X_all = rs.uniform(-1.0, 1.0, size=(n_samples, 2))
y_all = (X_all[:, 0] * X_all[:, 1] < 0).astype(np.int64)  # label before the noise
X_all += noise * rs.randn(n_samples, 2)
""",
    "spiral": """\
rs = np.random.RandomState(data_seed)
y_all = np.repeat(np.arange(2), [n_samples - n_samples // 2, n_samples // 2])
t = np.sqrt(rs.uniform(0.0, 1.0, size=n_samples)) * 0.95 + 0.05
theta = 1.75 * 2 * np.pi * t + np.pi * y_all  # arm 1 is arm 0 turned by pi
X_all = np.column_stack([t * np.cos(theta), t * np.sin(theta)]) + noise * rs.randn(n_samples, 2)
order = rs.permutation(n_samples)
X_all, y_all = X_all[order], y_all[order]
""",
}
BLOB_CODE = """\
rs = np.random.RandomState(data_seed)
{centres}
sizes = [n_samples // k + (1 if c < n_samples % k else 0) for c in range(k)]
y_all = np.repeat(np.arange(k), sizes)
X_all = centres[y_all] + float(np.hypot(0.5, noise)) * rs.randn(n_samples, 2)
order = rs.permutation(n_samples)
X_all, y_all = X_all[order], y_all[order]
"""
BLOB_CENTRES = {
    "gaussian": "k = 2\ncentres = np.array([[-1.0, -1.0], [1.0, 1.0]])",
    "blobs": (
        "k = {k}\nangles = 2 * np.pi * np.arange(k) / k + np.pi / 4\n"
        "centres = 2.0 * np.column_stack([np.cos(angles), np.sin(angles)])"
    ),
}

FEATURE_CODE = {
    "x1": "x1",
    "x2": "x2",
    "x1_sq": "x1 * x1",
    "x2_sq": "x2 * x2",
    "x1_x2": "x1 * x2",
    "sin_x1": "np.sin(x1)",
    "sin_x2": "np.sin(x2)",
}


class NotExpressible(ValueError):
    """The config uses something the script generator cannot write out (names the field)."""


def _dataset_code(config: RunConfig) -> str:
    d = config.dataset
    if d.kind in DATASET_CODE:
        return DATASET_CODE[d.kind]
    if d.kind in BLOB_CENTRES:
        return BLOB_CODE.format(centres=BLOB_CENTRES[d.kind].format(k=d.n_classes))
    raise NotExpressible(f"dataset.kind {d.kind!r} has no script export yet")


def _layer_lines(n_layers: int, activation: str, loss: str, source: str) -> list[str]:
    """Forward propagation from ``source`` through layers 1..n_layers (the last is the output)."""
    act, _ = ACTIVATION_CODE[activation]
    lines, a = [], source
    for k in range(1, n_layers + 1):
        lines.append(f"z{k} = {a}.dot(W{k}) + b{k}")
        if k < n_layers:
            lines.append(f"a{k} = {act.format(z=f'z{k}')}")
            a = f"a{k}"
    z = f"z{n_layers}"
    if loss == "cross_entropy":
        lines += [f"exp_scores = np.exp({z})",
                  "probs = exp_scores / np.sum(exp_scores, axis=1, keepdims=True)"]  # fmt: skip
    else:
        lines.append(f"probs = 1.0 / (1.0 + np.exp(-{z}))  # sigmoid outputs")
    return lines


def _indent(lines: list[str], spaces: int) -> str:
    pad = " " * spaces
    return "".join(f"{pad}{line}\n" if line else "\n" for line in lines)


def _backprop_lines(n_layers: int, activation: str, loss: str, reg: str) -> list[str]:
    _, derivative = ACTIVATION_CODE[activation]
    if loss == "cross_entropy":
        lines = [f"delta{n_layers + 1} = probs - Y_batch  # softmax + cross-entropy"]
    else:
        lines = [f"delta{n_layers + 1} = (probs - Y_batch) * probs * (1.0 - probs)"]
    for k in range(n_layers, 0, -1):
        a_prev = f"a{k - 1}" if k > 1 else "X_batch"
        lines.append(f"dW{k} = ({a_prev}.T).dot(delta{k + 1})")
        if reg == "l2":
            lines.append(f"dW{k} += reg_lambda * W{k}")
        lines.append(f"db{k} = np.sum(delta{k + 1}, axis=0)")
        if k > 1:
            d = derivative.format(a=f"a{k - 1}")
            lines.append(f"delta{k} = delta{k + 1}.dot(W{k}.T) * ({d})")
    return lines


def _update_lines(n_layers: int, optimizer: str, reg: str) -> list[str]:
    names = [f"{p}{k}" for k in range(1, n_layers + 1) for p in ("W", "b")]
    lines = []
    if optimizer == "adam":
        lines.append("t += 1")
    for name in names:
        g = f"d{name}"
        if optimizer == "gd":
            lines.append(f"{name} += -epsilon * {g}")
        elif optimizer == "momentum":
            lines += [f"v['{name}'] *= momentum", f"v['{name}'] -= {g} * epsilon",
                      f"{name} += v['{name}']"]  # fmt: skip
        else:
            lines += [
                f"m['{name}'] *= beta1",
                f"m['{name}'] += (1.0 - beta1) * {g}",
                f"v['{name}'] *= beta2",
                f"v['{name}'] += (1.0 - beta2) * ({g} * {g})",
                f"{name} -= epsilon * (m['{name}'] / (1.0 - beta1**t)) / "
                f"(np.sqrt(v['{name}'] / (1.0 - beta2**t)) + adam_eps)",
            ]
    if reg == "l1":
        for k in range(1, n_layers + 1):
            lines.append(f"W{k} = np.copysign(np.maximum(np.abs(W{k}) - epsilon * reg_lambda, "
                         f"0.0), W{k})  # L1: soft threshold")  # fmt: skip
    return lines


def _penalty_code(n_layers: int, reg: str) -> str:
    weights = [f"W{k}" for k in range(1, n_layers + 1)]
    if reg == "l2":
        return "reg_lambda / 2 * float(" + " + ".join(f"np.sum({W} * {W})" for W in weights) + ")"
    if reg == "l1":
        return "reg_lambda * float(" + " + ".join(f"np.sum(np.abs({W}))" for W in weights) + ")"
    return "0.0"


def _settings(config: RunConfig) -> str:
    d, m, t = config.dataset, config.model, config.training
    lines = [
        f"n_samples = {d.n_samples}",
        f"noise = {float(d.noise) + 0.0!r}",
        f"data_seed = {d.seed}",
        f"test_fraction = {float(d.test_fraction)!r}",
        f"hidden_sizes = {list(m.hidden_sizes)!r}",
        f"features = {list(m.features)!r}",
        f"epsilon = {float(t.learning_rate)!r}  # learning rate for gradient descent",
        f"reg_lambda = {float(t.reg_lambda) if t.regularization != 'none' else 0.0!r}"
        f"  # regularization strength ({t.regularization})",
        f"num_passes = {t.iterations}",
        f"batch_size = {t.batch_size!r}  # None: every step sees every training point",
        f"seed = {t.seed}",
        f"report_every = {t.report_every}",
    ]
    if t.optimizer == "momentum":
        lines.append("momentum = 0.9")
    if t.optimizer == "adam":
        lines.append("beta1, beta2, adam_eps = 0.9, 0.999, 1e-8")
    return "\n".join(lines) + "\n"


HEADER = '''\
"""A Boundary Lab run as a standalone script: {summary}.

It trains the network the server trained for this config and prints the training loss at
each report point ("iteration K loss L", K = steps taken), then the accuracy. Needs only
NumPy and scikit-learn. The run's config:

{config_json}
"""

import numpy as np
{sklearn_import}
'''

BODY = '''
# The data: generate the points, then hold out a test set drawn from its own generator.
{dataset_code}X_all = np.ascontiguousarray(X_all, dtype=np.float64)
y_all = np.ascontiguousarray(y_all, dtype=np.int64)
nn_output_dim = {n_classes}  # output layer dimensionality (one unit per class)
n_test = round(n_samples * test_fraction)
if n_test:
    order = np.random.default_rng([data_seed, 1]).permutation(n_samples)
    test_idx, train_idx = np.sort(order[:n_test]), np.sort(order[n_test:])
else:
    test_idx, train_idx = np.arange(0), np.arange(n_samples)


def make_features(points):
    """What the network sees of each point (x1, x2): one column per feature."""
    x1, x2 = points[:, 0], points[:, 1]
    return np.ascontiguousarray(np.column_stack([{feature_columns}]), dtype=np.float64)


X, y = make_features(X_all[train_idx]), y_all[train_idx]
X_test, y_test = make_features(X_all[test_idx]), y_all[test_idx]
num_examples = len(X)  # training set size
nn_input_dim = X.shape[1]  # input layer dimensionality
Y = np.zeros((num_examples, nn_output_dim))
Y[np.arange(num_examples), y] = 1.0  # one-hot targets


def forward(model, X):
    """Forward propagation: the output layer's probabilities for each row of X."""
    {unpack}
{forward_lines}    return probs


def calculate_loss(model, X, y, with_penalty=True):
    """Mean loss on (X, y) (with the weight penalty on the training set) and accuracy."""
    {unpack}
    probs = forward(model, X)
{data_loss_lines}    if with_penalty:
        data_loss += {penalty}
    accuracy = float(np.mean(probs.argmax(axis=1) == y))
    return data_loss / len(X), accuracy


def report(model, i):
    loss, _ = calculate_loss(model, X, y)
    print(f"iteration {{i}} loss {{loss!r}}")
    return loss


def build_model(num_passes=num_passes):
    """Learn the parameters; every report_every passes print the loss."""
    # Initialise the weights to random values (biases to zero); we learn them below.
    np.random.seed(seed)
    sizes = [nn_input_dim, *hidden_sizes, nn_output_dim]
    model = {{}}
    for k in range(1, len(sizes)):
        model[f"W{{k}}"] = np.random.randn(sizes[k - 1], sizes[k]) / np.sqrt(sizes[k - 1])
        model[f"b{{k}}"] = np.zeros(sizes[k])
    {unpack}
{optimizer_state}    # Mini-batches: a fresh permutation each epoch, cut into batches; a remainder
    # too small for a batch is skipped.
    full_batch = batch_size is None or batch_size >= num_examples
    batch_rng = np.random.default_rng([seed, 2])
    batch_order, batch_pos = np.arange(num_examples), num_examples
    report(model, 0)
    for i in range(1, num_passes + 1):
        if full_batch:
            X_batch, Y_batch = X, Y
        else:
            if batch_pos + batch_size > num_examples:
                batch_order, batch_pos = batch_rng.permutation(num_examples), 0
            idx = batch_order[batch_pos : batch_pos + batch_size]
            batch_pos += batch_size
            X_batch, Y_batch = X[idx], Y[idx]

        # Forward propagation
{train_forward}
        # Back-propagation
{backprop}
        # Parameter update
{update}
        model = {{{model_dict}}}
        if i % report_every == 0 or i == num_passes:
            if not np.isfinite(report(model, i)):
                print(f"diverged at iteration {{i}}")
                break
    return model


model = build_model()
train_loss, train_accuracy = calculate_loss(model, X, y)
print(f"train accuracy {{train_accuracy!r}}")
if n_test:
    test_loss, test_accuracy = calculate_loss(model, X_test, y_test, with_penalty=False)
    print(f"test loss {{test_loss!r}}")
    print(f"test accuracy {{test_accuracy!r}}")
'''


def _optimizer_state(optimizer: str, names: list[str]) -> str:
    if optimizer == "gd":
        return ""
    zeros = ", ".join(f"'{n}': np.zeros_like({n})" for n in names)
    if optimizer == "momentum":
        return f"    v = {{{zeros}}}  # velocity\n"
    return f"    m = {{{zeros}}}\n    v = {{{zeros}}}\n    t = 0\n"


def run_script(config: RunConfig) -> str:
    """The standalone script for ``config`` (see the module docstring). Raises NotExpressible
    naming the field when part of the config cannot be written out."""
    d, m, t = config.dataset, config.model, config.training
    dataset_code = _dataset_code(config)
    n_layers = len(m.hidden_sizes) + 1
    n_classes = d.n_classes if d.kind == "blobs" else 2
    names = [f"{p}{k}" for k in range(1, n_layers + 1) for p in ("W", "b")]
    reg = t.regularization
    unpack = ", ".join(names) + " = " + ", ".join(f"model['{n}']" for n in names)
    if m.loss == "cross_entropy":
        data_loss = ["data_loss = float(-np.sum(np.log(probs[np.arange(len(y)), y])))"]
    else:
        data_loss = [
            "targets = np.zeros_like(probs)",
            "targets[np.arange(len(y)), y] = 1.0",
            "data_loss = float(0.5 * np.sum((probs - targets) * (probs - targets)))",
        ]
    sklearn = {"moons": "make_moons", "circles": "make_circles"}.get(d.kind)
    summary = (f"{d.kind}, hidden {list(m.hidden_sizes)} {m.activation}, {m.loss}, "
               f"{t.optimizer}, {t.iterations} steps")  # fmt: skip
    config_json = json.dumps(config.model_dump(mode="json"), indent=2)
    header = HEADER.format(
        summary=summary,
        config_json="\n".join(f"    {line}" for line in config_json.splitlines()),
        sklearn_import=f"from sklearn.datasets import {sklearn}\n" if sklearn else "",
    )
    body = BODY.format(
        dataset_code=dataset_code,
        n_classes=n_classes,
        feature_columns=", ".join(FEATURE_CODE[f] for f in m.features),
        unpack=unpack,
        forward_lines=_indent(_layer_lines(n_layers, m.activation, m.loss, "X"), 4),
        data_loss_lines=_indent(data_loss, 4),
        penalty=_penalty_code(n_layers, reg),
        optimizer_state=_optimizer_state(t.optimizer, names),
        train_forward=_indent(_layer_lines(n_layers, m.activation, m.loss, "X_batch"), 8),
        backprop=_indent(_backprop_lines(n_layers, m.activation, m.loss, reg), 8),
        update=_indent(_update_lines(n_layers, t.optimizer, reg), 8),
        model_dict=", ".join(f"'{n}': {n}" for n in names),
    )
    return header + "\n" + _settings(config) + body
