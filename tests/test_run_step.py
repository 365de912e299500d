"""The rules' one adapter (workflow_scripts/run_step.py and scsynth_core.steps.call_step): a rule's named inputs,
outputs and params become the keyword arguments of the step it names, and every rule that uses it names a step
that takes those names."""

from __future__ import annotations

import inspect
import re
import runpy
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from scsynth_core.errors import ConfigError
from scsynth_core.steps import by_group, by_name, concat_tables, import_step, named_files, step_arguments

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "workflow_scripts" / "run_step.py"


class Files(list):
    """A rule's input or output files as Snakemake gives them: a list with named single files or slices."""

    def __init__(self, named: dict, unnamed: tuple = ()):
        super().__init__()
        self._names = {}
        for name, value in named.items():
            start = len(self)
            self.extend([value] if isinstance(value, str) else value)
            self._names[name] = (start, len(self), isinstance(value, str))
        self.extend(unnamed)

    def items(self):
        for name, (start, end, single) in self._names.items():
            yield name, self[start] if single else self[start:end]


def _step(a, b, *, c=1, threads=None):
    return a, b, c, threads


def test_step_arguments_merge_inputs_outputs_and_params_and_add_threads_only_where_taken():
    kwargs = step_arguments(_step, {"a": "in.tsv"}, {"b": ["x", "y"]}, {"c": 3}, threads=2)
    assert kwargs == {"a": "in.tsv", "b": ["x", "y"], "c": 3, "threads": 2}
    assert "threads" not in step_arguments(concat_tables, {"inputs": []}, {"output": "o"}, {}, threads=2)


def test_a_name_twice_or_one_the_step_lacks_is_a_config_error_naming_it():
    with pytest.raises(ConfigError, match=r"_step: argument\(s\) \['a'\] given twice"):
        step_arguments(_step, {"a": "x"}, {"a": "y"}, {})
    with pytest.raises(ConfigError, match=r"_step: no argument\(s\) \['d'\]"):
        step_arguments(_step, {"a": "x"}, {"b": "y"}, {"d": 1})


def test_named_files_keep_lists_and_refuse_a_file_without_a_name():
    files = Files({"one": "a.tsv", "many": ["b.tsv", "c.tsv"], "none": []})
    assert named_files(files, what="input") == {"one": "a.tsv", "many": ["b.tsv", "c.tsv"], "none": []}
    with pytest.raises(ConfigError, match=r"1 input file\(s\) without a name"):
        named_files(Files({"one": "a.tsv"}, unnamed=("b.tsv",)), what="input")


def test_import_step_and_by_name():
    assert import_step("scsynth_core.steps:concat_tables") is concat_tables
    for spec in ("scsynth_core.steps.concat_tables", "scsynth_core.steps:nope"):
        with pytest.raises(ConfigError, match="step 'scsynth_core.steps"):
            import_step(spec)
    assert by_name(["x", "y"], ["a", "b"], what="files") == {"a": "x", "b": "y"}
    assert by_name({"a": "x"}, None, what="files") == {"a": "x"}
    with pytest.raises(ConfigError, match=r"files: 1 file\(s\) for 2 name\(s\)"):
        by_name(["x"], ["a", "b"], what="files")


def test_by_group_gathers_each_groups_files_in_order():
    assert by_group(["x", "y", "z"], ["b", "a", "b"], what="runs") == {"b": ["x", "z"], "a": ["y"]}
    assert by_group({"a": ("x", "y")}, None, what="runs") == {"a": ["x", "y"]}
    with pytest.raises(ConfigError, match=r"runs: 2 file\(s\) for 1 group name\(s\)"):
        by_group(["x", "y"], ["a"], what="runs")
    with pytest.raises(ConfigError, match="runs: a list of files needs the group of each"):
        by_group(["x"], None, what="runs")


def _job(tmp_path, step, inputs, outputs, **params):
    log = tmp_path / "logs" / "job.log"
    return log, SimpleNamespace(
        input=Files(inputs),
        output=Files(outputs),
        params=SimpleNamespace(step=step, items=lambda: {"step": step, **params}.items()),
        threads=1,
        rule="demo",
        log=[str(log)],
    )


def test_the_script_runs_the_named_step_with_the_rules_names(tmp_path):
    parts = []
    for i in range(2):
        parts.append(tmp_path / f"part{i}.tsv")
        pd.DataFrame({"x": [i, i + 10]}).to_csv(parts[-1], sep="\t", index=False)
    out = tmp_path / "all.tsv"
    log, job = _job(tmp_path, "scsynth_core.steps:concat_tables", {"inputs": list(map(str, parts))},
                    {"output": str(out)})  # fmt: skip
    runpy.run_path(str(SCRIPT), init_globals={"snakemake": job})
    assert pd.read_csv(out, sep="\t")["x"].tolist() == [0, 10, 1, 11]
    # A name the step does not take: status 1, the one-line message in the job's log.
    log, job = _job(tmp_path, "scsynth_core.steps:concat_tables", {"inputs": [str(parts[0])]},
                    {"output": str(out)}, sep=",")  # fmt: skip
    with pytest.raises(SystemExit):
        runpy.run_path(str(SCRIPT), init_globals={"snakemake": job})
    assert "concat_tables: no argument(s) ['sep']" in log.read_text()


def _rules_using_the_adapter():
    """``{rule: (step, names)}`` of every rule (or checkpoint) calling run_step.py, its input/output/params names
    read from the rule file (names from ``**helper()`` or ``unpack()`` are the helpers' own and not read here)."""
    found = {}
    for path in sorted((REPO / "rules").glob("*.smk")):
        for block in re.split(r"\n(?=(?:rule|checkpoint) \w+:)", path.read_text()):
            head = re.match(r"(?:rule|checkpoint) (\w+):", block)
            if not head or "workflow_scripts/run_step.py" not in block:
                continue
            names, section = set(), None
            for line in block.splitlines()[1:]:
                directive = re.match(r"    (\w+):", line)
                if directive:
                    section = directive.group(1)
                    continue
                name = re.match(r"        (\w+)=", line)
                if name and section in ("input", "output", "params"):
                    names.add(name.group(1))
            step = re.search(r'step="([^"]+)"', block).group(1)
            found[head.group(1)] = (step, names - {"step"})
    return found


def test_every_rule_names_a_step_that_takes_its_names():
    rules = _rules_using_the_adapter()
    assert {"train_model", "evaluate_realism", "evaluate_augmentation", "actinn_summary"} <= set(rules)
    assert {"perturbation_lowest_delta_h", "disentanglement_code_figures", "pilot_figures"} <= set(rules)
    for rule, (spec, names) in rules.items():
        parameters = inspect.signature(import_step(spec)).parameters
        assert names <= set(parameters), (rule, spec, sorted(names - set(parameters)))
        required = {n for n, p in parameters.items() if p.default is inspect.Parameter.empty}
        assert required <= names, (rule, sorted(required - names))


def test_every_rule_runs_the_one_adapter():
    """No rule has a script of its own: every `script:` is run_step.py, and it is the only workflow script."""
    scripts = re.findall(r"^    script:\n        \"([^\"]+)\"", "\n".join(p.read_text() for p in (REPO / "rules").glob("*.smk")),
                         re.MULTILINE)  # fmt: skip
    assert scripts and set(scripts) == {"../workflow_scripts/run_step.py"}
    assert [p.name for p in (REPO / "workflow_scripts").glob("*.py")] == ["run_step.py"]
