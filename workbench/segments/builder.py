"""An ipywidgets segment builder for JupyterLab: conditions from dropdowns, live count, YAML out.

Interactive use only (``notebooks/03_segments.ipynb``, the cell tagged ``interactive``, run
only when ``run_dir`` is None); headless runs read the YAML files. Usage::

    from workbench.segments.builder import SegmentBuilder
    builder = SegmentBuilder(data)             # SegmentData of the lab run
    builder.load(load_segment("params/segments/vip_slipping_away.yaml"))  # optional
    builder                                    # shows the widget

Conditions combine in groups (``all`` = AND, ``any`` = OR), each condition or group can be
negated (NOT), groups nest. The member count and a preview refresh after every change; *save*
writes ``params/segments/<name>.yaml`` in the same format as a hand-written file
(:func:`workbench.segments.spec.to_yaml`). Everything is also callable from code
(:meth:`SegmentBuilder.to_spec`, :meth:`GroupEditor.add_condition`, ...), which is how the
round trip YAML -> builder -> YAML is tested.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ipywidgets as widgets

from workbench import config
from workbench.segments import conditions as c
from workbench.segments.builder_fields import BuilderOptions, FieldInput, field_inputs
from workbench.segments.data import SegmentData
from workbench.segments.evaluate import csv_columns, segment_members
from workbench.segments.files import to_yaml as spec_to_yaml
from workbench.segments.spec import (
    All,
    AnyOf,
    Node,
    Not,
    SegmentSpec,
    node_to_raw,
    parse_segment,
    to_dict,
)

__all__ = ["ConditionEditor", "GroupEditor", "SegmentBuilder"]

log = logging.getLogger(__name__)


class ConditionEditor:
    """One condition: its field widgets and a NOT switch."""

    def __init__(self, key: str, opts: BuilderOptions, changed: Callable[[], None]) -> None:
        self.key, self.cls, self.changed = key, c.CONDITIONS[key], changed
        self.fields: dict[str, FieldInput] = field_inputs(self.cls, opts)
        self.negate = widgets.Checkbox(description="NOT", indent=False)
        self.remove = widgets.Button(description="remove", button_style="warning")
        header = widgets.HBox([widgets.HTML(f"<b>{key}</b> <i>{self.cls.help}</i>"), self.negate])
        self.widget = widgets.VBox(
            [header, *(f.box for f in self.fields.values()), self.remove],
            layout=widgets.Layout(border="1px solid #ccc", padding="4px", margin="2px 0"),
        )
        if key == "interested_in":
            targets = opts.targets

            def update_targets(change: dict[str, Any]) -> None:
                self.fields["target"].widget.options = targets.get(change["new"], [])

            self.fields["level"].observe(update_targets)
        for f in (*self.fields.values(),):
            f.observe(lambda _change: self.changed())
        self.negate.observe(lambda _change: self.changed(), names="value")

    def set(self, **values: Any) -> ConditionEditor:
        """Set field values (YAML values, e.g. ``values=["vip"]``); returns self."""
        for name, value in values.items():
            self.fields[name].set(value)
        return self

    def node(self) -> Node:
        """The condition (wrapped in Not when negated); raises SegmentSpecError when invalid."""
        raw = {name: f.get() for name, f in self.fields.items() if f.get() is not None}
        spec = parse_segment({"name": "builder", "where": {self.key: raw}})
        return Not(item=spec.where) if self.negate.value else spec.where

    def load(self, cond: c.Condition, negate: bool = False) -> None:
        """Show a condition."""
        values = cond.model_dump()
        for name, f in self.fields.items():
            f.set(values[name])
        self.negate.value = negate


class GroupEditor:
    """A group of conditions and groups: ``all`` (AND) or ``any`` (OR), optionally negated."""

    def __init__(
        self,
        opts: BuilderOptions,
        changed: Callable[[], None],
        mode: str = "all",
        removable: bool = False,
    ) -> None:
        self.opts, self.changed = opts, changed
        self.children: list[ConditionEditor | GroupEditor] = []
        self.mode = widgets.ToggleButtons(options=["all", "any"], value=mode)
        self.mode.style.button_width = "60px"
        self.negate = widgets.Checkbox(description="NOT", indent=False)
        self.kind = widgets.Dropdown(options=list(c.CONDITIONS), description="condition")
        add = widgets.Button(description="add condition", icon="plus")
        add_group = widgets.Button(description="add group", icon="plus-square")
        add.on_click(lambda _b: self.add_condition(self.kind.value))
        add_group.on_click(lambda _b: self.add_group())
        self.remove = widgets.Button(description="remove group", button_style="warning")
        self.items = widgets.VBox([])
        controls = [self.mode, self.negate] + ([self.remove] if removable else [])
        self.widget = widgets.VBox(
            [widgets.HBox(controls), self.items, widgets.HBox([self.kind, add, add_group])],
            layout=widgets.Layout(border="2px solid #88a", padding="6px", margin="4px 0"),
        )
        self.mode.observe(lambda _change: self.changed(), names="value")
        self.negate.observe(lambda _change: self.changed(), names="value")

    def _attach(self, child: ConditionEditor | GroupEditor) -> None:
        child.remove.on_click(lambda _b: self.drop(child))
        self.children.append(child)
        self.items.children = [ch.widget for ch in self.children]

    def add_condition(self, key: str, **values: Any) -> ConditionEditor:
        """Append a condition (``values`` set its fields) and return its editor."""
        editor = ConditionEditor(key, self.opts, self.changed)
        editor.set(**values)
        self._attach(editor)
        self.changed()
        return editor

    def add_group(self, mode: str = "any") -> GroupEditor:
        """Append a nested group and return it."""
        group = GroupEditor(self.opts, self.changed, mode, removable=True)
        self._attach(group)
        self.changed()
        return group

    def drop(self, child: ConditionEditor | GroupEditor) -> None:
        """Remove a child."""
        self.children.remove(child)
        self.items.children = [ch.widget for ch in self.children]
        self.changed()

    def node(self) -> Node:
        """The group's tree; a group of one child is that child."""
        if not self.children:
            raise ValueError("the group is empty: add a condition")
        nodes = tuple(ch.node() for ch in self.children)
        if len(nodes) == 1:
            inner = nodes[0]
        else:
            inner = All(items=nodes) if self.mode.value == "all" else AnyOf(items=nodes)
        return Not(item=inner) if self.negate.value else inner

    def load(self, node: Node) -> None:
        """Replace the children by the tree ``node``."""
        self.children = []
        self.negate.value = False
        if isinstance(node, Not) and not isinstance(node.item, c.Condition):
            self.negate.value, node = True, node.item
        if isinstance(node, All | AnyOf):
            self.mode.value = "all" if isinstance(node, All) else "any"
            items = node.items
        else:
            items = (node,)
        for item in items:
            if isinstance(item, c.Condition) or (
                isinstance(item, Not) and isinstance(item.item, c.Condition)
            ):
                negate = isinstance(item, Not)
                cond = item.item if negate else item
                editor = ConditionEditor(cond.key, self.opts, self.changed)
                editor.load(cond, negate)
                self._attach(editor)
            else:
                group = GroupEditor(self.opts, self.changed, removable=True)
                group.load(item)
                self._attach(group)


class SegmentBuilder:
    """The builder widget.

    Parameters
    ----------
    data : SegmentData, optional
        Data for the dropdowns, the live count and the preview (none: a plain editor).
    folder : Path
        Where *save* writes (default ``params/segments/``).
    preview_rows : int
        Rows of the member preview.
    """

    def __init__(
        self,
        data: SegmentData | None = None,
        folder: Path | None = None,
        preview_rows: int = 10,
    ) -> None:
        self.data, self.preview_rows = data, preview_rows
        self.folder = Path(folder or config.PARAMS_DIR / "segments")
        self.opts = BuilderOptions.of(data)
        self._quiet = False
        self.preview_frame = None
        self.name = widgets.Text(description="name", value="new_segment")
        self.description = widgets.Textarea(description="description", rows=2)
        columns = sorted({*self.opts.columns, "predicted_clv", "expected_orders"})
        columns = columns if self.opts.columns else []  # no data: any column name
        self.columns = widgets.TagsInput(value=["customer_id"], allowed_tags=columns)
        self.root = GroupEditor(self.opts, self.refresh)
        self.status = widgets.HTML()
        self.preview = widgets.Output()
        self.overwrite = widgets.Checkbox(description="overwrite", indent=False)
        save = widgets.Button(description="save YAML", icon="save", button_style="success")
        save.on_click(lambda _b: self._save_clicked())
        self.widget = widgets.VBox(
            [
                self.name,
                self.description,
                widgets.HBox([widgets.Label("columns"), self.columns]),
                self.root.widget,
                self.status,
                self.preview,
                widgets.HBox([save, self.overwrite]),
            ]
        )
        for w in (self.name, self.description, self.columns):
            w.observe(lambda _change: self.refresh(), names="value")

    def _ipython_display_(self) -> None:  # pragma: no cover - needs a front end
        from IPython.display import display

        display(self.widget)

    def load(self, spec: SegmentSpec) -> SegmentBuilder:
        """Show an existing segment; returns self."""
        self._quiet = True
        try:
            self.name.value = spec.name
            self.description.value = spec.description
            extra = [col for col in spec.columns if col not in self.columns.allowed_tags]
            if self.columns.allowed_tags and extra:
                self.columns.allowed_tags = [*self.columns.allowed_tags, *extra]
            self.columns.value = list(spec.columns)
            self.root.load(spec.where)
        finally:
            self._quiet = False
        self.refresh()
        return self

    def to_spec(self) -> SegmentSpec:
        """The segment the widgets describe (validated)."""
        raw = {
            "name": self.name.value.strip(),
            "description": self.description.value.strip(),
            "where": node_to_raw(self.root.node()),
            "columns": list(self.columns.value) or ["customer_id"],
        }
        return parse_segment(raw, source="builder")

    def to_yaml(self) -> str:
        """The segment as a segment file."""
        return spec_to_yaml(self.to_spec())

    def refresh(self) -> None:
        """Recount the members and redraw the preview (errors are shown, not raised)."""
        if self._quiet:
            return
        try:
            spec = self.to_spec()
        except Exception as exc:  # noqa: BLE001 - shown to the user in the widget
            self.status.value = f"<span style='color:#b00'>{_text(exc)}</span>"
            return
        if self.data is None:
            self.status.value = "valid segment (no data loaded: no count)"
            return
        try:
            members = segment_members(spec, self.data)
            count = int(members.count().to_pyarrow().as_py())
            head = members.select(*csv_columns(spec, self.data)).limit(self.preview_rows)
            frame = head.to_pandas()
        except Exception as exc:  # noqa: BLE001 - shown to the user in the widget
            self.status.value = f"<span style='color:#b00'>{_text(exc)}</span>"
            return
        share = count / self.data.n_customers if self.data.n_customers else 0.0
        self.status.value = f"<b>{count:,}</b> members ({share:.1%} of customers)"
        self.preview_frame = frame
        self.preview.clear_output()
        from IPython import get_ipython

        if get_ipython() is not None:  # pragma: no cover - needs a kernel
            from IPython.display import display

            with self.preview:
                display(frame)

    def save(self, path: Path | None = None, overwrite: bool = False) -> Path:
        """Write the segment file (default ``<folder>/<name>.yaml``) and return its path."""
        spec = self.to_spec()
        path = Path(path or self.folder / f"{spec.name}.yaml")
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} exists: tick 'overwrite' or pick another name")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(spec_to_yaml(spec), encoding="utf-8")
        return path

    def _save_clicked(self) -> None:  # pragma: no cover - needs a front end
        try:
            path = self.save(overwrite=self.overwrite.value)
        except Exception as exc:  # noqa: BLE001 - shown to the user in the widget
            self.status.value = f"<span style='color:#b00'>{_text(exc)}</span>"
            return
        self.status.value = f"saved {path}"

    def as_dict(self) -> dict[str, Any]:
        """The segment as a plain mapping (what the YAML holds)."""
        return to_dict(self.to_spec())


def _text(exc: BaseException) -> str:
    import html

    return html.escape(getattr(exc, "message", None) or str(exc)).replace("\n", "<br>")
