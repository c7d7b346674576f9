"""The runner's own task registry: tasks are found by name without huey's private one; a
task module that fails at import is shown where it failed."""

from __future__ import annotations

import pytest

from runner.errors import ConfigError
from runner.registry import import_task_modules, registered_tasks
from runner.runner_huey import RunnerHuey
from runner.task import RunnerTaskWrapper


def _wrapper(huey: RunnerHuey, fn, name=None) -> RunnerTaskWrapper:
    return RunnerTaskWrapper(huey, fn, name=name, options={})


def test_a_decorated_task_is_in_the_runners_registry_under_its_full_and_short_name():
    huey = RunnerHuey("own-registry")

    def resize(path): ...

    wrapper = _wrapper(huey, resize, name="images.resize")
    assert registered_tasks(huey) == {f"{__name__}.images.resize": wrapper}
    assert huey.task_registry.find("images.resize") is wrapper
    assert huey.task_registry.find(f"{__name__}.images.resize") is wrapper
    assert huey.task_registry.find("resize") is None


def test_the_registry_does_not_read_hueys_private_registry():
    huey = RunnerHuey("no-private")

    def ping(): ...

    wrapper = _wrapper(huey, ping)
    huey._registry._registry.clear()  # whatever huey keeps inside, ours still answers
    assert registered_tasks(huey) == {f"{__name__}.ping": wrapper}


def test_a_second_task_of_the_same_name_is_refused_and_the_first_kept():
    huey = RunnerHuey("duplicates")

    def first(): ...

    def second(): ...

    kept = _wrapper(huey, first, name="same")
    with pytest.raises(ValueError, match="same"):
        _wrapper(huey, second, name="same")
    assert huey.task_registry.find("same") is kept


def test_an_unregistered_task_is_gone_from_the_registry():
    huey = RunnerHuey("unregister")

    def gone(): ...

    wrapper = _wrapper(huey, gone)
    assert wrapper.unregister()
    assert registered_tasks(huey) == {}


def test_a_short_name_used_by_two_modules_is_not_guessed():
    huey = RunnerHuey("ambiguous")

    def job(): ...

    def other(): ...

    other.__module__ = "elsewhere"
    _wrapper(huey, job, name="job")
    _wrapper(huey, other, name="job")
    assert len(registered_tasks(huey)) == 2
    assert huey.task_registry.find("job") is None


def test_the_cli_names_both_modules_when_a_short_task_name_is_ambiguous(
        huey, tmp_path, monkeypatch, capsys):
    from runner.cli import main
    from tests.conftest import write_settings

    for module in ("twins_a", "twins_b"):
        (tmp_path / f"{module}.py").write_text(
            "from runner import task\n\n@task(name='twin')\ndef twin():\n    return 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    settings = write_settings(tmp_path, name="twins.toml")
    settings.write_text(settings.read_text().replace(
        'imports = ["tests.jobs"]', 'imports = ["tests.jobs", "twins_a", "twins_b"]'))
    assert main(["--settings", str(settings), "enqueue", "twin"]) == 65
    assert "'twin' is used by twins_a.twin, twins_b.twin" in capsys.readouterr().err
    assert main(["--settings", str(settings), "enqueue", "twins_b.twin"]) == 0


def test_a_task_module_with_a_syntax_error_is_shown_at_its_line(tmp_path, monkeypatch):
    (tmp_path / "broken_syntax_tasks.py").write_text("def f(:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError) as error:
        import_task_modules(["broken_syntax_tasks"])
    assert str(error.value).startswith("[runner] imports: cannot import task module "
                                       "'broken_syntax_tasks': SyntaxError")
    detail = error.value.detail
    assert f'File "{tmp_path / "broken_syntax_tasks.py"}", line 1' in detail, detail
    assert "def f(:" in detail and "importlib" not in detail, detail


def test_a_decorator_refused_at_import_is_shown_at_the_module_line_not_in_the_runner(
        tmp_path, monkeypatch):
    (tmp_path / "refused_tasks.py").write_text(
        "from runner import task\n\n\n@task(timeout=1e10)\ndef slow():\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match="timeout must be at most") as error:
        import_task_modules(["refused_tasks"])
    detail = error.value.detail
    assert f'File "{tmp_path / "refused_tasks.py"}", line 4, in <module>' in detail, detail
    assert "runner/" not in detail.replace("runner.errors.ConfigError", ""), detail
