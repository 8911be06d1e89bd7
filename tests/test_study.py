"""`make study` / `g2i study`: the study profile runs in a clone of HEAD, never in the demo's workspace."""

from __future__ import annotations

import json
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
    (repo / "params.yaml").write_text("# knobs\nprofile: demo\nprofiles:\n  demo: {}\n"
                                      "  study: {variants: {diffusion: [ldm, g2i_l_att], gan: []}}\n"
                                      "variants: {diffusion: [ldm, g2i, g2i_l_noatt, g2i_l_att], gan: [cgan]}  # dvc.yaml\n")
    git(repo, "init", "-q")
    git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "add", "params.yaml")
    git(repo, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "first")
    return repo


def test_clone_runs_head_with_the_profile_set_and_leaves_the_workspace_alone(repo):
    workdir = repo / ".study"
    commit = prepare_clone(repo, workdir, "study")
    assert commit == git(repo, "rev-parse", "HEAD") == git(workdir, "rev-parse", "HEAD")
    assert "profile: study" in (workdir / "params.yaml").read_text()
    # the top-level line dvc.yaml's foreach reads now lists the profile's models, nothing else changed
    assert "\nvariants: {diffusion: [ldm, g2i_l_att], gan: []}  # dvc.yaml\n" in (workdir / "params.yaml").read_text()
    assert "profile: demo" in (repo / "params.yaml").read_text()          # the demo workspace is untouched
    assert "gan: [cgan]}  # dvc.yaml" in (repo / "params.yaml").read_text()
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


def test_a_resumed_study_adds_its_time_as_a_part_never_replacing_the_first(tmp_path):
    from g2i.commands.study import PartLedger

    with PartLedger(tmp_path, "a" * 40) as first:
        pass
    assert first.parts == [{"seconds": first.parts[0]["seconds"], "commit": "a" * 40, "resumed": False}]
    with PartLedger(tmp_path, "b" * 40) as second:
        pass
    assert [p["commit"][0] for p in second.parts] == ["a", "b"] and second.parts[1]["resumed"]
    stored = json.loads((tmp_path / PartLedger.FILE).read_text())["parts"]
    assert stored == second.parts and not any("running" in p for p in stored)


def test_a_study_killed_part_way_still_counts_to_its_last_heartbeat(tmp_path):
    """kill -9 (a reboot, a session's end) leaves the part marked running; the resumed study counts it."""
    import signal
    import subprocess
    import sys
    import time

    from g2i.commands.study import PartLedger

    code = ("import sys, time; from pathlib import Path; from g2i.commands.study import PartLedger\n"
            "with PartLedger(Path(sys.argv[1]), 'a' * 40, heartbeat_s=0.05):\n"
            "    print('in', flush=True); time.sleep(60)\n")
    launched = time.monotonic()
    child = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "in"
    time.sleep(1.0)
    child.send_signal(signal.SIGKILL)
    child.wait()
    lived = time.monotonic() - launched
    cut = json.loads((tmp_path / PartLedger.FILE).read_text())["parts"]
    assert cut[0]["running"] and 0.7 <= cut[0]["seconds"] <= lived
    resumed = PartLedger(tmp_path, "a" * 40)
    assert resumed.earlier == [{"seconds": cut[0]["seconds"], "commit": "a" * 40, "resumed": False, "interrupted": True}]
    assert resumed.current["resumed"]


def test_a_failed_invocation_is_marked_interrupted_and_legacy_runs_are_read(tmp_path):
    from g2i.commands.study import PartLedger

    (tmp_path / "a").mkdir()
    with pytest.raises(RuntimeError), PartLedger(tmp_path / "a", "a" * 40):
        raise RuntimeError("a stage failed")
    assert json.loads((tmp_path / "a" / PartLedger.FILE).read_text())["parts"][0]["interrupted"]

    record = tmp_path / "b" / "reports" / "study_run.json"   # a study finished before the ledger existed
    record.parent.mkdir(parents=True)
    record.write_text(json.dumps({"wall_seconds": 3500.0, "commit": "c" * 40, "resumed": False}))
    assert [p["seconds"] for p in PartLedger(tmp_path / "b", "d" * 40).parts] == [3500.0, 0.0]

    (tmp_path / "c").mkdir()
    (tmp_path / "c" / ".study_started").touch()   # an older study's marker: started before, time unknown
    assert PartLedger(tmp_path / "c", "e" * 40).current["earlier_unrecorded"]


def test_the_results_page_lists_the_parts_and_never_passes_a_partial_time_off_as_the_whole():
    from g2i.reports.results import _parts_text

    one = {"seconds": 600.0, "commit": "a" * 40, "resumed": False}
    assert _parts_text([one]) == ""
    text = _parts_text([{**one, "interrupted": True}, {**one, "resumed": True}])
    assert "over 2 invocations" in text and "interrupted" in text and "resumed" in text
    assert "lower bound" in _parts_text([{**one, "resumed": True, "earlier_unrecorded": True}])
