"""The suite runs only programs the test command installs (scripts/test-programs.txt): checked statically
over every test source, and at run time by the subprocess guard in conftest."""
import ast
import pathlib
import subprocess

import pytest

import programs

E2E = pathlib.Path(__file__).resolve().parent
SUBPROCESS_CALLS = {"run", "Popen", "check_output", "check_call", "call"}


def literal_prefix(node):
    """The leading string constants of a list literal: what an argv is known to start with."""
    words = []
    for element in node.elts:
        if isinstance(element, ast.Constant) and isinstance(element.value, str):
            words.append(element.value)
        else:
            break
    return words


def programs_named_in(source: pathlib.Path):
    """(line, program) for each program a subprocess call in `source` names, and each shutil.which()."""
    tree = ast.parse(source.read_text(), filename=str(source))
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        owner = node.func.value
        if isinstance(owner, ast.Name) and owner.id == "subprocess" and node.func.attr in SUBPROCESS_CALLS and node.args:
            argv = node.args[0]
            shell = any(k.arg == "shell" and isinstance(k.value, ast.Constant) and k.value.value for k in node.keywords)
            if isinstance(argv, ast.List):
                for program in programs.programs_run_by(literal_prefix(argv)):
                    yield node.lineno, program
            elif shell and isinstance(argv, ast.Constant) and isinstance(argv.value, str):
                for program in programs.programs_run_by(argv.value, shell=True):
                    yield node.lineno, program
        elif isinstance(owner, ast.Name) and owner.id == "shutil" and node.func.attr == "which" and node.args:
            if isinstance(node.args[0], ast.Constant):
                yield node.lineno, node.args[0].value


def test_every_program_a_test_names_is_listed():
    listed = programs.listed_programs()
    # This file names unlisted programs on purpose, to see them refused.
    sources = sorted(source for source in E2E.glob("*.py") if source.name != "test_programs.py")
    assert len(sources) > 5
    unlisted = [f"{source.name}:{line}: {program}" for source in sources for line, program in programs_named_in(source)
                if programs.unlisted(program, listed)]
    assert not unlisted, "programs the tests run but scripts/test-programs.txt does not list:\n" + "\n".join(unlisted)


def test_the_scan_finds_wrapped_programs():
    found = list(programs.programs_run_by(["ip", "netns", "exec", "ns", "timeout", "30", "iperf3", "-c", "x"]))
    assert found == ["ip", "timeout", "iperf3"]
    found = list(programs.programs_run_by(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                                           "mount -t tmpfs none /dev/net && exec frobnicate -"]))
    assert found == ["unshare", "sh", "mount", "frobnicate"]
    assert list(programs.programs_run_by("tundctl capture x | tshark -r -", shell=True)) == ["tundctl", "tshark"]


def test_an_unlisted_program_fails_the_test_naming_it():
    with pytest.raises(programs.ProgramNotListed, match="'not-a-listed-tool'"):
        subprocess.run(["not-a-listed-tool", "--version"])
    with pytest.raises(programs.ProgramNotListed, match="'frobnicate'"):
        subprocess.run(["ip", "netns", "exec", "x", "frobnicate", "-"])


def test_every_listed_package_is_installed_by_the_test_command():
    install_line = next(line for line in (E2E.parents[1] / "scripts" / "test.sh").read_text().splitlines()
                        if line.startswith("ensure_debian_packages "))
    runtime = next(line for line in (E2E.parents[1] / "scripts" / "deps.sh").read_text().splitlines()
                   if line.startswith("RUNTIME_PACKAGES="))
    installed = set(install_line.split()) | set(runtime.replace("(", " ").replace(")", " ").split())
    for program, package in programs.listed_programs().items():
        assert package in installed, f"{program}: its package {package} is in no install list"
