"""A venv holding only what the GPU machine's image holds, for a CPU dry run of ``gpu_check.sh``.

The GPU machine lent to a session runs the image's Python (KINDS.md of the device tool lists its
packages, read 2026-11-17) plus the wheels ``gpu_bundle.py`` packs. This script links, from the
running environment, exactly those distributions into a new venv, so an import the image could
not satisfy fails here as it would there (and ``find_spec`` probes see the package as absent).
huggingface_hub's own needs count as present: the image's hub 1.x needs httpx (there), this
project's 2.x needs httpx2 (an artefact of emulating it with this environment).

    .venv/bin/python benchmarks/gpu_image.py /tmp/gpu-venv
    PY=/tmp/gpu-venv/bin/python SKIP_WHEELS=1 PYTHONPATH=src OUT=/tmp/gpu-dry SEEDS=42 \\
        THROUGHPUT_ARGS="--steps 4 --batch-size 4 --rows 64" \\
        CV_ARGS="--splits fold0 --set train.profile=quick" bash benchmarks/gpu_check.sh
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import re
import sys
import sysconfig
import venv
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gpu_bundle import BUILT, WHEELS  # noqa: E402

IMAGE = """absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch build
certifi charset-normalizer chex click cloudpickle cmake colorama contourpy coverage cuda-bindings cuda-core
cuda-pathfinder cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn einops equinox etils execnet filelock
flatbuffers flax fonttools formulaic frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx
huggingface-hub humanize hypothesis idna imageio iniconfig interface-meta jax jax-cuda13-pjrt jax-cuda13-plugin
jaxlib jaxtyping jinja2 joblib kiwisolver lazy-loader lightning lightning-utilities linear-operator lineax
llvmlite lxml markdown markdown-it-py markupsafe matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack multidict
multipledispatch mypy-extensions nanobind narwhals networkx ninja numba numba-cuda numpy numpyro nvidia-ml-py onnx
onnx-ir onnxruntime onnxscript opencv-python-headless optax opt-einsum opt-einsum-fx optimistix orbax-checkpoint
packaging pandas pathspec patsy peft pillow pip pluggy portalocker prometheus-client propcache protobuf psutil
pyarrow pybind11 py-cpuinfo pygments pyparsing pyproject-hooks pyre-extensions pytest pytest-benchmark pytest-cov
pytest-mock pytest-timeout pytest-xdist python-dateutil pytorch-lightning pyyaml regex requests rich sacrebleu
safetensors scikit-build-core scikit-image scikit-learn scipy seaborn sentencepiece sentence-transformers
setuptools shellingham simplejson six sortedcontainers statsmodels sympy tabulate tensorboard
tensorboard-data-server tensorstore threadpoolctl tifffile tiktoken timm tokenizers toolz torch torchaudio
torchdiffeq torch-geometric torchmetrics torchvision tqdm transformers treescope triton typer typing-extensions
typing-inspect urllib3 uvloop wadler-lindig werkzeug wheel wrapt xarray xxhash yarl zipp"""


def _norm(name: str) -> str:
    return name.lower().replace("_", "-")


def present() -> set[str]:
    """Normalized names of the distributions the GPU machine has: the image's, the bundle's, hub's needs."""
    names = {_norm(d) for d in IMAGE.split()} | {_norm(w) for w in WHEELS + BUILT}
    todo = ["huggingface-hub"]
    while todo:
        try:
            reqs = md.requires(todo.pop()) or []
        except md.PackageNotFoundError:  # e.g. tomli, needed below Python 3.11 only
            continue
        for req in reqs:
            name = _norm(re.split(r"[ ;<>=!~\[]", req)[0])
            if "extra" not in req and name not in names:
                names.add(name)
                todo.append(name)
    return names


def build(target: Path) -> list[str]:
    """Make the venv at ``target`` and link the present distributions' top-level entries into it."""
    venv.create(target, with_pip=False, symlinks=True, clear=True)
    purelib = Path(sysconfig.get_paths()["purelib"])
    site = target / Path(sysconfig.get_paths()["purelib"]).relative_to(sys.prefix)
    keep, linked = present(), []
    for dist in md.distributions():
        name = dist.metadata["Name"]
        if _norm(name) not in keep or not dist.files:
            continue
        linked.append(name)
        for top in {f.parts[0] for f in dist.files if f.parts[0] not in ("..", "__pycache__")}:
            source, dest = purelib / top, site / top
            if source.exists() and not dest.exists():
                dest.symlink_to(source)
    return sorted(linked)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", type=Path, help="Folder of the venv to make (replaced).")
    linked = build(parser.parse_args().target)
    print(f"{len(linked)} distributions linked: {', '.join(linked)}")


if __name__ == "__main__":
    main()
