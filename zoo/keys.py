"""What cache keys are made of: library versions, fingerprints of code, digests of weights."""
from __future__ import annotations

import ast
import hashlib
import inspect
import textwrap
from importlib import metadata

import torch


def package_version(name: str) -> str:
    """The installed version of distribution ``name`` without a local tag (``2.14.1``), or ``none``."""
    try:
        return metadata.version(name).split("+")[0]
    except metadata.PackageNotFoundError:
        return "none"


def package_versions(*names: str) -> dict[str, str]:
    return {n: package_version(n) for n in names}


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return tree


def code_fingerprint(*objects) -> str:
    """A hash of the code of modules, classes or functions, blind to comments, docstrings and layout:
    a key that holds it changes when the code's behaviour may have, not when its prose does."""
    h = hashlib.sha256()
    for obj in objects:
        source = inspect.getsource(obj)
        tree = _strip_docstrings(ast.parse(textwrap.dedent(source)))
        h.update(ast.dump(tree, annotate_fields=False, include_attributes=False).encode())
    return h.hexdigest()[:16]


def content_digest(obj) -> str:
    """SHA-256 of the tensors and plain values in ``obj`` (a state dict, nested dicts and lists), in a
    fixed order: two models with equal weights have the same digest, whenever they were saved."""
    h = hashlib.sha256()

    def walk(o) -> None:
        if isinstance(o, torch.Tensor):
            t = o.detach().cpu()
            if t.is_quantized:
                h.update(f"q{t.qscheme()}".encode())
                t = t.int_repr()
            h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.contiguous().view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        elif isinstance(o, dict):
            h.update(b"{")
            for k in sorted(o, key=str):
                h.update(str(k).encode() + b":")
                walk(o[k])
            h.update(b"}")
        elif isinstance(o, (list, tuple)):
            h.update(b"[")
            for v in o:
                walk(v)
            h.update(b"]")
        else:
            h.update(repr(o).encode())

    walk(obj)
    return h.hexdigest()[:20]
