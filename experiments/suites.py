"""What a suite is: the trials of one paper experiment, as the launcher and the analysis see them.

A suite file (`experiments/suites/NAME.yaml`) expands into trials; each trial carries the params
logged to MLflow (the suite's axis names), the complete configs to train and its resources.
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class Trial:
    name: str  # unique in the suite and stable across launches, e.g. 'lambda0=7.0,anneal=true,seed=0'
    params: dict  # every trial param of docs/mlflow-schema.md, nothing else
    configs: tuple  # mmengine Configs ready for prm_rga.train.make_runner; two for ensemble=separate
    resources: dict  # {'CPU': int, 'GPU': int}


@dataclass(frozen=True)
class Suite:
    name: str  # e.g. 'table4'
    path: str  # the YAML file it was read from
    description: str
    analysis: tuple  # what the analysis draws from it, e.g. ('table4',) or ('fig3',)
