"""`vitcnn fingerprint`: this machine's identity (or its slug), as a run would record it."""

from __future__ import annotations

import argparse

from vitcnn.cli.common import command, error


def run(args: argparse.Namespace) -> int:
    """Exit 0 and print this machine's fingerprint as JSON (or its slug: the key of its baselines, compile cache and
    history series, e.g. for a CI cache key); 2 when the device is not there."""
    import json

    import torch

    from vitcnn import fingerprint

    if args.device == "cuda" and not torch.cuda.is_available():
        return error("fingerprint", "--device cuda asked for, but torch sees no CUDA device")
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    fp = fingerprint.collect(device)
    print(fingerprint.slug(fp) if args.slug else json.dumps(fp, indent=2, sort_keys=True))
    return 0


def add_fingerprint(subparsers) -> None:
    p = command(subparsers, "fingerprint", run, "this machine's fingerprint (or slug), as a run would record it")
    p.add_argument("--device", choices=("cpu", "cuda"), help="default: cuda when available, else cpu")
    p.add_argument("--slug", action="store_true", help="print only the slug")
