"""model.features over HTTP: unknown names, duplicates and an empty list are 422s naming
`features`; a valid list trains with one input column per feature."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient


@pytest.mark.parametrize(
    ("features", "words"),
    [
        (["x1", "x9"], "x9"),
        (["x1", "x2", "x1"], "x1 appears more than once"),
        ([], "at least 1"),
        ("x1,x2", "list"),
    ],
)
def test_bad_feature_lists_are_422_naming_features(
    fake_client: TestClient, features: object, words: str
) -> None:
    response = fake_client.post("/api/runs", json={"model": {"features": features}})
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert all(item["loc"][:3] == ["body", "model", "features"] for item in detail), detail
    assert words in response.text


def test_a_valid_feature_list_is_taken(fake_client: TestClient) -> None:
    body = {"model": {"features": ["x1", "x2", "x1_sq", "x2_sq"], "hidden_sizes": []}}
    response = fake_client.post("/api/runs", json=body)
    assert response.status_code == 201, response.text
    assert response.json()["config"]["model"]["features"] == body["model"]["features"]
