import pytest

from studio.errors import ModelNotAvailableError
from studio.models import catalog
from studio.models.resolve import estimate_parameters, read_model_config, resolve_backbone


def test_catalog_lists_bundled_first_and_known_hub_models():
    assert catalog.CATALOG[0].bundled and catalog.CATALOG[0].name == "all-MiniLM-L6-v2"
    for name in ("bert-base-uncased", "roberta-base", "deberta-v3-base", "bert-base-chinese", "xlm-roberta-base"):
        entry = catalog.find(name)
        assert entry and entry.license and entry.parameters > 0
    assert catalog.find("FacebookAI/roberta-base").name == "roberta-base"
    assert catalog.find("nope") is None


def test_bundled_encoder_resolves_offline():
    resolved = resolve_backbone("all-MiniLM-L6-v2")
    assert resolved.source in ("bundled", "cache")
    assert resolved.model_type == "bert"
    assert read_model_config(resolved.path)["hidden_size"] == 384


def test_parameter_estimate_matches_minilm():
    resolved = resolve_backbone("sentence-transformers/all-MiniLM-L6-v2")
    estimate = estimate_parameters(read_model_config(resolved.path))
    assert 20e6 < estimate < 25e6


def test_unavailable_model_names_the_offline_choices():
    with pytest.raises(ModelNotAvailableError) as info:
        resolve_backbone("roberta-base")
    message = str(info.value)
    assert "roberta-base is not in the local cache and the hub cannot be reached" in message
    assert "all-MiniLM-L6-v2" in message


def test_local_folder_and_allowed_roots(tiny_encoder, tmp_path):
    assert resolve_backbone(str(tiny_encoder)).source == "local"
    assert resolve_backbone(str(tiny_encoder), allowed_roots=[tiny_encoder.parent]).source == "local"
    with pytest.raises(ModelNotAvailableError, match="outside the folders an admin allowed"):
        resolve_backbone(str(tiny_encoder), allowed_roots=[tmp_path / "models"])
    with pytest.raises(ModelNotAvailableError, match="does not exist"):
        resolve_backbone(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotAvailableError, match="no config.json"):
        resolve_backbone(str(tmp_path / "empty"))
