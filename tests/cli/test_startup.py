"""Start-up: the parser, --help, --version and the NumPy-only ``ops`` never import torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

CHECK = """
import sys
from cnnlab.cli.main import main
try:
    main({argv!r})
except SystemExit:
    pass
heavy = sorted(m for m in ("torch", "torchvision", "matplotlib") if m in sys.modules)
print("HEAVY", ",".join(heavy))
"""


@pytest.mark.parametrize("argv", [
    ["--help"], ["--version"], ["train", "--help"], ["memory", "--help"], ["zoo", "--help"],
    ["ops", "conv2d", "--input", "[[1,2],[3,4]]", "--kernel", "[[1,0],[0,1]]", "--explain"],
    ["ops", "maxpool", "--input", "1,2,3,4", "--size", "2", "--json"],
])
def test_help_version_and_ops_load_no_torch(argv):
    out = subprocess.run([sys.executable, "-c", CHECK.format(argv=argv)], capture_output=True, text=True,
                         check=True).stdout
    assert "HEAVY \n" in out or out.rstrip().endswith("HEAVY"), out[-500:]


def test_the_library_still_loads_torch_when_asked():
    out = subprocess.run([sys.executable, "-c", "import sys, cnnlab; print('torch' in sys.modules); "
                          "cnnlab.analyze; print('torch' in sys.modules)"], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "True"]


def _parsers():
    import argparse

    from cnnlab.cli.main import build_parser

    stack = [("cnnlab", build_parser())]
    while stack:
        name, parser = stack.pop()
        yield name, parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                stack.extend((f"{name} {sub}", p) for sub, p in action.choices.items())


def test_every_option_says_what_it_does_and_its_default():
    import argparse

    missing = []
    for name, parser in _parsers():
        text = parser.format_help()
        for action in parser._actions:
            if not action.option_strings or "-h" in action.option_strings or action.help == argparse.SUPPRESS:
                continue
            if isinstance(action, argparse._VersionAction):
                continue
            if not (action.help and action.help.strip()):
                missing.append(f"{name} {action.option_strings[0]}: no help")
            elif action.default not in (None, argparse.SUPPRESS) and not isinstance(action.default, bool) \
                    and "default" not in parser._get_formatter()._get_help_string(action):
                missing.append(f"{name} {action.option_strings[0]}: default {action.default!r} not shown")
        assert "%(default)" not in text
    assert not missing, "\n".join(missing)


def test_an_unknown_option_points_at_the_sub_commands_help(capsys):
    from cnnlab.cli.main import main

    assert main(["fcn", "convert", "small_cnn", "--out", "x", "--bogus"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err] and "unrecognized arguments: --bogus" in err
    assert "(see 'cnnlab fcn convert --help')" in err


def test_errors_from_user_modules_keep_their_cause_for_api_users():
    import pytest

    from cnnlab.errors import TargetError
    from cnnlab.targets import load_module_target

    with pytest.raises(TargetError, match="cannot import module") as info:
        load_module_target("no_such_module_xyz:net")
    assert isinstance(info.value.__cause__, ModuleNotFoundError)


@pytest.mark.parametrize("argv", [["memory", "resnet50", "--batch", "8", "--json"],
                                  ["analyze", "small_cnn", "--json"], ["fit", "lenet5", "--budget", "50MB"]])
def test_cnnlabs_own_networks_are_analysed_without_torchvision(argv):
    """torchvision (~1 s to import) loads only for a torchvision target or transform, never for cnnlab's own."""
    out = subprocess.run([sys.executable, "-c", CHECK.format(argv=argv)], capture_output=True, text=True,
                         check=True).stdout
    assert out.rstrip().splitlines()[-1].split(" ", 1)[1].split(",") == ["torch"], out[-300:]
