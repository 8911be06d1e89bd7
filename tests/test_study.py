"""`make study` / `g2i study`: the study profile runs in a clone of HEAD, never in the demo's workspace."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from g2i.cli import main
from g2i.commands.study import prepare_clone
from g2i.errors import G2IError


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def repo(tmp_path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "params.yaml").write_text("# knobs\nprofile: demo\nprofiles:\n  demo: {}\n  study: {}\n")
    git(repo, "init", "-q")
    git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "add", "params.yaml")
    git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "first")
    return repo


def test_clone_runs_head_with_the_profile_set_and_leaves_the_workspace_alone(repo):
    workdir = repo / ".study"
    commit = prepare_clone(repo, workdir, "study")
    assert commit == git(repo, "rev-parse", "HEAD") == git(workdir, "rev-parse", "HEAD")
    assert "profile: study" in (workdir / "params.yaml").read_text()
    assert "profile: demo" in (repo / "params.yaml").read_text()          # the demo workspace is untouched
    (workdir / "data").mkdir()
    (workdir / "data" / "kept.txt").write_text("outputs of the first run")
    # a new commit: the same clone moves to it, keeping untracked outputs (a rerun resumes)
    (repo / "params.yaml").write_text((repo / "params.yaml").read_text() + "# more\n")
    git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qam", "second")
    second = prepare_clone(repo, workdir, "study")
    assert second == git(repo, "rev-parse", "HEAD") != commit
    assert (workdir / "data" / "kept.txt").is_file()
    assert (workdir / "params.yaml").read_text().endswith("# more\n")


def test_a_folder_that_is_not_an_earlier_clone_is_refused(repo):
    (repo / "other").mkdir()
    (repo / "other" / "file").write_text("x")
    with pytest.raises(G2IError, match="not a clone"):
        prepare_clone(repo, repo / "other", "study")


def test_report_only_without_a_run_and_unknown_profile_are_plain_errors(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    assert main(["study", "--report-only", "--workdir", str(tmp_path / "none")]) == 2
    assert "no finished study run" in capsys.readouterr().err
    assert main(["study", "--profile", "nosuch", "--workdir", str(tmp_path / "none")]) == 2
    assert "unknown profile 'nosuch'" in capsys.readouterr().err


def test_a_resumed_study_adds_its_time_as_a_part_never_replacing_the_first():
    from g2i.commands.study import run_parts

    first = run_parts({}, 3600.0, "a" * 40, resumed=False)
    assert first == [{"seconds": 3600.0, "commit": "a" * 40, "resumed": False}]
    second = run_parts({"parts": first, "wall_seconds": 3600.0, "commit": "a" * 40}, 300.0, "b" * 40, resumed=True)
    assert [p["seconds"] for p in second] == [3600.0, 300.0] and second[1]["resumed"]
    legacy = run_parts({"wall_seconds": 3500.0, "commit": "c" * 40, "resumed": False}, 200.0, "d" * 40, True)
    assert [p["seconds"] for p in legacy] == [3500.0, 200.0]
