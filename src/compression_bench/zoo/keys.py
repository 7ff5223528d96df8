"""What cache keys are made of: library versions, fingerprints of code, digests of weights."""
from __future__ import annotations

import ast
import functools
import hashlib
import inspect
import sys
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


#: top-level packages whose code a key covers by their version (package_versions), not their source
VERSIONED_PACKAGES = frozenset({"torch", "torchvision", "torchao", "torch_pruning", "numpy", "scipy", "sklearn",
                                "onnx", "onnxruntime", "onnxscript"})


def _own_code(obj) -> bool:
    """Whether ``obj`` is a function or class whose code no library version stands for (the user's
    own or a third party's that no key lists); the standard library counts as versioned by Python."""
    if not (inspect.isfunction(obj) or inspect.isclass(obj)):
        return False
    root = (getattr(obj, "__module__", None) or "builtins").split(".")[0]
    return root not in VERSIONED_PACKAGES and root not in sys.stdlib_module_names


def _named(obj) -> list:
    """The functions and classes that ``obj``'s code names (``helper``, ``blocks.make``), resolved in
    its module's namespace and its closure; decorators are left out (they wrap, not build)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(obj)))
    except (OSError, TypeError, SyntaxError):
        return []
    namespace = dict(vars(sys.modules[obj.__module__])) if obj.__module__ in sys.modules else {}
    if inspect.isfunction(obj):
        namespace.update(obj.__globals__)
        namespace.update(inspect.getclosurevars(obj).nonlocals)
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            node.decorator_list = []
    found = list(obj.__bases__) if inspect.isclass(obj) else []
    for node in ast.walk(tree):
        chain = []
        while isinstance(node, ast.Attribute):
            chain.insert(0, node.attr)
            node = node.value
        if not isinstance(node, ast.Name) or node.id not in namespace:
            continue
        value = namespace[node.id]
        for attr in chain:
            if not (inspect.ismodule(value) or inspect.isclass(value)):
                break
            value = getattr(value, attr, None)
        found.append(value)
    return found


@functools.lru_cache(maxsize=None)  # once per object and process: the code that runs is the code imported
def closure_fingerprint(obj) -> str:
    """:func:`code_fingerprint` of ``obj`` and of every function and class its code reaches by name
    (a builder's helpers, a model's blocks, in its module or another), so that editing a helper
    changes the key of what the builder builds. Library code counts by version, not here; code whose
    source cannot be read counts by its qualified name."""
    reached: dict[str, object] = {}
    todo = [obj]
    while todo:
        item = todo.pop()
        name = f"{getattr(item, '__module__', '?')}.{getattr(item, '__qualname__', repr(item))}"
        if name in reached:
            continue
        reached[name] = item
        todo.extend(x for x in _named(item) if _own_code(x))
    h = hashlib.sha256()
    for name in sorted(reached):
        try:
            h.update(f"{name}:{code_fingerprint(reached[name])};".encode())
        except (OSError, TypeError):
            h.update(f"{name}:?;".encode())
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
