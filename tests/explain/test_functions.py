"""vitcnn/explain/functions.py: callgrind_annotate's function table, read into instructions per function."""

from __future__ import annotations

import subprocess
import sys

import pytest

from vitcnn.explain import functions
from vitcnn.measure import instructions

ANNOTATED = """--------------------------------------------------------------------------------
Ir
--------------------------------------------------------------------------------
1,000,000  PROGRAM TOTALS

--------------------------------------------------------------------------------
Ir       file:function
--------------------------------------------------------------------------------
500,000  ???:mkl_blas_avx2_sgemm_kernel_nocopy_NN_b0 [/venv/torch/lib/libtorch_cpu.so]
200,000  ???:0x00000000f11da000 [???]
100,000  ???:0x00000000f152f000 [???]
 90,000  Python/ceval.c:_PyEval_EvalFrameDefault'2 [/usr/lib/libpython3.11.so.1.0]
 60,000  Python/ceval.c:_PyEval_EvalFrameDefault [/usr/lib/libpython3.11.so.1.0]
 50,000  ./malloc/malloc.c:_int_malloc [/usr/lib/x86_64-linux-gnu/libc.so.6]

--------------------------------------------------------------------------------
-- Auto-annotated source: ...
"""


def test_functions_are_keyed_by_name_and_library_with_unnamed_code_and_recursion_merged():
    assert functions.parse(ANNOTATED) == {
        "mkl_blas_avx2_sgemm_kernel_nocopy_NN_b0 (libtorch_cpu.so)": 500_000,
        functions.UNNAMED: 300_000, "_PyEval_EvalFrameDefault (libpython3.11.so.1.0)": 150_000,
        "_int_malloc (libc.so.6)": 50_000}


def test_a_table_without_functions_is_an_error():
    with pytest.raises(functions.AnnotateError, match="no `file:function` table"):
        functions.parse("Ir\n1,000 PROGRAM TOTALS\n")


@pytest.mark.valgrind
@pytest.mark.skipif(instructions.unavailable_reason() is not None, reason=str(instructions.unavailable_reason()))
def test_a_real_dump_is_read_whole_its_functions_add_up_to_its_total(tmp_path):
    dump = tmp_path / "callgrind.out.test"
    subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={dump}", sys.executable, "-S", "-c",
                    "sum(i * i for i in range(20000))"], check=True, capture_output=True)
    costs = functions.function_costs(dump, kept=10**6)
    assert sum(costs.values()) == instructions.read_totals(dump)["Ir"]
    assert any(name.startswith("_PyEval_EvalFrameDefault") for name in costs)
    assert list(functions.function_costs(dump, kept=3)) == list(costs)[:3]
