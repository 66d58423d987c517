"""Every operation torjail defines says how it is called: its docstring ends with a short example, as
pyinfra's own operations do, so that a reader of `--dry` output can look the operation up and see its use."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import torjail


def operations():
    """Every pyinfra operation defined in a torjail module (pyinfra marks them with `_inner`)."""
    found = []
    for module_info in pkgutil.walk_packages(torjail.__path__, "torjail."):
        module = importlib.import_module(module_info.name)
        for name, value in vars(module).items():
            if hasattr(value, "_inner") and getattr(value, "__module__", None) == module.__name__:
                found.append(pytest.param(value, id=f"{module.__name__}.{name}"))
    return found


def test_operations_are_found():
    names = {param.id for param in operations()}
    assert {"torjail.freebsd.geli.provider", "torjail.procedures.image.encrypted", "torjail.tasks.backup.fetched"} <= names


@pytest.mark.parametrize("op", operations())
def test_docstring_ends_with_an_example(op):
    doc = inspect.getdoc(op) or ""
    summary, _, example = doc.partition("\n\n**Example:**\n\n")
    assert summary.strip(), "the docstring says what the operation does first"
    assert example.startswith(".. code:: python\n\n"), "an **Example:** block with a python code block ends it"
    code = example.removeprefix(".. code:: python\n\n")
    lines = code.splitlines()
    assert lines and all(line.startswith("    ") or not line.strip() for line in lines), \
        "nothing follows the example's indented code"
    assert f"{op.__name__}(" in code, "the example calls the operation itself"
