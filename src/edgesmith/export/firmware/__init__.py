"""Firmware in the loop: the int8 file compiled with TFLite Micro + CMSIS-NN and run in QEMU.

``project`` writes the sources a firmware engineer copies (op resolver, ``main.cc``, linker
script), ``sources`` finds the pinned TFLM sources, ``build`` compiles, ``qemu`` runs.
"""
