"""Registries of what users extend: tasks (`si_hf.tasks.TASKS`), filters (`si_hf.filtering.FILTERS`)
and schedules (`si_hf.schedules.SCHEDULES`).

An entry is registered with its name, a one-line help, the options it reads and its validation, next
to its code: adding one touches one file, from a user's own module too (`plugins: [my_module]` in
a recipe; docs/extending.md). `--help`, the validation of a run's arguments and the docs list what is
registered.

    from si_hf.filtering import FILTERS, Filter

    @FILTERS.register("even_length", help="keep labels of an even number of tokens")
    def even_length(inputs, keep): ...
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import sys
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Entry:
    """One registered name. `options` maps each configuration key the entry reads to the name the entry
    gives it (a task's constructor argument); `validate(obj, ...)` raises ValueError naming the key, the
    bad value and what is expected."""

    name: str
    obj: object
    help: str
    options: Mapping[str, str] = field(default_factory=dict)
    validate: Callable[..., None] | None = None


class Registry:
    """Named entries of one kind; `key` is the configuration key that names them (`filters`, `task`)."""

    def __init__(self, kind: str, key: str):
        self.kind, self.key = kind, key
        self._entries: dict[str, Entry] = {}

    def register(
        self,
        name: str | None = None,
        obj=None,
        *,
        help: str,
        options: Iterable[str] | Mapping[str, str] = (),
        validate: Callable[..., None] | None = None,
    ):
        """Register `obj` under `name` (default: `obj.name`); without `obj`, a decorator."""

        def add(value):
            entry_name = name or getattr(value, "name", None)
            if not isinstance(entry_name, str) or not entry_name:
                raise ValueError(f"a {self.kind} needs a name: register(name=...) or a `name` attribute")
            if entry_name in self._entries:
                raise ValueError(
                    f"{self.kind} {entry_name!r} is already registered ({self._entries[entry_name].obj!r}); "
                    "pick another name"
                )
            opts = dict(options) if isinstance(options, Mapping) else {k: k for k in options}
            self._entries[entry_name] = Entry(entry_name, value, help, opts, validate)
            return value

        return add if obj is None else add(obj)

    def unregister(self, name: str) -> None:
        self._entries.pop(name, None)

    def get(self, name) -> Entry:
        if not isinstance(name, str) or name not in self._entries:
            raise ValueError(
                f"{self.key}: {name!r} is not a registered {self.kind}; expected one of {self.names()}"
            )
        return self._entries[name]

    def __contains__(self, name) -> bool:
        return name in self._entries

    def __iter__(self):
        return iter(list(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> list[str]:
        return list(self._entries)

    def entries(self) -> list[Entry]:
        return list(self._entries.values())

    def refuse_unused_options(self, owner, used) -> None:
        """An option that only entries this run does not use read, set away from its default in the
        dataclass `owner`, is an error naming the key, its value, the entries it belongs to and `used`."""
        used = [used] if isinstance(used, str) else list(used)
        defaults = {
            f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory()
            for f in dataclasses.fields(owner)
            if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        }
        read = {key for name in used for key in self.get(name).options}
        for entry in self._entries.values():
            for key in entry.options:
                if key in read or key not in defaults or getattr(owner, key) == defaults[key]:
                    continue
                users = [e.name for e in self._entries.values() if key in e.options]
                raise ValueError(
                    f"{key}: {getattr(owner, key)!r} applies to {self.kind} {' and '.join(users)} only, which "
                    f"this run does not use ({self.key}: {used if len(used) > 1 else used[0]!r}); leave it at "
                    f"its default {defaults[key]!r}"
                )

    def describe(self) -> str:
        """`name: help (options: ...)` for every entry, for --help and the docs."""
        parts = []
        for e in self._entries.values():
            opts = f" (options: {', '.join(e.options)})" if e.options else ""
            parts.append(f"{e.name}: {e.help}{opts}")
        return "; ".join(parts)


def load_plugins(specs: Iterable[str] | None) -> list[str]:
    """Import user modules that register tasks, filters or schedules: dotted module names, or paths to
    .py files (imported once per resolved path). Returns the module names."""
    names = []
    for spec in specs or ():
        if not isinstance(spec, str) or not spec.strip():
            raise ValueError(f"plugins: {spec!r} is not a module name or a path to a .py file")
        path = Path(spec)
        if spec.endswith(".py") or path.exists():
            if not path.is_file():
                raise ValueError(f"plugins: {spec!r} is not a file; expected a .py file or a module name")
            resolved = path.resolve()
            name = f"si_hf_plugin_{resolved.stem}_{zlib.crc32(str(resolved).encode()):08x}"
            if name not in sys.modules:
                module_spec = importlib.util.spec_from_file_location(name, resolved)
                module = importlib.util.module_from_spec(module_spec)
                sys.modules[name] = module
                try:
                    module_spec.loader.exec_module(module)
                except BaseException:
                    del sys.modules[name]
                    raise
        else:
            name = spec
            try:
                importlib.import_module(spec)
            except ModuleNotFoundError as e:
                raise ValueError(
                    f"plugins: cannot import {spec!r} ({e}); expected a module on sys.path"
                ) from e
        names.append(name)
    return names
