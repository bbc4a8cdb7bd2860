#!/usr/bin/env python3
"""Regenerate the lists of refused actions in docs/api-coverage.md from botocore's models and
kiln's tables: EC2's action table (src/api/dispatch.c) and the Marketplace Catalog's routes
(src/api/catalog.c). Run: python3 docs/gen-api-coverage.py"""
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
    routes = set(re.findall(r'\{"(?:GET|POST|PATCH|PUT|DELETE)", "/(\w+)"',
                            open(os.path.join(ROOT, "src", "api", "catalog.c")).read()))
    cat = botocore.session.get_session().get_service_model("marketplace-catalog")
    refused = [op for op in cat.operation_names if op not in routes]
    f.write(f"\n## Refused: {len(refused)} of the {len(cat.operation_names)} operations of the "
            f"Marketplace Catalog {cat.api_version}\n\n")
    f.write("Each answers HTTP 404 `UnknownOperationException` in rest-json, after "
            "authentication.\n\n")
    f.write(", ".join(f"`{op}`" for op in refused) + "\n")
