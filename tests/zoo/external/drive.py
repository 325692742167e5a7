"""Drive the C SDPA over an `attnconf golden export` folder: the "compute elsewhere" step of
docs/non-python.md. Uses only the standard library and the exported files — no attnconf, no
NumPy — as a build script in another language's project would.

    python drive.py EXPORT_DIR OUTPUTS_DIR SDPA_BINARY [--ops sdpa,sdpa_lse,merge_attention_states]
                    [--dtype float64|float32] [--bug scale|lse-base2|nan-empty]

Writes OUTPUTS_DIR/<case id>/output.npy for every sdpa case of EXPORT_DIR/index.json (--ops: the
operations to compute, default sdpa), and lse.npy beside it for sdpa_lse and
merge_attention_states cases.
"""
import json
import os
import subprocess
import sys


def main(argv):
    export_dir, outputs_dir, binary = argv[:3]
    extra = argv[3:]
    ops = ["sdpa"]
    if "--ops" in extra:
        at = extra.index("--ops")
        ops = extra[at + 1].split(",")
        extra = extra[:at] + extra[at + 2:]
    with open(os.path.join(export_dir, "index.json"), encoding="utf-8") as f:
        index = json.load(f)
    done = 0
    for case in index["cases"]:
        if case["operation"] not in ops:
            continue
        inputs = {name: os.path.join(export_dir, entry["path"]) for name, entry in case["inputs"].items()}
        opts = case["options"]
        out = os.path.join(outputs_dir, case["id"], "output.npy")
        lse = os.path.join(outputs_dir, case["id"], "lse.npy")
        os.makedirs(os.path.dirname(out), exist_ok=True)
        if case["operation"] == "merge_attention_states":
            subprocess.run([binary, "--merge", out, lse, inputs["outputs"], inputs["lses"]] + extra, check=True)
            done += 1
            continue
        cmd = [binary, out, inputs["query"], inputs["key"], inputs["value"]]
        if case["operation"] == "sdpa_lse":
            cmd += ["--lse", lse]
        if "attn_mask" in inputs:
            cmd += ["--mask", inputs["attn_mask"]]
        if opts.get("is_causal"):
            cmd += ["--causal", opts.get("causal_alignment", "top_left")]
        if opts.get("scale") is not None:
            cmd += ["--scale", repr(float(opts["scale"]))]
        subprocess.run(cmd + extra, check=True)
        done += 1
    assert "attnconf" not in sys.modules and "numpy" not in sys.modules
    print(f"computed {done} cases of {', '.join(ops)}")


if __name__ == "__main__":
    main(sys.argv[1:])
