"""Every docstring example in the package runs and prints what it shows.

The same check as ``python -m pytest --doctest-modules skal/``, inside the normal test run.
"""

import doctest
import importlib
import pkgutil

import pytest

import skal

MODULES = sorted(
    info.name for info in pkgutil.walk_packages(skal.__path__, prefix="skal.")
    if info.name != "skal.__main__"
)


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples_run(module_name):
    module = importlib.import_module(module_name)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report = []
    for test in doctest.DocTestFinder(exclude_empty=True).find(module, module_name):
        runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)
