"""What the Snakemake workflow catalog reads: config/README.md (every config key), .snakemake-workflow-catalog.yml,
and `snakefmt --check` on Snakefile and rules/*.smk.

The key tables of config/README.md are generated from config/schema.yaml (key, type, default, description);
after a schema change regenerate them with

    .venv/bin/python tests/test_catalog.py
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "config" / "schema.yaml"
CONFIG_README = REPO / "config" / "README.md"
BEGIN = "<!-- keys: generated from config/schema.yaml by `python tests/test_catalog.py`; do not edit by hand -->"
END = "<!-- end of generated keys -->"
SNAKEFILES = ["Snakefile", "rules"]


def schema_keys(node: dict, prefix: str = "") -> dict[str, dict]:
    """{dotted key: its schema} of every key, depth first; a mapping of free names (``models``) as ``<name>``."""
    keys = {}
    for name, sub in node.get("properties", {}).items():
        keys[prefix + name] = sub
        keys.update(schema_keys(sub, f"{prefix}{name}."))
    free = node.get("additionalProperties")
    if isinstance(free, dict):
        keys[prefix + "<name>"] = free
        keys.update(schema_keys(free, f"{prefix}<name>."))
    return keys


def _value(value) -> str:
    """A default as it is written in YAML flow style."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def _type(node: dict) -> str:
    types = node.get("type", "any")
    text = " or ".join(types) if isinstance(types, list) else types
    if "enum" in node:
        text += ": " + " \\| ".join(_value(v) for v in node["enum"])
    if "items" in node:
        text = "list of " + _type(node["items"])
    bounds = [
        f"{symbol} {node[key]}"
        for key, symbol in [("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="), ("exclusiveMaximum", "<")]
        if key in node
    ]
    return text + (" " + ", ".join(bounds) if bounds else "")


def _default(key: str, node: dict, schema: dict) -> str:
    if "default" in node:
        return f"`{_value(node['default'])}`"
    parent, _, name = key.rpartition(".")
    parent_node = schema_keys(schema).get(parent, schema) if parent else schema
    if name in parent_node.get("required", []):
        return "required"
    # top-level sections required while `experiments` lists them (the schema's allOf)
    for rule in schema.get("allOf", []):
        if rule.get("then", {}).get("required") == [key]:
            return "required when `experiments` lists it"
    return ""


def generated_tables(schema: dict) -> str:
    """One table per section (top level, then each object key with keys of its own)."""
    keys = schema_keys(schema)
    sections = [""] + [k for k, node in keys.items() if schema_keys(node)]
    out = []
    for section in sections:
        rows = [k for k in keys if k.rpartition(".")[0] == section]
        if not rows:
            continue
        out += [f"### {'`' + section + '`' if section else 'Top level'}", ""]
        out += ["| key | type | default | meaning |", "|---|---|---|---|"]
        for key in rows:
            node = keys[key]
            meaning = " ".join(node.get("description", "").split()).replace("|", "\\|")
            out.append(f"| `{key}` | {_type(node)} | {_default(key, node, schema)} | {meaning} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _schema() -> dict:
    return yaml.safe_load(SCHEMA.read_text())


def _generated_part(text: str) -> str:
    assert BEGIN in text and END in text, f"{CONFIG_README}: the markers of the generated key tables are missing"
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n") + "\n"


def test_config_readme_documents_every_schema_key():
    text = CONFIG_README.read_text()
    keys = schema_keys(_schema())
    assert len(keys) >= 70  # the walk reached the sections
    missing = [key for key in keys if f"`{key}`" not in text]
    assert not missing, f"config/README.md does not document {missing}: run `python tests/test_catalog.py`"
    documented = set(re.findall(r"^\| `([^`]+)` \|", text, re.MULTILINE))
    assert documented == set(keys), f"config/README.md documents keys the schema lacks: {documented - set(keys)}"


def test_config_readme_tables_are_the_schema():
    """Types, defaults and descriptions in config/README.md are those of config/schema.yaml."""
    assert _generated_part(CONFIG_README.read_text()) == generated_tables(_schema()), (
        "config/README.md is out of date with config/schema.yaml: run `python tests/test_catalog.py`"
    )


def test_every_schema_key_is_described():
    """The catalog shows config/README.md as the workflow's documentation: no key without a meaning."""
    undescribed = [k for k, node in schema_keys(_schema()).items() if not node.get("description")]
    assert not undescribed, f"config/schema.yaml: keys without a description: {undescribed}"


def test_catalog_settings():
    """.snakemake-workflow-catalog.yml as the catalog reads it (usage.mandatory-flags,
    usage.software-stack-deployment, usage.report), and what it claims holds."""
    settings = yaml.safe_load((REPO / ".snakemake-workflow-catalog.yml").read_text())
    usage = settings["usage"]
    assert set(usage) <= {"mandatory-flags", "software-stack-deployment", "report"}, usage
    stack = usage["software-stack-deployment"]
    assert set(stack) <= {"conda", "apptainer", "apptainer+conda", "singularity", "singularity+conda"}, stack
    assert all(isinstance(v, bool) for v in stack.values()) and any(stack.values()), stack
    if stack.get("conda"):  # every rule names a conda environment (checked in detail by tests/test_envs.py)
        rules = "".join(p.read_text() for p in (REPO / "rules").glob("*.smk"))
        assert rules.count("\n    conda:\n") == len(re.findall(r"^(?:rule|checkpoint) \w+:", rules, re.MULTILINE))
    if usage.get("report"):
        assert re.search(r"^report: ", (REPO / "Snakefile").read_text(), re.MULTILINE)
    # The catalog lists repositories whose README names Snakemake and a workflow.
    readme = (REPO / "README.md").read_text().lower()
    assert "snakemake" in readme and "workflow" in readme


def test_snakefiles_are_snakefmt_clean():
    """snakefmt (settings in pyproject.toml [tool.snakefmt]) would change nothing; `snakefmt Snakefile rules/`
    formats them."""
    proc = subprocess.run(
        [sys.executable, "-m", "snakefmt", "--check", "--diff", *SNAKEFILES],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, f"snakefmt would reformat (run `snakefmt Snakefile rules/`):\n{proc.stdout[-4000:]}"


if __name__ == "__main__":
    text = CONFIG_README.read_text()
    before, after = text.split(BEGIN, 1)[0], text.split(END, 1)[1]
    CONFIG_README.write_text(f"{before}{BEGIN}\n\n{generated_tables(_schema())}\n{END}{after}")
    print(f"wrote {CONFIG_README}")
