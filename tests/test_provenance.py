"""Provenance: what a run records of the code, tree and machine behind each call, how older runs
are read back, and which trials a report flags."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from wqmix.experiments.provenance import Code, flags, git_same_code, provenance_section, trial_provenance
from wqmix.experiments.results import Run, last_tests, with_last_tests
from wqmix.run_dir import PROVENANCE, git_provenance, other_checkout, read_provenance, record_provenance


def _git(repo, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True,
                   capture_output=True)


@pytest.fixture
def repo(tmp_path):
    """A checkout with a package (src/pkg), pyproject.toml and a results file, all committed."""
    (tmp_path / "src" / "pkg").mkdir(parents=True)
    (tmp_path / "src" / "pkg" / "code.py").write_text("x = 1\n")
    (tmp_path / "pyproject.toml").write_text("[project]\n")
    (tmp_path / "results.md").write_text("score 1\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "first")
    return tmp_path


def test_a_clean_checkout_is_neither_dirty_nor_code_dirty(repo):
    got = git_provenance(repo / "src" / "pkg")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    assert got == {"commit": head, "dirty": False, "code_dirty": False, "changed_files": [], "num_changed_files": 0}


def test_results_written_into_the_tree_make_it_dirty_but_not_the_code(repo):
    (repo / "results.md").write_text("score 2\n")
    got = git_provenance(repo / "src" / "pkg")
    assert got["dirty"] and not got["code_dirty"] and got["changed_files"] == ["results.md"]


@pytest.mark.parametrize("change", ["edit", "untracked", "pyproject"])
def test_a_change_to_the_package_or_pyproject_makes_the_code_dirty(repo, change):
    if change == "edit":
        (repo / "src" / "pkg" / "code.py").write_text("x = 2\n")
    elif change == "untracked":  # a new module not yet committed runs all the same
        (repo / "src" / "pkg" / "new.py").write_text("y = 1\n")
    else:
        (repo / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    got = git_provenance(repo / "src" / "pkg")
    assert got["code_dirty"] and got["dirty"] == (change != "untracked")


def test_outside_a_checkout_nothing_is_claimed(tmp_path_factory, repo):
    assert git_provenance(tmp_path_factory.mktemp("elsewhere"))["commit"] is None
    # An installed copy inside another repository's (ignored) virtual environment is not that repository's code.
    (repo / ".gitignore").write_text(".venv/\n")
    installed = repo / ".venv" / "site-packages" / "pkg"
    installed.mkdir(parents=True)
    (installed / "code.py").write_text("x = 1\n")
    assert git_provenance(installed) == {"commit": None, "dirty": None, "code_dirty": None, "changed_files": []}


def test_a_wqmix_checkout_whose_code_does_not_run_is_named_and_warned_about(repo, tmp_path_factory, monkeypatch,
                                                                           capsys):
    import wqmix
    from wqmix.cli import main

    def wqmix_checkout():
        top = tmp_path_factory.mktemp("clone")
        (top / "src" / "wqmix").mkdir(parents=True)
        (top / "src" / "wqmix" / "__init__.py").write_text("")
        _git(top, "init", "-q")
        _git(top, "add", ".")
        _git(top, "commit", "-q", "-m", "first")
        return top.resolve()

    here, other = wqmix_checkout(), wqmix_checkout()
    # An installed copy, in the other checkout's (ignored) virtual environment: perhaps this one's.
    (other / ".gitignore").write_text(".venv/\n")
    installed = other / ".venv" / "site-packages" / "wqmix"
    installed.mkdir(parents=True)
    assert other_checkout(here / "src", package=other / "src" / "wqmix") == here
    # Its own code, an installed copy, or a directory that is no wqmix checkout: nothing to say.
    assert other_checkout(here, package=here / "src" / "wqmix") is None
    assert other_checkout(here, package=installed) is None
    assert other_checkout(repo, package=other / "src" / "wqmix") is None
    assert other_checkout(tmp_path_factory.mktemp("plain"), package=other / "src" / "wqmix") is None
    # The command line says it once, for the commands whose results depend on the code.
    monkeypatch.setattr(wqmix, "__file__", str(other / "src" / "wqmix" / "__init__.py"))
    monkeypatch.chdir(here)
    assert main(["reproduce", "matrix-game", "--dry-run"]) == 0
    warning = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert warning == [f"warning: wqmix reproduce runs the code in {other / 'src' / 'wqmix'}, not this checkout's "
                       f"({here}); to run this checkout's, set PYTHONPATH={here / 'src'} or pip install -e {here}"]
    main(["table", str(here)])
    assert "warning:" not in capsys.readouterr().err


def _meta(path, commit, dirty, time):
    path.write_text(json.dumps({"start_time": time, "git": {"commit": commit, "dirty": dirty}}))


def test_a_run_from_before_the_provenance_file_is_read_from_its_meta_files_in_time_order(tmp_path):
    _meta(tmp_path / "meta-resume-1700000200.json", "c" * 40, True, "2026-12-02T03:00:00+00:00")
    _meta(tmp_path / "meta.json", "a" * 40, False, "2026-12-02T01:00:00+00:00")
    _meta(tmp_path / "meta-resume-1700000100.json", "b" * 40, False, "2026-12-02T02:00:00+00:00")
    records = read_provenance(tmp_path)
    assert [(r["event"], r["git"]["commit"][0]) for r in records] == [("train", "a"), ("resume", "b"), ("resume", "c")]
    assert all(r["reconstructed"] for r in records)
    trial = trial_provenance(tmp_path)
    # The last call wrote the summary; its tree differed, and whether in code is not known.
    assert trial.evaluated_on == Code("c" * 40, None) and trial.reconstructed
    assert flags(trial, Code("c" * 40, False)) == ["eval tree dirty?", "train tree dirty?", "eval != train"]


def test_the_first_record_of_an_older_run_keeps_its_history(tmp_path):
    _meta(tmp_path / "meta.json", "a" * 40, False, "2026-12-02T01:00:00+00:00")
    record_provenance(tmp_path, "evaluate", {"git": {"commit": "b" * 40, "dirty": False, "code_dirty": False}},
                      env_steps=100, file="eval-100.json")
    lines = [json.loads(line) for line in (tmp_path / PROVENANCE).read_text().splitlines()]
    assert [(r["event"], r["git"]["commit"][0]) for r in lines] == [("train", "a"), ("evaluate", "b")]
    assert lines[1]["file"] == "eval-100.json" and lines[1]["env_steps"] == 100
    # A fresh run has no history to carry: its first record is its own.
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    _meta(fresh / "meta.json", "a" * 40, False, "2026-12-02T01:00:00+00:00")
    record_provenance(fresh, "train", {"git": {"commit": "a" * 40, "dirty": False, "code_dirty": False}})
    assert len((fresh / PROVENANCE).read_text().splitlines()) == 1


def _record(path, event, commit, code_dirty, **details):
    record_provenance(path, event, {"git": {"commit": commit, "dirty": code_dirty, "code_dirty": code_dirty},
                                    "machine": {"hostname": "box"}}, **details)


def test_a_record_lists_the_package_modules_loaded_and_a_trial_their_union(tmp_path):
    import wqmix.experiments.provenance  # noqa: F401  (loaded here, whatever ran before)

    _record(tmp_path, "train", "a" * 40, False, from_env_steps=0)
    (first,) = read_provenance(tmp_path)
    assert "run_dir.py" in first["modules"] and "experiments/provenance.py" in first["modules"]
    assert first["modules"] == sorted(first["modules"]) and not any(m.startswith("/") for m in first["modules"])
    _record(tmp_path, "final-evaluation", "a" * 40, False, env_steps=10, modules=["train.py", "zzz.py"])
    assert trial_provenance(tmp_path).modules == frozenset(first["modules"]) | {"train.py", "zzz.py"}
    # A record from before the list existed: the trial's code is the whole package.
    older = tmp_path / "older"
    older.mkdir()
    (older / "provenance.jsonl").write_text(json.dumps({"event": "train", "git": {"commit": "a" * 40}}) + "\n")
    _record(older, "final-evaluation", "a" * 40, False, env_steps=10)
    assert trial_provenance(older).modules is None


def test_a_resume_that_only_evaluated_is_not_training_and_is_flagged(tmp_path):
    """The predator-prey story: trained on A, later resumed with nothing left to train on dirty B,
    which rewrote the summary."""
    a, b = "a" * 40, "b" * 40
    _record(tmp_path, "train", a, False, from_env_steps=0)
    _record(tmp_path, "final-evaluation", a, False, env_steps=1000)
    _record(tmp_path, "resume", b, True, from_env_steps=1000)
    _record(tmp_path, "final-evaluation", b, True, env_steps=1000)
    trial = trial_provenance(tmp_path)
    assert trial.trained_on == [Code(a, False)] and trial.evaluated_on == Code(b, True)
    assert not trial.reconstructed and trial.machines == ["box"]
    assert flags(trial, Code(b, False)) == ["eval dirty", "eval != train"]
    assert flags(trial, Code(a, False)) == ["eval dirty", "eval != train", "eval != others"]


def test_a_resume_that_trained_counts_as_training(tmp_path):
    a, b = "a" * 40, "b" * 40
    _record(tmp_path, "train", a, False, from_env_steps=0)
    _record(tmp_path, "resume", b, False, from_env_steps=500)
    _record(tmp_path, "final-evaluation", b, False, env_steps=1000)
    trial = trial_provenance(tmp_path)
    assert trial.trained_on == [Code(a, False), Code(b, False)]
    assert flags(trial, Code(b, False)) == ["eval != train"]


def test_the_report_section_flags_only_the_odd_trial(tmp_path):
    a, b = "a" * 40, "b" * 40
    for name, commit in (("one", a), ("two", a), ("odd", b)):
        (tmp_path / name).mkdir()
        _record(tmp_path / name, "train", commit, False, from_env_steps=0)
        _record(tmp_path / name, "final-evaluation", commit, False, env_steps=10)
    lines, data = provenance_section({n: tmp_path / n for n in ("one", "two", "odd")})
    assert data["flagged"] == ["odd"] and data["common_commit"] == a
    assert data["trials"]["odd"]["flags"] == ["eval != others"] and data["trials"]["one"]["flags"] == []
    assert "**1 of 3 trials flagged**: odd." in lines
    assert any(line.startswith("- `eval != others`") and "(aaaaaaa)" in line for line in lines)



def _head(repo):
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()


def _commit(repo, path, text):
    (repo / path).write_text(text)
    _git(repo, "commit", "-q", "-am", f"change {path}")
    return _head(repo)


def test_commits_that_differ_only_in_results_are_one_code_and_not_flagged(repo, tmp_path_factory):
    """Trained on A, resumed and evaluated on B, which only added results: not flagged. C changed
    the package, D only pyproject.toml: flagged against A. A commit git does not have is flagged."""
    a = _head(repo)
    b = _commit(repo, "results.md", "score 2\n")
    c = _commit(repo, "src/pkg/code.py", "x = 2\n")
    d = _commit(repo, "pyproject.toml", "[project]\nname = 'x'\n")
    same = git_same_code(repo / "src" / "pkg")
    assert same(a, b) and same(b, a) and same(a, a)
    assert not same(a, c) and not same(b, c) and not same(c, d) and not same(a, None) and not same(a, "f" * 40)
    # A copy the checkout does not track (installed in an ignored venv inside it), or one outside any
    # checkout, cannot be compared: different commits differ.
    installed = repo / ".venv" / "pkg"
    installed.mkdir(parents=True)
    (installed / "code.py").write_text("x = 1\n")
    assert not git_same_code(installed)(a, b) and not git_same_code(tmp_path_factory.mktemp("elsewhere"))(a, b)
    # E changes a module of the package that the trials below never loaded: the same code for them,
    # not for a trial whose records do not list its modules.
    (repo / "src" / "pkg" / "report.py").write_text("y = 1\n")
    _git(repo, "add", ".")
    e = _commit(repo, "src/pkg/report.py", "y = 2\n")
    assert same(d, e, frozenset({"code.py"})) and not same(d, e) and not same(d, e, frozenset({"report.py"}))
    assert not same(c, e, frozenset({"code.py"})) and not same(c, d, frozenset())  # pyproject.toml counts
    runs = tmp_path_factory.mktemp("runs")
    for name, (trained, evaluated) in {"results-only": (a, b), "code": (a, c), "pyproject": (c, d),
                                       "unloaded": (d, e)}.items():
        (runs / name).mkdir()
        _record(runs / name, "train", trained, False, from_env_steps=0, modules=["code.py"])
        _record(runs / name, "resume", evaluated, False, from_env_steps=500, modules=["code.py"])
        _record(runs / name, "final-evaluation", evaluated, False, env_steps=1000, modules=["code.py"])
    assert flags(trial_provenance(runs / "unloaded"), Code(d, False), same) == []
    assert flags(trial_provenance(runs / "results-only"), Code(a, False), same) == []
    assert flags(trial_provenance(runs / "code"), Code(b, False), same) == ["eval != train", "eval != others"]
    assert flags(trial_provenance(runs / "pyproject"), Code(c, False), same) == ["eval != train", "eval != others"]
    # Without git, only equal commits are the same code, as before.
    assert flags(trial_provenance(runs / "results-only"), Code(a, False)) == ["eval != train", "eval != others"]
    _, data = provenance_section({"r": runs / "results-only", "s": runs / "results-only"}, same)
    assert data["flagged"] == []

def _run(curves, metric="test_return", seeds=(0, 1)):
    return Run(path=None, algo="a", env="e", seeds=list(seeds), scores={s: 0.0 for s in seeds},
               score_metric="greedy_return", curves={s: (np.arange(len(v), dtype=float), np.asarray(v, float))
                                                     for s, v in curves.items()}, curve_metric=metric)


def test_last_tests_is_the_mean_of_the_last_k_logged_tests():
    run = _run({0: [1.0, 2.0, 3.0, 4.0], 1: [5.0, 7.0]})
    assert last_tests(run, 2) == {0: 3.5, 1: 6.0}
    assert last_tests(run, 3) == {0: 3.0, 1: 6.0}  # seed 1 logged only two
    assert last_tests(_run({0: [1.0], 1: [2.0]}, metric="train_return"), 2) is None
    with pytest.raises(ValueError, match="at least 1"):
        last_tests(run, 0)
    (scored,) = with_last_tests([run], 2)
    assert scored.scores == {0: 3.5, 1: 6.0} and scored.score_metric == "last-2 test_return"
    # A seed without logged tests: no steadier score for the set, rather than one over fewer seeds.
    assert with_last_tests([_run({0: [1.0]})], 2) is None
