"""The report renders from results files alone: the operation metadata a results file carries
(top-level "operations": title, section, order, clauses and the registry entry's report hints)
decides which plot an operation's records join, their label and the headline speed — not the
operation registry of the process that opens the file. A file written before results carried
the metadata keeps the plots of the operations it could name."""

from attnconf import operations
from attnconf.conformance import report
from attnconf.conformance.report import plots, render_html
from attnconf.conformance.report.model import LEGACY_OPERATIONS, Run, operations_of
from attnconf.conformance.results.files import new_document
from attnconf.conformance.results.metadata import operations_metadata

TOY_META = {"toy_plot": {"title": "toy", "section": "sdpa", "order": 9, "clauses": ["sdpa.output"],
                         "report": {"plot": "attention", "length": ["x", -1], "label": "toy", "headline": True}}}


def _rec(operation, L, **kw):
    return {"check": "agreement", "operation": operation, "impl": "impl-a", "dtype": "float32", "status": "pass",
            "metrics": {"max_ulp_error": 1.5}, "shapes": {"x": [2, L]}, **kw}


def _doc(ops, records):
    doc = new_document(command=["attnconf", "run"])
    doc["operations"] = ops
    doc["results"] = [{"adapter": "impl-a", "framework": "numpy", "case": f"{r['operation']}/L{r['shapes']['x'][1]}",
                       "clauses": ["sdpa.output"], "repro": "", "message": "", **{k: v for k, v in r.items() if k != "impl"}}
                      for r in records]
    return doc


def test_an_operation_the_files_do_not_describe_is_drawn_in_no_plot():
    assert plots.attention_error_plots([_rec("toy_plot", 8), _rec("toy_plot", 16)], {}) == []
    assert plots.attention_error_plots([_rec("toy_plot", 8)], {"toy_plot": {"report": {"plot": "attention",
                                                                                       "length": "x"}}}) == []


def test_a_described_operation_joins_the_plot_its_metadata_names_with_its_label():
    svg = "".join(plots.attention_error_plots([_rec("toy_plot", 8), _rec("toy_plot", 16)], TOY_META))
    assert "impl-a (toy)" in svg, svg[:500]
    assert plots.encoding_error_plots([_rec("toy_plot", 8)], TOY_META) == []


def test_the_page_does_not_depend_on_the_live_registry(monkeypatch):
    """The same file renders the same plots whatever this process has registered."""
    doc = _doc(TOY_META, [_rec("toy_plot", 8), _rec("toy_plot", 16)])
    before = render_html([doc])
    assert "impl-a (toy)" in before
    operations.operations()   # the bundled entries first, then a conflicting toy (restored after the test)
    other = operations.Operation(name="toy_plot", title="other", inputs=("x",), report={"plot": "encoding"})
    monkeypatch.setitem(operations._REGISTRY, "toy_plot", other)
    after = render_html([doc])
    assert "impl-a (toy)" in after and "Encodings: max error" not in after


def test_the_headline_speed_is_the_operation_marked_headline():
    ops = {"sdpa": {**LEGACY_OPERATIONS["sdpa"], "report": {**LEGACY_OPERATIONS["sdpa"]["report"], "headline": False}},
           **TOY_META}
    rows = [{"adapter": "a", "operation": op, "dtype": "float32", "gflops": g, "pct_peak": None, "L": 256}
            for op, g in (("sdpa", 4.0), ("toy_plot", 2.0))]
    assert report._glance_speed(rows, "a", ops) == "toy_plot: 2.0 GFLOP/s at L=256 (float32)"


def test_a_results_document_carries_the_registry_metadata():
    meta = new_document(command=["x"])["operations"]
    assert list(meta) == [op.name for op in operations.operations()]
    for order, op in enumerate(operations.operations()):
        m = meta[op.name]
        assert (m["title"], m["order"], m["clauses"]) == (op.title, order, list(op.clauses))
        assert m["report"] == {k: list(v) if isinstance(v, tuple) else v for k, v in op.report.items()}
    assert meta["sdpa"]["section"] == "sdpa" and meta["rotary_embedding"]["section"] == "rope"
    assert meta == operations_metadata()


def test_an_older_file_without_metadata_keeps_its_plots():
    old = Run(label="old", source="mem", data={"results": []})
    assert operations_of([old])["sdpa"]["report"]["plot"] == "attention"
    new = Run(label="new", source="mem", data={"operations": TOY_META, "results": []})
    assert operations_of([new]) == TOY_META   # a file with metadata is taken at its word


def test_sections_follow_the_spec_index_so_rope_sits_after_encodings():
    """'By spec section' lists sections in spec/index.json's order, a new operation's among them."""
    from attnconf import spec
    from attnconf.conformance.report.merge import merge

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


def test_a_record_without_clauses_counts_in_its_operations_section_from_the_file():
    from attnconf.conformance.report.merge import record_sections

    rec = {"clauses": [], "operation": "toy_plot"}
    assert record_sections(rec, {}, TOY_META) == ["sdpa"]
    assert record_sections(rec, {}, {}) == ["other"]


