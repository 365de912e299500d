"""Checks of inputs a user hands over: label columns, model files, cell names and output paths."""

from __future__ import annotations

import logging

import pytest
import torch

from scsynth_core.data import checks
from scsynth_core.errors import DataError
from scsynth_core.models import get_model_class
from scsynth_core.models.base import GenerativeModel


def _upsample(demo, label_key: str | None = "bulk_labels"):
    model = get_model_class("upsample")("paper")
    model.fit(demo, label_key=label_key, progress=False)
    return model


# -- label columns --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("column", "message"),
    [
        ("percent_mito", r"obs\['percent_mito'\] holds non-integer numbers \(e\.g\. 0\.0\d+\)"),
        ("cell_id", r"obs\['cell_id'\] has a different value for each of its 700 cells"),
    ],
)
def test_label_column_that_cannot_hold_classes_is_rejected(demo, column, message):
    demo.obs["cell_id"] = [f"c{i}" for i in range(demo.n_obs)]
    with pytest.raises(DataError, match=r"^model 'upsample' training data: label column " + message):
        _upsample(demo, column)


def test_numeric_label_column_with_hundreds_of_values_warns_naming_it(demo, caplog):
    with caplog.at_level(logging.WARNING, logger="scsynth_core.data.checks"):
        model = _upsample(demo, "n_genes_all_genes")  # integer, 356 distinct values: accepted
    assert len(model.categories) == 356
    assert "obs['n_genes_all_genes'] is numeric with 356 distinct values" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="scsynth_core.data.checks"):
        _upsample(demo, "bulk_labels")  # ten cell types with 8 or more cells: no warning
    assert caplog.text == ""


def test_class_of_one_cell_warns_naming_it_and_what_a_conditional_model_does(demo, caplog):
    demo.obs["bulk_labels"] = demo.obs["bulk_labels"].cat.add_categories(["lonely"])
    demo.obs.iloc[3, demo.obs.columns.get_loc("bulk_labels")] = "lonely"
    with caplog.at_level(logging.WARNING, logger="scsynth_core.data.checks"):
        _upsample(demo)
    assert "class(es) 'lonely' of obs['bulk_labels'] have a single cell" in caplog.text
    assert "a conditional model learns each from that one cell" in caplog.text


# -- model files ----------------------------------------------------------------------------------------------
@pytest.fixture
def saved_upsample(tmp_path, demo):
    path = tmp_path / "model.pt"
    _upsample(demo).save(path)
    return path


def _tamper(path, change) -> None:
    payload = torch.load(path, weights_only=True)
    change(payload)
    torch.save(payload, path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: p.update(var_names=p["var_names"][:-1]), "lists 764 genes but its weights are for 765 genes"),
        (lambda p: p.update(categories=p["categories"][:-1]), "has 9 categories but 10 class frequencies"),
        (lambda p: p.pop("state"), "model file lacks state"),
        (lambda p: p.update(model="pca"), r"the saved weights do not fit model 'pca' \(KeyError: 'mean'\)"),
        (lambda p: p.update(params={"n_latent": "x", "depth": 3}), r"unknown hyperparameter\(s\) depth"),
    ],
)
def test_model_file_that_disagrees_with_itself_is_a_one_line_error_naming_it(saved_upsample, change, message):
    _tamper(saved_upsample, change)
    with pytest.raises(DataError, match=rf"^{saved_upsample}: .*{message}"):
        GenerativeModel.load(saved_upsample)


def test_neural_model_file_gene_count_is_checked_against_its_weights(tmp_path):
    payload = {key: None for key in checks.MODEL_FILE_KEYS} | {
        "model": "scgan",
        "params": {},
        "var_names": ["g1", "g2", "g3"],
        "state": {"n_genes": 5, "generator": {}},
    }
    with pytest.raises(DataError, match=r"model\.pt: model file lists 3 genes but its weights are for 5 genes"):
        checks.check_model_payload(payload, tmp_path / "model.pt")


def test_intact_model_file_loads(saved_upsample):
    model = GenerativeModel.load(saved_upsample)
    assert len(model.var_names) == 765 and len(model.categories) == 10


# -- cell names and output paths --------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:Observation names are not unique")
@pytest.mark.parametrize("backed", [False, True])
def test_repeated_cell_names_are_caught_on_reading_naming_the_file(tmp_path, demo, backed):
    demo.obs_names = [*demo.obs_names[:-2], demo.obs_names[0], demo.obs_names[1]]
    path = tmp_path / "dup.h5ad"
    demo.write_h5ad(path)
    with pytest.raises(
        DataError,
        match=rf"^{path}: 2 cell name\(s\) occur more than once in obs_names "
        rf"\(e\.g\. '{demo.obs_names[0]}', '{demo.obs_names[1]}'\)",
    ):
        checks.read_h5ad(path, backed=backed)


def test_output_path_checks(tmp_path, monkeypatch):
    blocker = tmp_path / "results.txt"
    blocker.write_text("a file, not a folder")
    with pytest.raises(DataError, match=rf"cannot write the output: {blocker} is a file, not a folder"):
        checks.check_output_path(blocker / "run" / "model.pt")
    with pytest.raises(DataError, match="output path is a folder"):
        checks.check_output_path(tmp_path)
    checks.check_output_path(tmp_path / "new" / "deeper" / "model.pt")  # folders to be created: fine
    assert not (tmp_path / "new").exists()
    # Root passes every permission check, so a folder without write permission is simulated.
    monkeypatch.setattr(checks.os, "access", lambda path, mode: path != tmp_path)
    with pytest.raises(DataError, match=rf"no write permission in folder {tmp_path}$"):
        checks.check_output_path(tmp_path / "new" / "model.pt")
