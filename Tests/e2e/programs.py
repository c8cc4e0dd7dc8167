"""The programs the tests may run: those listed in scripts/test-programs.txt, whose Debian packages the
test command installs, plus tund, tundctl and tund-cni as built and this Python.

`guard_subprocesses()` makes every subprocess the suite starts check that list first, so a test that
starts using a new tool fails at once, naming it, instead of passing on the one machine where someone
installed it by hand. `programs_run_by` also serves the static scan in test_programs.py.
"""
import contextlib
import os
import pathlib
import shlex
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
LIST = ROOT / "scripts" / "test-programs.txt"

# Wrappers that run another program, and their options that take a separate value.
WRAPPER_OPTIONS_WITH_VALUES = {
    "timeout": {"-s", "--signal", "-k", "--kill-after"},
    "unshare": {"--propagation", "--setgroups", "-S", "--setuid", "-G", "--setgid", "-R", "--root", "-w", "--wd"},
    "setpriv": {"--bounding-set", "--inh-caps", "--ambient-caps", "--reuid", "--regid", "--groups", "--securebits"},
}


class ProgramNotListed(AssertionError):
    pass


def listed_programs() -> dict:
    """{program: Debian package} from scripts/test-programs.txt."""
    programs = {}
    for line in LIST.read_text().splitlines():
        words = line.split("#", 1)[0].split()
        if words:
            programs[words[0]] = words[1]
    return programs


def built_directory() -> str:
    binary = os.environ.get("TUND_BIN") or str(ROOT / ".build" / "debug" / "tund")
    return os.path.dirname(os.path.abspath(binary))


def _shell_programs(script: str):
    """The command heads of a shell script: the first word and each word after ;, &&, ||, | or exec."""
    lexer = shlex.shlex(script, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    words = list(lexer)
    expect_head = True
    for position, word in enumerate(words):
        if word in (";", "&&", "||", "|", "&", "(", ")"):
            expect_head = True
        elif expect_head:
            if word == "exec" or "=" in word and not word.startswith("="):
                continue  # `exec PROG`, `VAR=value PROG`
            yield from programs_run_by(words[position:_command_end(words, position)])
            expect_head = False


def _command_end(words, start):
    for position in range(start, len(words)):
        if words[position] in (";", "&&", "||", "|", "&", ")"):
            return position
    return len(words)


def programs_run_by(argv, shell=False):
    """Every program an argv (or a shell command line) runs, wrappers unwrapped:
    `ip netns exec NS PROG`, `timeout N PROG`, `unshare/setpriv [options] PROG`, `sh -c SCRIPT`."""
    if shell:
        yield from _shell_programs(argv if isinstance(argv, str) else shlex.join(map(os.fsdecode, argv)))
        return
    if isinstance(argv, (str, bytes, os.PathLike)):
        argv = [argv]
    argv = [os.fsdecode(a) if isinstance(a, (bytes, os.PathLike)) else a for a in argv]
    if not argv or not isinstance(argv[0], str):
        return
    head = argv[0]
    yield head
    name = os.path.basename(head)
    rest = argv[1:]
    if name == "ip" and rest[:2] == ["netns", "exec"] and len(rest) > 3:
        yield from programs_run_by(rest[3:])
    elif name in ("sh", "bash", "dash") and len(rest) >= 2 and rest[0] == "-c":
        yield from _shell_programs(rest[1])
    elif name in WRAPPER_OPTIONS_WITH_VALUES:
        position = 0
        while position < len(rest) and isinstance(rest[position], str) and rest[position].startswith("-"):
            takes_value = rest[position] in WRAPPER_OPTIONS_WITH_VALUES[name]
            position += 2 if takes_value else 1
        if name == "timeout":
            position += 1  # the duration
        if position < len(rest):
            yield from programs_run_by(rest[position:])


def built_binaries() -> set:
    """Binaries built by the test command that may live elsewhere (TUND_CNI_BIN), as real paths."""
    return {os.path.realpath(os.environ[name]) for name in ("TUND_CNI_BIN",) if os.environ.get(name)}


def unlisted(program: str, listed: dict) -> bool:
    if os.path.isabs(program):
        if (os.path.dirname(program) == built_directory() or os.path.realpath(program) == os.path.realpath(sys.executable)
                or os.path.realpath(program) in built_binaries()):
            return False
        program = os.path.basename(program)
    return program not in listed


def check(argv, shell=False, listed=None):
    listed = listed if listed is not None else listed_programs()
    for program in programs_run_by(argv, shell):
        if unlisted(program, listed):
            raise ProgramNotListed(
                f"a test runs {program!r}, which is not in scripts/test-programs.txt: add it there with its Debian "
                f"package, and add that package to the install list of scripts/test.sh")


def missing_from_path(listed=None):
    """Listed programs that are not on PATH, as (program, package)."""
    import shutil
    listed = listed if listed is not None else listed_programs()
    return [(program, package) for program, package in listed.items() if shutil.which(program) is None]


@contextlib.contextmanager
def guarded_subprocesses():
    """While active, every subprocess.Popen (and so run, check_output, ...) checks its programs against
    the list first."""
    listed = listed_programs()
    original = subprocess.Popen.__init__

    def checked(self, args, *rest, **options):
        check(args, options.get("shell", False), listed)
        original(self, args, *rest, **options)

    subprocess.Popen.__init__ = checked
    try:
        yield
    finally:
        subprocess.Popen.__init__ = original
