"""Reading segment files and folders, and writing a spec back as YAML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from workbench.errors import SegmentSpecError
from workbench.segments.spec import SegmentSpec, parse_segment, to_dict

__all__ = ["load_segment", "load_segments", "segment_files", "to_yaml"]


def load_segment(path: str | Path) -> SegmentSpec:
    """Read and validate one segment file."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SegmentSpecError("segment file not found", where=str(path)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise SegmentSpecError(
            f"not valid YAML ({getattr(exc, 'problem', exc)})", where=where
        ) from None
    except ValueError as exc:  # YAML reads 2024-13-01 as a date and fails on it
        raise SegmentSpecError(
            f"a value cannot be read ({exc})",
            where=str(path),
            fix="write dates as YYYY-MM-DD with a valid month and day",
        ) from None
    return parse_segment(raw, source=str(path))


def segment_files(location: str | Path | list[str] | list[Path]) -> list[Path]:
    """The segment files ``params.segments`` points at.

    Parameters
    ----------
    location : str, Path or list of them
        A folder (its ``*.yaml`` / ``*.yml`` files, not sub-folders), a file, or a list of both.
    """
    items = location if isinstance(location, list) else [location]
    files: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml"))
        elif path.is_file():
            files.append(path)
        else:
            raise SegmentSpecError(
                "segment file or folder not found",
                where=str(path),
                fix="set 'segments:' in the params file to a folder or a list of YAML files",
            )
    return files


def load_segments(location: str | Path | list[str] | list[Path]) -> list[SegmentSpec]:
    """Read and validate every segment file of ``location``; names must be unique."""
    specs: list[SegmentSpec] = []
    seen: dict[str, Path] = {}
    for path in segment_files(location):
        spec = load_segment(path)
        if spec.name in seen:
            raise SegmentSpecError(
                f"segment name {spec.name!r} is also used by {seen[spec.name]}",
                where=str(path),
                fix="give every segment a unique name",
            )
        seen[spec.name] = path
        specs.append(spec)
    return specs


class _Dumper(yaml.SafeDumper):
    """Lists of plain values in flow style (``[vip, loyal]``), the rest in block style."""


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    flow = all(not isinstance(v, dict | list) for v in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _represent_list)


def to_yaml(spec: SegmentSpec) -> str:
    """The spec as a segment file; :func:`parse_segment` of it gives an equal spec."""
    return yaml.dump(to_dict(spec), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
