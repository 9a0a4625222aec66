"""RunLogger: metrics.jsonl / metrics.csv, TensorBoard event files read back, W&B through a fake module."""

from __future__ import annotations

import csv
import json
import struct
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from wqmix.errors import ConfigError
from wqmix.loggers import CSV_COLUMNS, TENSORBOARD_TAGS, RunLogger, check_logger_dependencies


def make_row(seed: int, env_steps: int, **extra) -> dict:
    """A row shaped like wqmix.driver.chunk_rows makes, with a few None values (no update yet)."""
    row = {
        "seed": seed, "env_steps": env_steps, "episodes": env_steps // 3, "updates": env_steps // 8,
        "wall_time": 1.25 + env_steps, "steps_per_s": 480.5, "epsilon": 0.75, "train_return": 2.5 + seed,
        "loss": 0.125 * (seed + 1), "qmix_loss": None, "central_loss": 0.0625, "mean_weight": 0.3,
        "grad_norm": 1.5, "q_taken_mean": -0.25, "target_mean": 0.5, "td_error_abs": None,
    }
    row.update(extra)
    return row


def read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))


# -- JSONL and CSV ---------------------------------------------------------------------------------

def test_csv_header_order_extras_and_none(tmp_path):
    rows = [make_row(0, 10, zeta=1, alpha="x"), make_row(1, 11, test_return=3.5)]
    with RunLogger(tmp_path) as logger:
        logger.log(rows)
    lines = read_csv(tmp_path / "metrics.csv")
    assert lines[0] == [*CSV_COLUMNS, "alpha", "zeta"]
    assert len(lines) == 3
    first = dict(zip(lines[0], lines[1]))
    assert first["seed"] == "0" and first["env_steps"] == "10"
    assert first["qmix_loss"] == "" and first["td_error_abs"] == ""  # None -> empty cell
    assert first["test_return"] == "" and first["train_win_rate"] == ""  # absent -> empty cell
    assert first["alpha"] == "x" and first["zeta"] == "1"
    assert float(first["train_return"]) == 2.5 and float(first["wall_time"]) == 11.25
    second = dict(zip(lines[0], lines[2]))
    assert float(second["test_return"]) == 3.5 and second["alpha"] == "" and second["zeta"] == ""


def test_jsonl_lines_parse_back_equal(tmp_path):
    chunks = [[make_row(0, 10), make_row(1, 12)], [make_row(0, 20, test_win_rate=0.5), make_row(1, 21)]]
    with RunLogger(tmp_path) as logger:
        for rows in chunks:
            logger.log(rows)
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [row for rows in chunks for row in rows]


def test_resume_appends_with_one_header(tmp_path):
    with RunLogger(tmp_path) as logger:
        logger.log([make_row(0, 10, extra_b=1.0), make_row(1, 10, extra_b=2.0)])
    with RunLogger(tmp_path, resume=True) as logger:
        with pytest.warns(RuntimeWarning, match="new_key"):
            logger.log([make_row(0, 20, new_key=5), make_row(1, 20)])
    lines = read_csv(tmp_path / "metrics.csv")
    assert lines[0] == [*CSV_COLUMNS, "extra_b"]
    assert sum(line == lines[0] for line in lines) == 1
    assert [line[1] for line in lines[1:]] == ["10", "10", "20", "20"]  # env_steps, in order
    assert all(len(line) == len(lines[0]) for line in lines)
    jsonl = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["env_steps"] for r in jsonl] == [10, 10, 20, 20]
    assert jsonl[2]["new_key"] == 5  # not a CSV column, still in the JSONL

    # Without resume the files start again.
    with RunLogger(tmp_path) as logger:
        logger.log([make_row(3, 5)])
    lines = read_csv(tmp_path / "metrics.csv")
    assert lines[0] == list(CSV_COLUMNS) and len(lines) == 2 and lines[1][0] == "3"
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 1


def test_resume_drops_a_torn_last_line(tmp_path):
    with RunLogger(tmp_path) as logger:
        logger.log([make_row(0, 10)])
    for name in ("metrics.csv", "metrics.jsonl"):
        with open(tmp_path / name, "a") as f:
            f.write("0,20,half a li")  # a kill in mid-write
    with RunLogger(tmp_path, resume=True) as logger:
        logger.log([make_row(0, 30)])
    lines = read_csv(tmp_path / "metrics.csv")
    assert [line[1] for line in lines[1:]] == ["10", "30"]
    assert [json.loads(line)["env_steps"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()] == [10, 30]


def test_log_rejects_rows_without_seed_or_steps_and_after_close(tmp_path):
    logger = RunLogger(tmp_path)
    with pytest.raises(ValueError, match="env_steps"):
        logger.log([{"seed": 0, "loss": 1.0}])
    logger.close()
    logger.close()  # twice is fine
    with pytest.raises(RuntimeError, match="close"):
        logger.log([make_row(0, 1)])


# -- TensorBoard -----------------------------------------------------------------------------------

def read_events(logdir: Path) -> list[tuple[int, str, float]]:
    """(step, tag, value) of every scalar in the event files of `logdir`: TFRecord framing
    (u64 length, u32 masked crc of it, data, u32 masked crc of data), checked, then Event protos."""
    from tensorboardX.proto import event_pb2
    from tensorboardX.record_writer import masked_crc32c

    out = []
    files = sorted(logdir.glob("events.out.tfevents.*"))
    assert files, f"no event file in {logdir}"
    for path in files:
        data = path.read_bytes()
        pos = 0
        while pos < len(data):
            header = data[pos:pos + 8]
            (length,) = struct.unpack("<Q", header)
            (header_crc,) = struct.unpack("<I", data[pos + 8:pos + 12])
            assert header_crc == masked_crc32c(header)
            body = data[pos + 12:pos + 12 + length]
            (body_crc,) = struct.unpack("<I", data[pos + 12 + length:pos + 16 + length])
            assert len(body) == length and body_crc == masked_crc32c(body)
            pos += 16 + length
            event = event_pb2.Event.FromString(body)
            out.extend((event.step, v.tag, v.simple_value) for v in event.summary.value)
    return out


def test_tensorboard_events_read_back_per_seed(tmp_path):
    chunks = [[make_row(0, 100, my_stat=3), make_row(1, 104, train_win_rate=0.25)],
              [make_row(0, 200, test_return=7.0, my_stat=4), make_row(1, 203, train_win_rate=0.5)]]
    with RunLogger(tmp_path, tensorboard=True) as logger:
        logger.log(chunks[0])
        # flushed per log call: readable before the next chunk and before close()
        assert {step for step, _, _ in read_events(tmp_path / "tensorboard" / "seed_0")} == {100}
        logger.log(chunks[1])
    assert sorted(p.name for p in (tmp_path / "tensorboard").iterdir()) == ["seed_0", "seed_1"]
    for seed in (0, 1):
        got = read_events(tmp_path / "tensorboard" / f"seed_{seed}")
        expected = []
        for row in (rows[seed] for rows in chunks):
            for key, value in row.items():
                if key in ("seed", "env_steps") or value is None:
                    continue
                tag = TENSORBOARD_TAGS.get(key, f"extra/{key}")
                expected.append((row["env_steps"], tag, float(np.float32(value))))
        assert sorted(got) == sorted(expected)
    tags = {tag for _, tag, _ in read_events(tmp_path / "tensorboard" / "seed_0")}
    assert {"train/return", "loss/total", "loss/central", "learner/grad_norm", "train/epsilon",
            "test/return", "extra/my_stat"} <= tags
    assert "loss/qmix" not in tags  # None is not logged
    assert "train/win_rate" in {tag for _, tag, _ in read_events(tmp_path / "tensorboard" / "seed_1")}


def test_tensorboard_resume_keeps_old_events_and_fresh_start_clears_them(tmp_path):
    seed_dir = tmp_path / "tensorboard" / "seed_0"
    with RunLogger(tmp_path, tensorboard=True) as logger:
        logger.log([make_row(0, 100)])
    with RunLogger(tmp_path, tensorboard=True, resume=True) as logger:  # same second: a second file
        logger.log([make_row(0, 200)])
    assert len(list(seed_dir.glob("events.out.tfevents.*"))) == 2
    assert {step for step, tag, _ in read_events(seed_dir) if tag == "train/return"} == {100, 200}
    with RunLogger(tmp_path, tensorboard=True) as logger:
        logger.log([make_row(0, 50)])
    assert {step for step, tag, _ in read_events(seed_dir) if tag == "train/return"} == {50}


def test_tensorboardx_missing_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    with pytest.raises(ConfigError, match=r"log\.tensorboard.*pip install tensorboardX"):
        RunLogger(tmp_path / "run", tensorboard=True)
    assert not (tmp_path / "run").exists()  # failed before touching anything
    with pytest.raises(ConfigError, match="tensorboardX"):
        check_logger_dependencies(tensorboard=True, wandb=False)
    check_logger_dependencies(tensorboard=False, wandb=False)


# -- Weights & Biases ------------------------------------------------------------------------------

class FakeRun:
    def __init__(self, calls: list, kwargs: dict):
        self.calls, self.kwargs = calls, kwargs

    def define_metric(self, name, step_metric=None, **kwargs):
        self.calls.append(("define_metric", name, step_metric))

    def log(self, data, step=None, commit=None):
        self.calls.append(("log", dict(data), step))

    def finish(self, exit_code=None):
        self.calls.append(("finish", exit_code))


@pytest.fixture
def fake_wandb(monkeypatch):
    module = types.ModuleType("wandb")
    module.calls = []

    def init(**kwargs):
        module.calls.append(("init", kwargs))
        return FakeRun(module.calls, kwargs)

    module.init = init
    monkeypatch.setitem(sys.modules, "wandb", module)
    return module


def test_wandb_one_offline_run_with_per_seed_step_metrics(tmp_path, fake_wandb):
    out = tmp_path / "my-run"
    config = {"seed": 0, "algo": {"name": "ow-qmix"}}
    with RunLogger(out, wandb=True, wandb_project="proj", config_dict=config) as logger:
        logger.log([make_row(0, 100), make_row(1, 104)])
        logger.log([make_row(0, 200), make_row(1, 201, test_return=9.0)])
    calls = fake_wandb.calls
    assert [c[0] for c in calls].count("init") == 1
    init = calls[0][1]
    assert init["mode"] == "offline" and init["project"] == "proj" and init["config"] == config
    assert init["group"] == "my-run" and init["dir"] == str(out) and init["resume"] is None
    assert (out / "wandb_run_id.txt").read_text().strip() == init["id"]

    defines = [c[1:] for c in calls if c[0] == "define_metric"]
    assert defines == [("seed_0/env_steps", None), ("seed_0/*", "seed_0/env_steps"),
                       ("seed_1/env_steps", None), ("seed_1/*", "seed_1/env_steps")]  # once per seed
    logs = [c[1] for c in calls if c[0] == "log"]
    assert len(logs) == 2  # one wandb row per chunk
    assert logs[0]["seed_0/env_steps"] == 100 and logs[0]["seed_1/env_steps"] == 104
    assert logs[1]["seed_0/env_steps"] == 200 and logs[1]["seed_1/env_steps"] == 201
    assert logs[0]["seed_1/train/return"] == 3.5 and logs[1]["seed_1/test/return"] == 9.0
    assert logs[0]["seed_0/loss/total"] == 0.125 and logs[0]["seed_1/loss/total"] == 0.25
    assert "seed_0/loss/qmix" not in logs[0]  # None is not logged
    assert calls[-1] == ("finish", None)
    # every logged key after the per-seed prefix is a TensorBoard tag (or env_steps)
    assert {k.split("/", 1)[1] for k in logs[0]} <= {"env_steps", *TENSORBOARD_TAGS.values()}


def test_wandb_resume_reuses_the_run_id_and_error_exit_code(tmp_path, fake_wandb):
    with RunLogger(tmp_path, wandb=True, wandb_mode="disabled") as logger:
        logger.log([make_row(0, 10)])
    first = fake_wandb.calls[0][1]
    assert first["mode"] == "disabled"
    fake_wandb.calls.clear()
    with pytest.raises(KeyError):
        with RunLogger(tmp_path, wandb=True, resume=True):
            raise KeyError("boom")
    init = fake_wandb.calls[0][1]
    assert init["id"] == first["id"] and init["resume"] == "allow"
    assert fake_wandb.calls[-1] == ("finish", 1)


def test_wandb_missing_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)
    with pytest.raises(ConfigError, match=r"log\.wandb.*pip install wandb"):
        RunLogger(tmp_path / "run", wandb=True)
    assert not (tmp_path / "run").exists()
    with pytest.raises(ConfigError, match="wandb"):
        check_logger_dependencies(tensorboard=False, wandb=True)
