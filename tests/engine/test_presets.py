"""Presets: the article's remark about hand-made features, with numbers."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from boundarylab.engine.config import Limits, RunConfig
from boundarylab.engine.presets import ARTICLE, FEATURE_CONTRAST, PRESETS
from boundarylab.engine.training import Trainer


def _final_accuracy(config: RunConfig) -> float:
    trainer = Trainer(config)
    trainer.advance(trainer.total)
    return trainer.report().train_accuracy


def test_no_hidden_layer_fails_on_circles_unless_given_squared_features() -> None:
    # At the defaults otherwise: learning rate 0.01, λ = 0.01 (L2), 20000 full-batch steps;
    # the circles' noise is 0.1 (see presets.py for why).
    without, with_squares = (PRESETS[name].config() for name in FEATURE_CONTRAST)
    assert without.model.hidden_sizes == with_squares.model.hidden_sizes == []
    assert without.dataset == with_squares.dataset and without.training == RunConfig().training
    assert set(with_squares.model.features) - set(without.model.features) == {"x1_sq", "x2_sq"}
    assert _final_accuracy(without) <= 0.75
    assert _final_accuracy(with_squares) >= 0.95


def test_every_preset_is_a_valid_config_and_the_article_is_the_default() -> None:
    for preset in PRESETS.values():
        assert (
            preset.config().model_dump() == RunConfig.model_validate(preset.sections).model_dump()
        )
        assert preset.title and preset.description
    assert ARTICLE.config() == RunConfig()


def test_a_preset_validates_against_a_deployments_limits() -> None:
    with pytest.raises(ValidationError, match="this server's limit"):
        ARTICLE.config(Limits(max_iterations=1000))
