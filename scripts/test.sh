#!/usr/bin/env bash
# Set up a virtual environment with every extra and run the whole test suite (fast and slow tests).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[web,postgres,dask,test,openvino,peers]"
.venv/bin/python -m pytest "$@"
