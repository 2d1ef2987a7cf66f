"""The CPUs edgesmith can emulate, named once for every layer that validates one.

``bench --emulate``, ``check --emulate``, ``export --check-on`` and a device profile's
``emulate:`` key all take these names; the runtime (``runtime/emulation.py``) knows how to start
each under qemu-user. The names live in the core because a profile and the export options are
validated before any stage is imported, and a typo must name the targets there are.
"""

from __future__ import annotations

EMULATED_TARGETS = ("x86-64-avx2", "aarch64")
"""``x86-64-avx2``: qemu-x86_64 -cpu Haswell (AVX2, no VNNI); ``aarch64``: qemu-aarch64 -cpu
cortex-a72 in the env ``edgesmith device setup aarch64`` makes."""
