# The script of every rule that calls one library step (docs/development.md, "How a rule calls a step"): the step is
# the rule's `step` param ("package.module:function"); its keyword arguments are the rule's named inputs, outputs
# and other params, plus the job's threads when the step takes them.
from scsynth_core.steps import call_step, run_logged

params = {name: value for name, value in snakemake.params.items() if name != "step"}
run_logged(
    snakemake.log[0],
    call_step,
    step=snakemake.params.step,
    inputs=snakemake.input,
    outputs=snakemake.output,
    params=params,
    threads=snakemake.threads,
    rule=snakemake.rule,
)
