"""Only what pyproject.toml cannot say: the shipped models live in the repository's
``models_tflite/`` and install as the package data ``edge/models/`` (the way openWakeWord
ships its models), so ``pip install`` from any folder finds them. ``training/`` and
``convert/`` run from a checkout (``python -m training.speech``) and stay out of the wheel.
Everything else is in pyproject.toml."""

from setuptools import find_namespace_packages, setup

setup(
    packages=[*find_namespace_packages(include=["edge", "edge.*"]), "edge.models"],
    package_dir={"edge.models": "models_tflite"},
)
