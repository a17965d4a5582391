"""The command line: `python app.py COMMAND` and the `commerce` console script are one
parser, and running it never loads the composition root twice."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Run after the script ends (`python -i`): how many copies of app.py's definitions exist
# (a module run as __main__ and imported again as `app` defines each of them twice).
COUNT_APP_COPIES = (
    "import sys; print('APP_COPIES', len({id(m.create_app) for m in list(sys.modules.values())"
    " if getattr(getattr(m, 'create_app', None), '__module__', None) in ('app', '__main__')}))\n"
)


def python(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_python_app_py_loads_the_composition_root_once() -> None:
    # Given `python app.py` (README, Makefile and the e2e tests run commands this way)
    # When a command runs, and the interpreter is asked afterwards what it loaded
    done = python("-i", "app.py", "--help", stdin=COUNT_APP_COPIES)

    # Then the commands were listed, and app.py was not also loaded as __main__
    assert done.stdout.startswith("usage: app.py"), done.stdout + done.stderr
    assert "export-schema" in done.stdout, done.stderr
    assert "APP_COPIES 1" in done.stdout, done.stdout + done.stderr


def test_the_console_script_is_the_same_command_line() -> None:
    # Given the console script pip installs from pyproject.toml
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    module, _, function = project["scripts"]["commerce"].partition(":")

    # When it is run as pip's wrapper runs it, under the name `commerce`
    done = python(
        "-c",
        f"import sys; sys.argv[0] = 'commerce'; from {module} import {function}; "
        f"sys.exit({function}())",
        "export-schema",
    )

    # Then it prints the checked-in SDL, as `python app.py export-schema` does
    assert done.returncode == 0, done.stderr
    assert done.stdout == (ROOT / "schema.graphql").read_text()
    usage = python("-c", f"import sys; sys.argv[0] = 'commerce'; import {module}; {module}.main()")
    assert usage.stderr.startswith("usage: commerce"), usage.stderr
