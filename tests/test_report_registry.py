"""The report's accuracy plots and at-a-glance speed read the operation registry (each entry's
`report`), so a registered operation is drawn, labelled and headlined without an edit to the report."""
import dataclasses

from attnconf import operations
from attnconf.conformance import report
from attnconf.conformance.report import plots

TOY = operations.Operation(name="toy_plot", title="toy", inputs=("x",),
                           report={"plot": "attention", "length": ("x", -1), "label": "toy", "headline": True})


def _rec(operation, L, **kw):
    return {"check": "agreement", "operation": operation, "impl": "impl-a", "dtype": "float32", "status": "pass",
            "metrics": {"max_ulp_error": 1.5}, "shapes": {"x": [2, L]}, **kw}


def _register(monkeypatch, *ops):
    operations.operations()      # the bundled entries first, then these (restored after the test)
    for op in ops:
        monkeypatch.setitem(operations._REGISTRY, op.name, op)


def test_an_unregistered_operation_is_drawn_in_no_plot():
    assert plots.attention_error_plots([_rec("toy_plot", 8), _rec("toy_plot", 16)]) == []


def test_a_registered_operation_joins_the_plot_its_entry_names_with_its_label(monkeypatch):
    _register(monkeypatch, TOY)
    svg = "".join(plots.attention_error_plots([_rec("toy_plot", 8), _rec("toy_plot", 16)]))
    assert "impl-a (toy)" in svg, svg[:500]
    assert plots.encoding_error_plots([_rec("toy_plot", 8)]) == []


def test_the_headline_speed_is_the_entry_marked_headline(monkeypatch):
    sdpa = operations.get("sdpa")
    _register(monkeypatch, dataclasses.replace(sdpa, report={**sdpa.report, "headline": False}), TOY)
    rows = [{"adapter": "a", "operation": op, "dtype": "float32", "gflops": g, "pct_peak": None, "L": 256}
            for op, g in (("sdpa", 4.0), ("toy_plot", 2.0))]
    assert report._glance_speed(rows, "a") == "toy_plot: 2.0 GFLOP/s at L=256 (float32)"


def test_sections_follow_the_spec_index_so_rope_sits_after_encodings():
    """'By spec section' lists sections in spec/index.json's order, a new operation's among them."""
    from attnconf import spec
    from attnconf.conformance.report.merge import merge
    from attnconf.conformance.report.model import Run

    clause_sections = {c["id"]: c["section"] for c in spec.load_index()["clauses"]}
    recs = [{"adapter": "a", "framework": "numpy", "operation": op, "case": f"{op}/x", "clauses": [clause],
             "dtype": "float64", "check": "agreement", "status": "pass", "metrics": {}, "message": "",
             "repro": "", "options": {}, "shapes": {}}
            for op, clause in (("rotary_embedding", "rope.dtype"), ("sdpa", "sdpa.dtype"),
                               ("sinusoidal_encoding", "enc.dtype"), ("sdpa", "inv.convex_hull"))]
    run = Run(label="run1", source="mem", data={"results": recs, "adapters": []}, records=recs)
    index_order = [s["id"] for s in spec.load_index()["sections"]]
    merged = merge([run], clause_sections, None, index_order)
    assert merged.sections == [s for s in index_order if s in ("sdpa", "enc", "rope", "inv")]
    assert merged.sections.index("rope") == merged.sections.index("enc") + 1
