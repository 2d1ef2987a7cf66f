"""Firmware in the loop: the int8 file compiled with TFLite Micro + CMSIS-NN and run in QEMU.

``project`` writes the measured firmware's sources (op resolver, ``main.cc``, linker script),
``sources`` finds the pinned TFLM sources, ``build`` compiles, ``qemu`` runs, ``pipeline``
ties them into one report, ``check`` is export's ``--target cortex-m55`` (preflight, verdict,
manifest record) and ``handoff`` writes what a firmware engineer copies into the artifact.
"""
