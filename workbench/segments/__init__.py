"""Segments: YAML spec, compiler to ibis, analytics, growth, and the interactive builder.

Public API::

    from workbench.segments import SegmentData, SegmentRun, load_segments, parse_segment
    specs = load_segments("params/segments/")          # validate the files
    data = SegmentData.from_context(ctx)               # a run folder's tables
    membership = evaluate_segments(specs, data)        # segment, customer_id

The builder (``workbench.segments.builder.SegmentBuilder``) imports ipywidgets and is only
used interactively.
"""

from workbench.segments.check import check_segment, check_segments
from workbench.segments.data import SegmentData
from workbench.segments.evaluate import evaluate_segments, segment_members
from workbench.segments.files import load_segment, load_segments, segment_files, to_yaml
from workbench.segments.outputs import SegmentRun
from workbench.segments.spec import SegmentSpec, parse_segment

__all__ = [
    "SegmentData",
    "SegmentRun",
    "SegmentSpec",
    "check_segment",
    "check_segments",
    "evaluate_segments",
    "load_segment",
    "load_segments",
    "parse_segment",
    "segment_files",
    "segment_members",
    "to_yaml",
]
