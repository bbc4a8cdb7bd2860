"""What every benchmark report shares: formatting of ratios and verdicts, and replacing one
section of bench/RESULTS.md while leaving the others alone."""
import os


def f_x(v):
    return "–" if v is None else "%.2fx" % v


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def verdict(ok):
    return "n/a (not measured)" if ok is None else ("**met**" if ok else "**not met**")


def splice(path, heading, text):
    """Put text in place of the section that starts with the line `heading` (up to the next
    `## ` heading), or append it; written to a temporary file and renamed."""
    if os.path.exists(path):
        lines = open(path).read().splitlines(keepends=True)
    else:
        lines = ["# kiln benchmark results\n", "\n"]
    start = next((i for i, l in enumerate(lines) if l.rstrip() == heading), None)
    if start is None:
        if lines and lines[-1].strip():
            lines.append("\n")
        lines.append(text)
    else:
        end = next((j for j in range(start + 1, len(lines)) if lines[j].startswith("## ")), len(lines))
        lines = lines[:start] + [text] + lines[end:]
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("".join(lines))
    os.replace(tmp, path)
