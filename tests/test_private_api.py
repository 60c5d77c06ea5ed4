"""The private APIs the code relies on, each named, so an upgrade of Keras or Ray that moves one
fails here, saying which, rather than deep inside a run. Keras' are listed in
helpers/backend.py (the one module that uses them); Ray's are helpers/run/cluster.py's."""

from __future__ import annotations

import importlib

import pytest

from helpers import backend

RAY_PRIVATE = (
    "ray._private.services.canonicalize_bootstrap_address_or_die",  # RAY_ADDRESS=auto
    "ray._private.grpc_utils.init_grpc_channel",  # the cluster check's ping, with the token
)


def _resolve(dotted: str):
    module, _, attr = dotted.rpartition(".")
    return getattr(importlib.import_module(module), attr)


@pytest.mark.parametrize("dotted", backend.PRIVATE_KERAS)
def test_keras_private_api_is_where_backend_py_expects_it(dotted):
    try:
        _resolve(dotted)
    except (ImportError, AttributeError) as err:
        pytest.fail(f"{dotted} is gone in this Keras ({err}); see helpers/backend.py")


def test_only_backend_py_imports_keras_private_modules():
    from helpers.base import ROOT

    users = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "helpers").rglob("*.py")
                   if "keras.src" in p.read_text() and p.name != "backend.py")
    assert users == [], users


@pytest.mark.parametrize("dotted", RAY_PRIVATE)
def test_ray_private_api_is_where_cluster_py_expects_it(dotted):
    pytest.importorskip("ray")
    try:
        _resolve(dotted)
    except (ImportError, AttributeError) as err:
        pytest.fail(f"{dotted} is gone in this Ray ({err}); see helpers/run/cluster.py")
