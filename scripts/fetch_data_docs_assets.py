#!/usr/bin/env python3
"""Re-fetch the Data Docs' CSS and JavaScript from the npm registry into the project.

Reads plugins/calltrail/quality/data_docs_assets/manifest.json; for each package runs
``npm pack NAME@VERSION`` (the registry set in npm's configuration), refuses a tarball whose
integrity differs from the manifest's, and copies the files the manifest names, with the package's
licence files, into ``data_docs_assets/<package>-<version>/``. Files not named in the manifest are
removed, so the folder holds exactly what the manifest lists.

    python3 scripts/fetch_data_docs_assets.py            # fetch, check and copy
    python3 scripts/fetch_data_docs_assets.py --check    # only compare the folder with fresh tarballs

Needs ``npm`` (Node.js) on PATH and the npm registry; the project itself needs neither.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ASSETS = Path(__file__).resolve().parents[1] / "plugins" / "calltrail" / "quality" / "data_docs_assets"


def folder_name(name: str, version: str) -> str:
    return f"{name.rsplit('/', 1)[-1]}-{version}"


def npm_pack(name: str, version: str, integrity: str, into: Path) -> tarfile.TarFile:
    out = subprocess.run(["npm", "pack", f"{name}@{version}", "--json", "--pack-destination", str(into)],
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        sys.exit(f"npm pack {name}@{version} failed: {out.stderr.strip()[-500:]}")
    info = json.loads(out.stdout)[0]
    if info["integrity"] != integrity:
        sys.exit(f"{name}@{version}: the registry's tarball has integrity {info['integrity']}, the manifest "
                 f"{integrity}: refusing it (update the manifest only after checking why it changed)")
    return tarfile.open(into / info["filename"])


def wanted(package: dict) -> dict[str, str]:
    """Path in the tarball (under package/) -> path under the package's folder."""
    files = {f: f for f in [*package["cdn"].values(), *package.get("also", [])]}
    files.update({f: f for f in package["licence_files"]})
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare only; change nothing")
    args = parser.parse_args()
    manifest = json.loads((ASSETS / "manifest.json").read_text())
    expected: set[Path] = {ASSETS / "manifest.json", ASSETS / "README.md"}
    differences = []
    with tempfile.TemporaryDirectory() as tmp:
        for package in manifest["packages"]:
            target = ASSETS / folder_name(package["name"], package["version"])
            sources = [(package, wanted(package))]
            if "licence_from" in package:
                src = package["licence_from"]
                sources.append((src, {src["file"]: f"LICENSE.{src['name']}-{src['version']}"}))
            for source, files in sources:
                with npm_pack(source["name"], source["version"], source["integrity"], Path(tmp)) as tar:
                    for inner, local in files.items():
                        data = tar.extractfile(f"package/{inner}")
                        if data is None:
                            sys.exit(f"{source['name']}@{source['version']} has no file {inner}")
                        content = data.read()
                        path = target / local
                        expected.add(path)
                        if not path.exists() or path.read_bytes() != content:
                            differences.append(path)
                            if not args.check:
                                path.parent.mkdir(parents=True, exist_ok=True)
                                path.write_bytes(content)
    extra = [p for p in ASSETS.rglob("*") if p.is_file() and p not in expected]
    for path in extra:
        differences.append(path)
        if not args.check:
            path.unlink()
    if not args.check:
        for folder in sorted((p for p in ASSETS.rglob("*") if p.is_dir()), reverse=True):
            if not any(folder.iterdir()):
                shutil.rmtree(folder)
    for path in differences:
        print(("differs: " if args.check else "updated: ") + str(path.relative_to(ASSETS)))
    print(f"{len(differences)} file(s) {'differ' if args.check else 'updated'}; "
          f"{len(expected) - 2} file(s) from {len(manifest['packages'])} package(s)")
    return 1 if args.check and differences else 0


if __name__ == "__main__":
    sys.exit(main())
