"""Build step that puts the firmware and the models into the wheel (metadata: pyproject.toml).

A wheel holds only files under its packages, and package-data cannot reach outside a
package's folder, so ``build_py`` copies ``firmware/`` and ``models/`` (the files that
``DATA_FILES`` names) to ``ffkit/_data/``, where ``ffkit.shipped`` finds them
once installed. An editable install copies nothing: it runs from the checkout, whose own
folders ``ffkit.shipped`` finds first.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent

# What a wheel carries: (folder under the repo, glob patterns of the files taken from it and
# its subfolders). Build outputs (*.mpy, __pycache__, native build-*/ folders) are left out.
DATA_FILES = (
    ("firmware", ("*.py", "*.c", "*.h", "*.mk", "Makefile", "package.json")),
    ("models", ("*.ffw", "*.toml")),
)


def _is_output(rel: Path) -> bool:
    # only folders are judged: a module may well be called build*.py
    return any(d == "__pycache__" or d.startswith("build-") for d in rel.parts[:-1])


class BuildWithShippedData(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        dest_root = Path(self.build_lib) / "ffkit" / "_data"
        for folder, patterns in DATA_FILES:
            src = ROOT / folder
            dest = dest_root / folder
            if dest.exists():
                shutil.rmtree(dest)  # a stale build/ must not keep files since removed
            for pattern in patterns:
                for f in sorted(src.rglob(pattern)):
                    rel = f.relative_to(src)
                    if not f.is_file() or _is_output(rel):
                        continue
                    target = dest / rel
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(f, target)


setup(cmdclass={"build_py": BuildWithShippedData})
