"""The generated firmware sources: op resolver, ``main.cc``, ``_start``, linker script.

Generated from the model (its op list and tensor sizes) so the image holds only the kernels the
model needs and its arena is sized for it; the same files are what a firmware engineer copies
into their own project.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgesmith.core.errors import EdgesmithError

# TFLite builtin op name -> MicroMutableOpResolver method (TFLM's micro_mutable_op_resolver.h).
RESOLVER_METHODS = {
    "ADD": "AddAdd",
    "AVERAGE_POOL_2D": "AddAveragePool2D",
    "CONCATENATION": "AddConcatenation",
    "CONV_2D": "AddConv2D",
    "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D",
    "DEQUANTIZE": "AddDequantize",
    "FULLY_CONNECTED": "AddFullyConnected",
    "HARD_SWISH": "AddHardSwish",
    "LOGISTIC": "AddLogistic",
    "MAX_POOL_2D": "AddMaxPool2D",
    "MEAN": "AddMean",
    "MUL": "AddMul",
    "PAD": "AddPad",
    "QUANTIZE": "AddQuantize",
    "RELU": "AddRelu",
    "RELU6": "AddRelu6",
    "RESHAPE": "AddReshape",
    "SHAPE": "AddShape",
    "SOFTMAX": "AddSoftmax",
    "STRIDED_SLICE": "AddStridedSlice",
    "SUB": "AddSub",
    "TRANSPOSE_CONV": "AddTransposeConv",
}


@dataclass(frozen=True)
class Board:
    """One QEMU board for one core: where code and data go, and the compiler's CPU flags."""

    cpu: str
    tflm_arch: str  # TFLM's TARGET_ARCH for cortex_m_generic (cortex-m4+fp ...): its library
    machine: str
    device: str  # Cortex_DFP device folder (ARMCM55 ...)
    cflags: tuple[str, ...]
    rom_base: int
    rom_size: int
    ram_base: int
    ram_size: int
    core_clock_hz: int  # the board clock SysTick counts in QEMU (not the DFP SystemCoreClock)


# Only boards verified by running a firmware are listed (see the issue for the others). The
# memory maps are QEMU 7.2's (hw/arm/mps2.c, mps2-tz.c; checked with ``info mtree``); the clocks
# are the boards' SYSCLK, which SysTick counts and the firmware's calibration confirms.
BOARDS = {
    "cortex-m4": Board(
        cpu="cortex-m4",
        tflm_arch="cortex-m4+fp",  # FLOAT=hard, -mcpu=cortex-m4 -mfpu=auto (fpv4-sp-d16) in TFLM
        machine="mps2-an386",
        device="ARMCM4",  # this Cortex_DFP has one ARMCM4 device, FPU present
        cflags=("-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"),
        rom_base=0x00000000,  # AN386 ZBT SSRAM1, 4 MB: vectors, code, model (flash-like)
        rom_size=0x00400000,
        ram_base=0x20000000,  # AN386 ZBT SSRAM2&3, 4 MB: data, bss (arena), heap, stack
        ram_size=0x00400000,
        core_clock_hz=25_000_000,  # QEMU mps2 SYSCLK (calibrated: 40 instructions/tick)
    ),
    "cortex-m7": Board(
        cpu="cortex-m7",
        tflm_arch="cortex-m7+fp",  # FLOAT=hard, -mcpu=cortex-m7 -mfpu=auto (fpv5-d16) in TFLM
        machine="mps2-an500",
        device="ARMCM7",  # this Cortex_DFP has one ARMCM7 device, double-precision FPU
        cflags=("-mcpu=cortex-m7", "-mthumb", "-mfpu=fpv5-d16", "-mfloat-abi=hard"),
        rom_base=0x00000000,  # AN500 ZBT SSRAM1, 4 MB: vectors, code, model (flash-like)
        rom_size=0x00400000,
        ram_base=0x20000000,  # AN500 ZBT SSRAM2&3, 4 MB (its PSRAM is at 0x60000000)
        ram_size=0x00400000,
        core_clock_hz=25_000_000,  # QEMU mps2 SYSCLK (calibrated: 40 instructions/tick)
    ),
    "cortex-m55": Board(
        cpu="cortex-m55",
        tflm_arch="cortex-m55",
        machine="mps3-an547",
        device="ARMCM55",
        cflags=("-mcpu=cortex-m55", "-mthumb", "-mfloat-abi=hard"),
        rom_base=0x00000000,  # AN547 ITCM, 512 KB: vectors, code, model (flash-like)
        rom_size=0x00080000,
        ram_base=0x60000000,  # AN547 DDR: data, bss (arena), heap, stack
        ram_size=0x01000000,
        core_clock_hz=32_000_000,  # QEMU mps3-an547 SYSCLK (calibrated: 31.25 instructions/tick)
    ),
}

STACK_SIZE = 0x10000
HEAP_SIZE = 0x40000


def board_for(target: str) -> Board:
    """The board a ``--target`` runs on, or one line naming the targets that exist."""
    try:
        return BOARDS[target]
    except KeyError:
        raise EdgesmithError(
            f"firmware target {target!r} is not supported; expected one of {', '.join(BOARDS)}"
        ) from None


def op_resolver_header(operators: dict[str, int] | list[str]) -> str:
    """``op_resolver.h``: a ``MicroMutableOpResolver<N>`` holding exactly the model's ops.

    Raises:
        EdgesmithError: an op TFLM's resolver has no entry for here (named).
    """
    names = sorted(set(operators))
    if not names:
        raise EdgesmithError("the model has no operators; expected at least one builtin op")
    missing = [n for n in names if n not in RESOLVER_METHODS]
    if missing:
        raise EdgesmithError(
            f"op(s) {', '.join(missing)} have no firmware resolver entry; "
            f"expected ops among {', '.join(sorted(RESOLVER_METHODS))}"
        )
    adds = "\n".join(
        f"  if (r.{RESOLVER_METHODS[n]}() != kTfLiteOk) return kTfLiteError;" for n in names
    )
    return (
        "// Generated by edgesmith: the model's ops only.\n"
        "#ifndef EDGESMITH_OP_RESOLVER_H_\n#define EDGESMITH_OP_RESOLVER_H_\n\n"
        '#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"\n\n'
        f"constexpr int kNumOps = {len(names)};\n"
        "using OpResolver = tflite::MicroMutableOpResolver<kNumOps>;\n\n"
        "inline TfLiteStatus RegisterOps(OpResolver& r) {\n"
        f"{adds}\n  return kTfLiteOk;\n}}\n\n#endif  // EDGESMITH_OP_RESOLVER_H_\n"
    )


def main_cc(*, arena_bytes: int, input_bytes: int, output_bytes: int, device: str) -> str:
    """``main.cc``: reads N inputs from ``input.bin`` (semihosting), writes ``output.bin``.

    Instructions are counted with SysTick (the processor clock): under ``-icount shift=0`` QEMU
    runs one instruction per virtual nanosecond, so one tick is 1e9 / SystemCoreClock
    instructions; a fixed-length calibration loop is timed first and printed to check that.
    """
    if arena_bytes <= 0 or input_bytes <= 0 or output_bytes <= 0:
        raise EdgesmithError("arena, input and output sizes must be positive byte counts")
    return f"""// Generated by edgesmith: run the model on every input in input.bin.
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "{device}.h"
#include "model_data.h"
#include "op_resolver.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/schema/schema_generated.h"

constexpr size_t kArenaBytes = {arena_bytes};
constexpr size_t kInputBytes = {input_bytes};
constexpr size_t kOutputBytes = {output_bytes};
alignas(16) static uint8_t g_arena[kArenaBytes];

static volatile uint32_t g_wraps = 0;
extern "C" void SysTick_Handler(void) {{ g_wraps = g_wraps + 1; }}

static uint64_t ticks() {{
  uint32_t w1, v;
  do {{
    w1 = g_wraps;
    v = SysTick->VAL;
  }} while (w1 != g_wraps);
  return (uint64_t)w1 * 0x1000000ull + (0xFFFFFFu - v);
}}

static void calibration_loop(uint32_t n) {{
  // 2 instructions per iteration (subs + bne).
  __asm volatile("1: subs %0, %0, #1\\n bne 1b\\n" : "+r"(n) : : "cc");
}}

int main() {{
  SysTick->LOAD = 0xFFFFFFu;
  SysTick->VAL = 0;
  SysTick->CTRL = SysTick_CTRL_CLKSOURCE_Msk | SysTick_CTRL_TICKINT_Msk | SysTick_CTRL_ENABLE_Msk;
  while (SysTick->VAL == 0) {{
  }}  // the first reload: VAL reads 0 until SysTick has loaded LOAD

  uint64_t c0 = ticks();
  calibration_loop(5000000u);
  uint64_t c1 = ticks();
  printf("calibration_ticks_per_10M_instructions=%llu\\n", (unsigned long long)(c1 - c0));
  printf("dfp_system_core_clock_hz=%lu\\n", (unsigned long)SystemCoreClock);

  const tflite::Model* model = tflite::GetModel(g_model_data);
  static OpResolver resolver;
  if (RegisterOps(resolver) != kTfLiteOk) {{ printf("error=op_resolver\\n"); return 3; }}
  static tflite::MicroInterpreter interpreter(model, resolver, g_arena, kArenaBytes);
  if (interpreter.AllocateTensors() != kTfLiteOk) {{
    printf("error=allocate_tensors\\n");
    return 4;
  }}
  printf("arena_used_bytes=%u\\n", (unsigned)interpreter.arena_used_bytes());
  TfLiteTensor* in = interpreter.input(0);
  TfLiteTensor* out = interpreter.output(0);
  if (in->bytes != kInputBytes || out->bytes != kOutputBytes) {{
    printf("error=io_size\\n");
    return 5;
  }}

  FILE* fin = fopen("input.bin", "rb");
  FILE* fout = fopen("output.bin", "wb");
  if (!fin || !fout) {{ printf("error=semihosting_files\\n"); return 6; }}
  unsigned count = 0;
  while (fread(in->data.raw, 1, kInputBytes, fin) == kInputBytes) {{
    uint64_t t0 = ticks();
    TfLiteStatus status = interpreter.Invoke();
    uint64_t t1 = ticks();
    if (status != kTfLiteOk) {{ printf("error=invoke %u\\n", count); return 7; }}
    fwrite(out->data.raw, 1, kOutputBytes, fout);
    printf("inference=%u ticks=%llu\\n", count, (unsigned long long)(t1 - t0));
    ++count;
  }}
  fclose(fin);
  fclose(fout);
  printf("inferences=%u\\n", count);
  return 0;
}}
"""


START_C = """/* Generated by edgesmith: newlib semihosting without crt0.
 * newlib's crt0 moves the stack from SYS_HEAPINFO, which trips the v8-M stack limit, so the
 * CMSIS startup file calls this _start with the linker script's stack in place. */
#include <stdlib.h>
extern void initialise_monitor_handles(void);
extern void __libc_init_array(void);
extern int main(void);
void _init(void) {}
void _fini(void) {}
void _start(void) {
  initialise_monitor_handles();
  __libc_init_array();
  exit(main());
}
"""


def linker_script(template: str, board: Board) -> str:
    """Cortex_DFP's ``<device>_gcc.ld`` with the board's memory map, stack and heap.

    Raises:
        EdgesmithError: the template lacks one of the symbols it is expected to define.
    """
    values = {
        "__ROM_BASE": board.rom_base,
        "__ROM_SIZE": board.rom_size,
        "__RAM_BASE": board.ram_base,
        "__RAM_SIZE": board.ram_size,
        "__STACK_SIZE": STACK_SIZE,
        "__HEAP_SIZE": HEAP_SIZE,
    }
    lines = template.splitlines()
    for symbol, value in values.items():
        hits = [i for i, line in enumerate(lines) if line.replace(" ", "").startswith(symbol + "=")]
        if len(hits) != 1:
            raise EdgesmithError(
                f"linker script template has {len(hits)} definitions of {symbol}; expected one"
            )
        lines[hits[0]] = f"{symbol} = 0x{value:08X};"
    return "\n".join(lines) + "\n"


def write_project(
    directory: Path,
    *,
    operators: dict[str, int] | list[str],
    arena_bytes: int,
    input_bytes: int,
    output_bytes: int,
    linker_template: str,
    board: Board,
) -> list[str]:
    """Write op_resolver.h, main.cc, start.c and the linker script; return their names."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        "op_resolver.h": op_resolver_header(operators),
        "main.cc": main_cc(
            arena_bytes=arena_bytes,
            input_bytes=input_bytes,
            output_bytes=output_bytes,
            device=board.device,
        ),
        "start.c": START_C,
        "firmware.ld": linker_script(linker_template, board),
    }
    for name, text in files.items():
        (directory / name).write_text(text)
    return sorted(files)
