"""pyflp 2.2.1 on Python 3.11+: the fix for "EventEnum has no members defined".

pyflp looks event IDs up with ``EventEnum(id)``, where ``EventEnum`` is an enum without members
of its own (they live in subclasses) whose ``_missing_`` finds or creates the member. Since
Python 3.11 ``Enum.__new__`` refuses a memberless enum before it consults ``_missing_``, so
every ``pyflp.parse`` fails (upstream issue demberto/PyFLP#183; the same fix is proposed in
PRs #204 and #207). We route value lookups on a memberless ``EventEnum`` class straight to
its cache and ``_missing_``; every other call goes through the normal enum machinery.
"""

from __future__ import annotations

import enum
import threading

_lock = threading.Lock()
_applied = False


def _patch(meta: type) -> None:
    original = enum.EnumMeta.__call__

    def __call__(cls, value, *args, **kwargs):
        if not args and not kwargs and not cls._member_map_ and isinstance(value, int):
            member = cls._value2member_map_.get(value)
            if member is not None:
                return member
            member = cls._missing_(value)
            if member is None:
                raise ValueError(f"{value!r} is not a valid {cls.__qualname__}")
            return member
        return original(cls, value, *args, **kwargs)

    meta.__call__ = __call__
    meta._loopmind_compat = True


def import_pyflp():
    """The ``pyflp`` module, with the enum fix applied once (thread-safe, idempotent)."""
    global _applied
    with _lock:
        import pyflp._events as events

        if not _applied and not getattr(events._EventEnumMeta, "_loopmind_compat", False):
            try:
                events.EventEnum(0)
            except TypeError:  # this Python refuses the memberless lookup: patch it
                _patch(events._EventEnumMeta)
        _applied = True
        import pyflp

        return pyflp
