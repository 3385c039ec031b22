"""The command line that reproduces a training run, from the arguments it recorded."""

from __future__ import annotations


def command_line(module: str, args: dict, skip: tuple[str, ...] = ("threads", "resume")) -> str:
    """``python -m MODULE`` with every recorded option explicit, as argparse reads it back:
    a store_true option as its bare flag (left out when false), a list as its items, and
    an option not given (None or "") left out; ``skip``: options that do not change what
    is trained."""
    parts = ["python", "-m", module]
    for key, value in args.items():
        if key in skip or value is None or value == "":
            continue
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            parts += [flag] if value else []
        elif isinstance(value, (list, tuple)):
            parts += [flag, *map(str, value)]
        else:
            parts += [flag, str(value)]
    return " ".join(parts)
