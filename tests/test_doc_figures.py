"""tools/doc_figures.py: every result figure of the docs agrees with its committed result file.

The figures blocks of README.md and docs/ are written from docs/results/ by
`python tools/doc_figures.py --write`. These tests run its `--check` on the committed docs, then on
copies of the repository with one digit changed, in a doc or in a result file: the check must
fail and name the block. Nothing here knows a result: the planted change is a digit of whatever
the files hold.
"""

import csv
import importlib.util
import io
import re
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("doc_figures", ROOT / "tools" / "doc_figures.py")
doc_figures = importlib.util.module_from_spec(_spec)
sys.modules["doc_figures"] = doc_figures  # dataclasses look their module up there
_spec.loader.exec_module(doc_figures)


def copy_repo(tmp_path: Path) -> Path:
    """The docs and the result files, without the pictures (the check reads no picture)."""
    root = tmp_path / "repo"
    for doc in doc_figures.DOCS:
        (root / doc).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / doc, root / doc)
    shutil.copytree(ROOT / doc_figures.RESULTS, root / doc_figures.RESULTS,
                    ignore=shutil.ignore_patterns("*.png", "*.pdf"))
    return root


def run(capsys, *args: str) -> tuple[int, str]:
    code = doc_figures.main(list(args))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def other_digit(digit: str) -> str:
    return str((int(digit) + 1) % 10)


def test_committed_docs_agree_with_their_files(capsys):
    code, out = run(capsys, "--check", "--root", str(ROOT))
    assert code == 0, out


def test_every_block_is_in_a_doc():
    docs = doc_figures.read_docs(ROOT)
    names = {b.name for doc, lines in docs.items() for b in doc_figures.find_blocks(doc, lines)}
    assert names == set(doc_figures.BLOCKS)


def test_a_changed_digit_in_any_block_fails_naming_it(tmp_path, capsys):
    root = copy_repo(tmp_path)
    planted = []
    for doc, lines in doc_figures.read_docs(root).items():
        for block in doc_figures.find_blocks(doc, lines):
            # The block's last digit: a figure of its table or list, not of its source line.
            for i in range(block.end - 1, block.begin, -1):
                digits = [m.start() for m in re.finditer(r"\d", lines[i])]
                if digits:
                    at = digits[-1]
                    lines[i] = lines[i][:at] + other_digit(lines[i][at]) + lines[i][at + 1:]
                    planted.append((doc, block.name, i + 1))
                    break
        (root / doc).write_text("\n".join(lines))
    assert len(planted) >= len(doc_figures.BLOCKS)

    code, out = run(capsys, "--check", "--root", str(root))
    assert code == 1
    for doc, name, line in planted:
        assert f"{doc}:{line}: block figures:{name} differs" in out, out

    # --write puts the files' figures back.
    assert run(capsys, "--write", "--root", str(root))[0] == 0
    code, out = run(capsys, "--check", "--root", str(root))
    assert code == 0, out


def change_json_number(path: Path, key_pattern: str) -> None:
    """Change the first digit of the first number that follows `key_pattern` in a JSON file."""
    text = path.read_text()
    match = re.search(key_pattern + r"\s*-?(\d)", text)
    assert match, f"{key_pattern} not in {path}"
    at = match.start(1)
    path.write_text(text[:at] + other_digit(text[at]) + text[at + 1:])


def change_last_test(path: Path, column: str) -> None:
    """Change the first digit of the last logged test of a metrics.csv."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    row = next(r for r in reversed(rows) if r[column])
    row[column] = other_digit(row[column][0]) + row[column][1:]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(out.getvalue())


def first_trial(root: Path, experiment: str) -> Path:
    return sorted((root / doc_figures.RESULTS / experiment / "trials").glob("*/summary.json"))[0].parent


PLANTS = {
    "predator-prey final return": (
        "predator-prey", lambda root: change_json_number(first_trial(root, "predator-prey") / "summary.json",
                                                         r'"greedy_return":')),
    "matrix-game Q_tot": (
        "matrix-game", lambda root: change_json_number(first_trial(root, "matrix-game") / "summary.json",
                                                       r'"q_tot":\s*\[\s*\[')),
    "suite % optimal": (
        "matrix-games", lambda root: change_json_number(root / doc_figures.RESULTS / "matrix-games" / "results.json",
                                                        r'"optimal_fraction":')),
    "SMAX logged test": (
        "smax-2s3z-1m", lambda root: change_last_test(first_trial(root, "smax-2s3z-1m") / "metrics.csv",
                                                      "test_win_rate")),
    "JaxMARL's QMIX beside ours": (
        "smax-jaxmarl", lambda root: change_json_number(
            root / doc_figures.RESULTS / "smax-jaxmarl" / "jaxmarl-qmix" / "3m" / "summary.json", r'"test_win_rate":')),
}


@pytest.mark.parametrize("plant", list(PLANTS))
def test_a_changed_digit_in_a_result_file_fails_naming_the_block(tmp_path, capsys, plant):
    block, change = PLANTS[plant]
    root = copy_repo(tmp_path)
    change(root)
    code, out = run(capsys, "--check", "--root", str(root))
    assert code == 1
    assert f"block figures:{block} differs" in out, out


def test_markers_that_do_not_pair_up_are_an_error(tmp_path, capsys):
    root = copy_repo(tmp_path)
    readme = root / "README.md"
    readme.write_text(readme.read_text().replace("<!-- figures:headline end -->", "", 1))
    code, out = run(capsys, "--check", "--root", str(root))
    assert code == 2
    assert "figures:headline has no end marker" in out
