"""Prepare the Azure SDK's generated models once, under a lock, before a fleet fans out over threads.

The newer generated SDK models (``_utils/model_base.py`` in azure-keyvault-certificates 4.12, azure-mgmt-compute,
azure-mgmt-keyvault) compute each model class's field table lazily, in ``Model.__new__``, the first time the class
is instantiated in a process, without a lock. Two threads deserialising the same class for the first time can see a
half-built table and get raw dicts back ("'dict' object has no attribute 'action_type'",
https://github.com/Azure/azure-sdk-for-python/issues/47426). A fleet discovers many clusters at once, so the field
tables are built here first, from one thread; afterwards they are only read.
"""

from __future__ import annotations

import importlib
import logging
import threading
from typing import Any

log = logging.getLogger("sfmigrate")

# The generated-model packages the gateway's clients deserialise with (migrate.cloud.gateway), and the prefix of
# the class names it builds: compute's 500-odd models take ~0.5 s to prepare, and the gateway only deserialises
# scale sets (list_scale_sets); every other compute read and write goes as raw JSON.
MODEL_PACKAGES = (
    ("azure.keyvault.certificates._generated.models", "azure.keyvault.certificates._generated._utils.model_base", ""),
    ("azure.mgmt.compute.models", "azure.mgmt.compute._utils.model_base", "VirtualMachineScaleSet"),
    ("azure.mgmt.keyvault.models", "azure.mgmt.keyvault._utils.model_base", ""),
)

_lock = threading.Lock()
_warmed: set[str] = set()


def _model_classes(models: Any, base: type, prefix: str) -> list[Any]:
    return [value for name, value in vars(models).items()
            if name.startswith(prefix) and isinstance(value, type) and issubclass(value, base) and value is not base]


def warm_up_sdk_models() -> int:
    """Build every generated model class's field table (idempotent, thread-safe); return how many classes were
    prepared by this call. A package whose layout differs (another SDK version) is skipped: the race is then the
    SDK's, and a cluster it hits is reported as not observed, never planned from a wrong reading."""
    prepared = 0
    with _lock:
        for models_name, base_name, prefix in MODEL_PACKAGES:
            if models_name in _warmed:
                continue
            _warmed.add(models_name)
            try:
                models, base = importlib.import_module(models_name), importlib.import_module(base_name).Model
            except (ImportError, AttributeError):
                log.debug("SDK model warm-up: %s not found, skipped", models_name)
                continue
            for cls in _model_classes(models, base, prefix):
                try:
                    cls.__new__(cls)  # Model.__new__ builds the class's field table once per process
                    prepared += 1
                except Exception:  # noqa: BLE001 - a model that cannot be created bare is left to the SDK's first use
                    log.debug("SDK model warm-up: %s skipped", cls.__qualname__)
    return prepared
