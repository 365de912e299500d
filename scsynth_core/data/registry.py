"""The dataset registry (``config/datasets.yaml``): loading, validation, downloads and raw AnnData.

A registry maps a dataset name to where its cells come from:

* ``source: bundled`` -- real cells shipped inside a Python package (:mod:`scsynth_core.data.bundled`);
* ``source: url`` -- public files (``files: {key: {url, sha256, format, ...}}``), one of which (``counts``) holds
  the counts, optionally joined with a label table (``labels``);
* ``source: local`` -- a file or folder on disk (``path`` + ``format``).

:func:`load_registry` validates the YAML against ``datasets.schema.yaml`` (next to it) and fills defaults;
:func:`fetch_dataset_files` downloads a url dataset and writes a manifest; :func:`load_raw_dataset` builds the
raw-count AnnData every later step starts from.
"""

from __future__ import annotations

import copy
import logging
import os
import posixpath
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from scsynth_core.atomic import write_json, write_text
from scsynth_core.errors import ConfigError, DataError

if TYPE_CHECKING:
    import anndata as ad

logger = logging.getLogger(__name__)

#: Name of the manifest :func:`fetch_dataset_files` writes last into its destination folder.
MANIFEST_NAME = "manifest.json"


# --------------------------------------------------------------------------------------------- loading


def _read_yaml(path: Path, what: str) -> Any:
    import yaml

    if not path.is_file():
        raise ConfigError(f"{path}: {what} not found")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ConfigError(f"{path}: not valid YAML ({problem}{where})") from None


def _error_line(path: Path, error) -> str:
    """One line naming the file, the dataset and the key path of a jsonschema error."""
    parts = [str(p) for p in error.absolute_path]
    message = error.message
    if error.validator == "pattern" and parts and parts[-1] == "url":
        message = f"{error.instance!r} is not an http(s) URL"
    elif error.validator == "pattern" and parts and parts[-1] == "sha256":
        message = f"{error.instance!r} is not a 64-character hex SHA-256 digest"
    elif "propertyNames" in error.schema_path:
        message = f"{error.instance!r} is not a valid name (letters, digits and _, starting with a letter)"
    if not parts:
        return f"{path}: {message}"
    if len(parts) == 1:
        return f"{path}: dataset '{parts[0]}': {message}"
    return f"{path}: dataset '{parts[0]}': {'.'.join(parts[1:])}: {message}"


def _schema_defaults(schema: dict, name: str) -> dict[str, Any]:
    props = schema["$defs"][name]["properties"]
    return {key: prop["default"] for key, prop in props.items() if "default" in prop}


def load_registry(path: str | os.PathLike) -> dict[str, dict]:
    """Read, validate and complete a dataset registry.

    Parameters
    ----------
    path
        The registry YAML; its schema ``datasets.schema.yaml`` must sit in the same folder.

    Returns
    -------
    ``{dataset name: spec}`` with schema defaults filled in (``label_key``, ``recipe``, ``recipe_params``,
    ``papers``, ``sections``, ``description``, per file ``sha256``, ``size`` and ``options``).

    Raises
    ------
    ConfigError
        Missing file, invalid YAML, or a schema violation; the message names the file, the dataset and the
        key, e.g. ``config/datasets.yaml: dataset 'pbmc4k': files.matrix.url: 'x' is not an http(s) URL``.
    """
    import jsonschema

    path = Path(path)
    schema_path = path.with_name("datasets.schema.yaml")
    schema = _read_yaml(schema_path, "registry schema")
    registry = _read_yaml(path, "dataset registry")
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(registry), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        more = f" (and {len(errors) - 1} more error(s))" if len(errors) > 1 else ""
        raise ConfigError(_error_line(path, errors[0]) + more)

    dataset_defaults = _schema_defaults(schema, "dataset")
    file_defaults = _schema_defaults(schema, "file")
    completed: dict[str, dict] = {}
    for name, spec in registry.items():
        spec = {**copy.deepcopy(dataset_defaults), **spec}
        if spec["source"] in ("url", "local"):
            spec.setdefault("options", {})
        if "files" in spec:
            spec["files"] = {k: {**copy.deepcopy(file_defaults), "options": {}, **f} for k, f in spec["files"].items()}
        _check_references(path, name, spec)
        completed[name] = spec
    return completed


def _check_references(path: Path, name: str, spec: dict) -> None:
    """Cross-key checks the schema cannot express: keys that must name an entry of ``files``."""
    prefix = f"{path}: dataset '{name}'"
    unknown = sorted(set(spec.get("sections", {})) - set(spec.get("papers", [])))
    if unknown:
        raise ConfigError(f"{prefix}: sections: paper(s) {', '.join(unknown)} not listed in papers")
    if spec["source"] != "url":
        return
    files = spec["files"]
    known = ", ".join(files)
    if spec["counts"] not in files:
        raise ConfigError(f"{prefix}: counts: {spec['counts']!r} is not a key of files (known: {known})")
    labels = spec.get("labels")
    if labels and labels["file"] not in files:
        raise ConfigError(f"{prefix}: labels.file: {labels['file']!r} is not a key of files (known: {known})")
    names: dict[str, str] = {}
    for key, f in files.items():
        for option, value in f["options"].items():
            if option.endswith("_file") and value not in files:
                raise ConfigError(
                    f"{prefix}: files.{key}.options.{option}: {value!r} is not a key of files (known: {known})"
                )
        filename = local_filename(f)
        if not filename:
            raise ConfigError(f"{prefix}: files.{key}: the URL has no file name; set filename:")
        if filename in names:
            raise ConfigError(f"{prefix}: files.{key}: file name {filename!r} is also used by files.{names[filename]}")
        names[filename] = key


def get_dataset(registry: dict[str, dict], name: str) -> dict:
    """The spec of dataset ``name``.

    Raises
    ------
    ConfigError
        ``name`` is not in the registry (the message lists the known datasets).
    """
    if name not in registry:
        raise ConfigError(f"dataset '{name}' is not in the registry (known: {', '.join(sorted(registry))})")
    return registry[name]


def local_filename(file_spec: dict) -> str:
    """Local file name of a registry file entry: ``filename`` if set, else the URL path's last segment."""
    if file_spec.get("filename"):
        return file_spec["filename"]
    url_path = urllib.parse.urlparse(file_spec["url"]).path
    return urllib.parse.unquote(posixpath.basename(url_path))


# --------------------------------------------------------------------------------------------- downloads


def fetch_dataset_files(
    name: str, spec: dict, dest_dir: str | os.PathLike, *, progress: bool = True
) -> dict[str, Path]:
    """Download every file of a ``source: url`` dataset and record its digest.

    Next to each file a ``<file>.sha256`` (``sha256sum`` format) is written; a file without a pinned digest
    in the registry is logged as unpinned. Last, ``dest_dir/manifest.json`` maps every file key to
    ``{path, url, sha256, pinned}`` (``path`` = ``dest_dir/<file name>`` as given), written atomically so its
    presence means every download completed.

    Parameters
    ----------
    name
        Dataset name (for messages).
    spec
        Its registry entry (from :func:`load_registry`).
    dest_dir
        Folder for the downloads.
    progress
        Show progress bars.

    Returns
    -------
    ``{file key: local path}``.
    """
    from scsynth_core.data.download import download

    if spec.get("source") != "url":
        raise ConfigError(
            f"dataset '{name}': source is {spec.get('source')!r}; only 'url' datasets have files to fetch"
        )
    dest_dir = Path(dest_dir)
    paths: dict[str, Path] = {}
    manifest: dict[str, dict] = {}
    for key, f in spec["files"].items():
        filename = local_filename(f)
        dest = dest_dir / filename
        digest = download(f["url"], dest, sha256=f.get("sha256"), size=f.get("size"), progress=progress)
        write_text(dest.with_name(filename + ".sha256"), f"{digest}  {filename}\n")
        pinned = bool(f.get("sha256"))
        if not pinned:
            logger.warning(
                "dataset '%s': file '%s' (%s) has no pinned sha256 in the registry; got %s "
                "(recorded in %s.sha256; pin it to make the download verifiable)",
                name,
                key,
                f["url"],
                digest,
                filename,
            )
        paths[key] = dest
        manifest[key] = {"path": str(dest), "url": f["url"], "sha256": digest, "pinned": pinned}
    write_json(dest_dir / MANIFEST_NAME, manifest)
    return paths


def read_manifest(path: str | os.PathLike) -> dict[str, Path]:
    """``{file key: local path}`` from a manifest written by :func:`fetch_dataset_files`.

    Files are located by name next to the manifest, so the folder may be moved or read from another
    working directory.
    """
    import json

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: download manifest not found (run the download step first)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        return {key: path.parent / Path(entry["path"]).name for key, entry in manifest.items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DataError(f"{path}: not a valid download manifest ({type(exc).__name__}: {exc})") from None


# --------------------------------------------------------------------------------------------- raw data


def load_raw_dataset(
    name: str,
    spec: dict,
    *,
    files: dict[str, str | os.PathLike] | None = None,
    base_dir: str | os.PathLike = ".",
) -> ad.AnnData:
    """Build the raw-count AnnData of a registry dataset.

    Parameters
    ----------
    name
        Dataset name (recorded and used in messages).
    spec
        Its registry entry.
    files
        ``{file key: local path}`` of a ``source: url`` dataset (from :func:`fetch_dataset_files` or
        :func:`read_manifest`).
    base_dir
        Folder a relative ``path`` of a ``source: local`` dataset is resolved against.

    Returns
    -------
    Cells x genes with raw counts in ``X`` (CSR, float32 or int32), unique ``var_names``, joined labels in
    ``obs`` and ``uns["scsynth_source"] = {dataset, source, files: {key: {path, url, sha256}}}`` (a local
    dataset records its path and digest, a bundled one its key).

    Raises
    ------
    ConfigError
        Missing file paths for a url dataset, unknown bundled key.
    DataError
        Unreadable files, no cell matching the label table, ``label_key`` absent, or counts that are negative,
        non-finite or non-integer.
    """
    from scsynth_core.data.checks import check_counts
    from scsynth_core.data.download import sha256sum
    from scsynth_core.data.io import counts_anndata, read_dataset_file

    source = spec["source"]
    record: dict[str, Any] = {"dataset": name, "source": source}
    if source == "bundled":
        adata = _load_bundled(name, spec["bundled"])
        record["bundled"] = spec["bundled"]
        where = f"dataset '{name}' (bundled '{spec['bundled']}')"
    elif source == "local":
        path = Path(base_dir) / spec["path"]
        adata = read_dataset_file(path, spec["format"], **spec.get("options", {}))
        digest = sha256sum(path) if path.is_file() else ""
        record["files"] = {"data": {"path": str(path), "sha256": digest}}
        where = f"dataset '{name}' ({path})"
    elif source == "url":
        local = _local_paths(name, spec, files)
        counts_spec = spec["files"][spec["counts"]]
        options = {
            opt: (local[value] if opt.endswith("_file") else value) for opt, value in counts_spec["options"].items()
        }
        adata = read_dataset_file(local[spec["counts"]], counts_spec["format"], **options)
        if spec.get("labels"):
            _join_labels(name, spec, adata, local)
        record["files"] = {
            key: {"path": str(local[key]), "url": spec["files"][key]["url"], "sha256": _recorded_digest(local[key])}
            for key in spec["files"]
        }
        where = f"dataset '{name}' ({local[spec['counts']]})"
    else:  # load_registry rejects this; a hand-built spec may not
        raise ConfigError(f"dataset '{name}': source must be bundled, url or local (got {source!r})")

    check_counts(adata.X, where=where)
    adata = counts_anndata(adata)
    label_key = spec.get("label_key")
    if label_key and label_key not in adata.obs.columns:
        available = ", ".join(map(str, adata.obs.columns)) or "none"
        raise DataError(f"{where}: label_key '{label_key}' is not an obs column (available: {available})")
    adata.uns["scsynth_source"] = record
    return adata


def _load_bundled(name: str, key: str) -> ad.AnnData:
    from scsynth_core.data.bundled import BUNDLED  # written alongside; imported only when needed

    if key not in BUNDLED:
        raise ConfigError(f"dataset '{name}': bundled: {key!r} is not a bundled dataset (known: {', '.join(BUNDLED)})")
    return BUNDLED[key]()


def _local_paths(name: str, spec: dict, files: dict | None) -> dict[str, Path]:
    if files is None:
        raise ConfigError(f"dataset '{name}': a url dataset needs its local file paths (run fetch_dataset_files first)")
    missing = [key for key in spec["files"] if key not in files]
    if missing:
        raise ConfigError(f"dataset '{name}': no local path given for file(s) {', '.join(missing)}")
    return {key: Path(p) for key, p in files.items()}


def _recorded_digest(path: Path) -> str:
    """The digest from ``<path>.sha256`` when present, else computed."""
    from scsynth_core.data.download import sha256sum

    sidecar = path.with_name(path.name + ".sha256")
    if sidecar.is_file():
        text = sidecar.read_text(encoding="utf-8").split()
        if text and len(text[0]) == 64:
            return text[0]
    return sha256sum(path) if path.is_file() else ""


def _join_labels(name: str, spec: dict, adata: ad.AnnData, local: dict[str, Path]) -> None:
    """Add the label column (and extra columns) of the label table to ``adata.obs`` by cell name."""
    labels = spec["labels"]
    table_path = local[labels["file"]]
    counts_path = local[spec["counts"]]
    lowered = table_path.name.lower().removesuffix(".gz")
    sep = labels.get("sep") or ("," if lowered.endswith(".csv") else "\t")
    if not table_path.is_file():
        raise DataError(f"{table_path}: label table not found")
    try:
        table = pd.read_csv(table_path, sep=sep, dtype=str)
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{table_path}: not a readable label table ({type(exc).__name__}: {exc})") from None
    extra = labels.get("extra_columns") or {}
    extra = {c: c for c in extra} if isinstance(extra, list) else dict(extra)
    wanted = [labels["index_column"], labels["column"], *extra.values()]
    absent = [c for c in wanted if c not in table.columns]
    if absent:
        raise DataError(
            f"{table_path}: column(s) {', '.join(absent)} not found (available: {', '.join(map(str, table.columns))})"
        )
    table = table[list(dict.fromkeys(wanted))].drop_duplicates()
    index = table[labels["index_column"]]
    if index.duplicated().any():
        dup = index[index.duplicated()].iloc[0]
        raise DataError(
            f"{table_path}: cell '{dup}' appears in several rows of '{labels['index_column']}' with different values"
        )
    table = table.set_index(labels["index_column"])
    matched = adata.obs_names.isin(table.index)
    if not matched.any():
        raise DataError(
            f"dataset '{name}': no cell of {counts_path} (e.g. '{adata.obs_names[0] if adata.n_obs else ''}') matches "
            f"a '{labels['index_column']}' value of {table_path} (e.g. '{table.index[0] if len(table) else ''}')"
        )
    if not matched.all():
        logger.warning(
            "dataset '%s': %d of %d cells have no row in %s; their labels are missing (NaN)",
            name,
            int((~matched).sum()),
            adata.n_obs,
            table_path,
        )
    aligned = table.reindex(adata.obs_names)
    target = spec.get("label_key") or labels["column"]
    adata.obs[target] = pd.Categorical(aligned[labels["column"]].to_numpy())
    for obs_name, column in extra.items():
        adata.obs[obs_name] = pd.Categorical(aligned[column].to_numpy())
