"""Find generators: the built-in one, the external-command one, and plug-ins.

Plug-ins declare an entry point in the group ``foleyseal.generators``; its object is a
generator class or factory called with the generator options, e.g. in a plug-in's
``pyproject.toml``::

    [project.entry-points."foleyseal.generators"]
    mmaudio = "my_package.gen:MMAudioGenerator"

and is then selected with ``foleyseal generate VIDEO --generator mmaudio``. A plug-in is run
through :class:`~v2a_core.generators.plugin.PluginGenerator`: its soundtrack is conformed to
the video like the external command's, and its failures are GenerationErrors naming it.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

from provenance.core.errors import ConfigError, FoleySealError, GenerationError
from v2a_core.generators.base import Generator
from v2a_core.generators.plugin import PluginGenerator, describe

ENTRY_POINT_GROUP = "foleyseal.generators"

#: Always available, whether or not the package metadata (entry points) is installed.
BUILTIN: dict[str, str] = {
    "builtin": "v2a_core.generators.builtin:BuiltinGenerator",
    "external": "v2a_core.generators.external:ExternalCommandGenerator",
}


def available() -> dict[str, str]:
    """Generator name -> ``module:attribute`` for every known generator."""
    found = dict(BUILTIN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep.value)
    return dict(sorted(found.items()))


def _resolve(target: str) -> Any:
    module, _, attr = target.partition(":")
    obj = import_module(module)
    for part in attr.split(".") if attr else []:
        obj = getattr(obj, part)
    return obj


def load_generator(name: str, **options: Any) -> Generator:
    """Instantiate the generator called ``name`` with ``options`` (e.g. ``command=`` for external)."""
    table = available()
    if name not in table:
        raise ConfigError(f"unknown generator {name!r}; available: {', '.join(table)}")
    try:
        factory = _resolve(table[name])
    except (Exception, SystemExit) as exc:  # a broken plug-in must not look like a FoleySeal bug
        raise GenerationError(f"generator {name!r} ({table[name]}) cannot be loaded: {exc}") from exc
    try:
        gen = factory(**options)
    except TypeError as exc:
        raise ConfigError(f"generator {name!r} does not accept these options: {exc}") from exc
    except FoleySealError:
        raise
    except (Exception, SystemExit) as exc:  # a plug-in that cannot start (no GPU, no weights) is not a FoleySeal bug
        raise GenerationError(f"generator {name!r} cannot be started: {describe(exc)}") from exc
    if not isinstance(gen, Generator):
        raise GenerationError(f"generator {name!r} does not implement generate(request) -> Soundtrack")
    return gen if name in BUILTIN else PluginGenerator(name, gen)
