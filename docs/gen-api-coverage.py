#!/usr/bin/env python3
"""Regenerate the list of refused actions in docs/api-coverage.md from botocore's EC2 model and
kiln's action table (src/api/dispatch.c). Run: python3 docs/gen-api-coverage.py"""
import os
import re

import botocore.session

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MARK = "<!-- generated below by docs/gen-api-coverage.py -->"

served = set(re.findall(r'ACTION\("(\w+)", api_\w+',
                        open(os.path.join(ROOT, "src", "api", "dispatch.c")).read()))
model = botocore.session.get_session().get_service_model("ec2")
refused = [op for op in model.operation_names if op not in served]
path = os.path.join(ROOT, "docs", "api-coverage.md")
head = open(path).read().split(MARK)[0]
with open(path, "w") as f:
    f.write(head + MARK + "\n\n")
    f.write(f"## Refused: {len(refused)} of the {len(model.operation_names)} actions of EC2 "
            f"{model.api_version}\n\n")
    f.write("Each answers HTTP 400 `InvalidAction` (\"The action X is not valid for this web "
            "service.\"), after authentication, never a 5xx.\n\n")
    f.write(", ".join(f"`{op}`" for op in refused) + "\n")
