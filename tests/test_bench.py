"""`wqmix bench`: the workloads are the schedules the performance issue names; bad options fail."""

import pytest

from wqmix import config as cfg
from wqmix.bench import WORKLOADS, main


def test_workloads_have_the_named_schedules():
    configs = {name: cfg.validate(w.make_config("ow-qmix")) for name, w in WORKLOADS.items()}
    paper = configs["predator-prey-paper"]
    assert paper.env.name == "predator-prey" and paper.env.num_agents == 8
    assert (paper.train.num_envs, paper.train.updates_per_iteration, paper.train.batch_size,
            paper.train.buffer_size) == (1, 1, 32, 5000)
    fast = configs["predator-prey-fast"]
    assert (fast.train.num_envs, fast.train.updates_per_iteration) == (8, 1)
    assert configs["seeds-16"].num_seeds == 16 and configs["seeds-16"].train == paper.train
    mpe = configs["mpe-spread-jaxmarl"]
    assert (mpe.train.num_envs, mpe.network.agent_hidden, mpe.network.mixer_embed, mpe.network.hypernet_embed) == (
        8, 64, 32, 128)
    smax = configs["smax-3m-jaxmarl"]
    assert smax.env.map == "3m" and (smax.train.num_envs, smax.train.updates_per_iteration) == (16, 1)
    assert (smax.network.agent_hidden, smax.network.mixer_embed, smax.network.hypernet_embed) == (64, 32, 64)
    assert cfg.validate(WORKLOADS["matrix-game"].make_config("qmix")).algo.name == "qmix"


@pytest.mark.parametrize("argv, message", [
    (["--workload", "nope"], "--workload 'nope' is invalid: must be one of matrix-game"),
    (["--algo", "wqmix"], "--algo 'wqmix' is invalid: must be one of ow-qmix"),
    (["--json"], "--json needs a value"),
])
def test_bad_options(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err
