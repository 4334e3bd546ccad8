#!/usr/bin/env bash
# The Python packages benchmarks/gpu_check.sh needs that the GPU machine's image lacks (it has torch,
# transformers, peft, accelerate, pandas, pyarrow, matplotlib, rich, ...): downloaded here as Python 3.12
# x86-64 wheels into .whl/ (ignored by git through .git/info/exclude), to be carried there.
# Usage, from the repository root, on a machine that reaches PyPI:  bash benchmarks/gpu_wheels.sh
set -euo pipefail
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
rm -rf .whl && mkdir -p .whl
PLATFORMS=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
           --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any)
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  "${PLATFORMS[@]}" -d .whl \
  pydantic==2.14.4 pydantic_core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 \
  typing_extensions==4.16.0 typer==0.29.2 click==8.5.1 math-verify==0.9.0 \
  latex2sympy2_extended==1.11.0 antlr4-python3-runtime==4.13.2 trl==1.16.0 datasets==5.2.0 \
  dill==0.4.1 multiprocess==0.70.19
python3 -m pip wheel -q --no-deps -w .whl chess==1.11.2  # pure Python, published as a source archive only
du -sh .whl && ls .whl
