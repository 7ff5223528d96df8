"""What cache keys are made of: library versions, fingerprints of code, digests of weights."""
from __future__ import annotations

import ast
import functools
import hashlib
import inspect
import re
import sys
import textwrap
import types
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


def _is_lambda(obj) -> bool:
    return inspect.isfunction(obj) and obj.__name__ == "<lambda>"


def _syntax_tree(obj) -> ast.Module | None:
    """``obj``'s source parsed alone, or None where there is none to parse: a lambda (its source is the
    statement around it, ``register_model(...)(lambda b=base: ...)``, which does not parse alone and
    holds more than the lambda), a function or class defined by ``exec`` or in a notebook (no file),
    a source that does not parse alone. Such code is fingerprinted by what Python compiled instead."""
    if _is_lambda(obj):
        return None
    try:
        return ast.parse(textwrap.dedent(inspect.getsource(obj)))
    except (OSError, TypeError, SyntaxError):
        return None


def code_fingerprint(*objects) -> str:
    """A hash of the code of modules, classes or functions, blind to comments, docstrings and layout:
    a key that holds it changes when the code's behaviour may have, not when its prose does. Functions
    and classes without a source of their own (lambdas, ``exec``) count by their compiled code
    (:func:`_compiled`); a module without a source raises ``OSError`` or ``TypeError``."""
    h = hashlib.sha256()
    for obj in objects:
        h.update(_code_text(obj, _syntax_tree(obj)).encode())
    return h.hexdigest()[:16]


def _code_text(obj, tree: ast.Module | None) -> str:
    if tree is not None:
        return ast.dump(_strip_docstrings(tree), annotate_fields=False, include_attributes=False)
    if inspect.isfunction(obj) or inspect.isclass(obj):
        return _compiled(obj)
    inspect.getsource(obj)  # raises why there is no source (OSError, TypeError)
    raise TypeError(f"the source of {obj!r} does not parse alone")


def _compiled(obj) -> str:
    """The code of a function (or of a class's functions and attributes) as Python compiled it: its
    bytecode, constants and the names it uses, without line numbers or file names. Blind to comments
    and layout like the syntax tree, but not to the Python version (bytecode changes between them)."""
    if inspect.isclass(obj):
        members = []
        for name, value in sorted(vars(obj).items()):
            value = getattr(value, "__func__", value)  # staticmethod, classmethod
            if isinstance(value, property):
                members.append(f"{name}=property({','.join(_compiled(f) for f in (value.fget, value.fset) if f)})")
            elif inspect.isfunction(value):
                members.append(f"{name}={_compiled(value)}")
            elif not (name.startswith("__") and name.endswith("__")):
                members.append(f"{name}={_value_text(value)}")
        return f"class({','.join(map(_qualified, obj.__bases__))}){{{';'.join(members)}}}"
    return _bytecode(obj.__code__, obj.__doc__)


def _bytecode(code: types.CodeType, doc: str | None = None) -> str:
    consts = list(code.co_consts)
    if doc is not None and consts and consts[0] == doc:  # the docstring is prose
        consts = consts[1:]
    text = ",".join(_bytecode(c) if isinstance(c, types.CodeType) else _value_text(c) for c in consts)
    return f"{code.co_code.hex()}/{code.co_names}/{code.co_varnames}/{code.co_freevars}/[{text}]"


def _code_names(code: types.CodeType) -> set[str]:
    """The global, attribute and free names a compiled function uses, nested functions' included."""
    names = set(code.co_names) | set(code.co_freevars)
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            names |= _code_names(c)
    return names


def _qualified(obj) -> str:
    return f"{getattr(obj, '__module__', None) or '?'}.{getattr(obj, '__qualname__', None) or type(obj).__qualname__}"


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def _value_text(value, seen: frozenset = frozenset()) -> str:
    """A text of a value that code holds (a default, a closure's variable, a partial's argument, a
    callable object's attribute) that is the same in every process: plain values by ``repr``,
    tensors by content, code by qualified name (its own fingerprint counts where it is reached),
    other objects by their type and ``repr`` without memory addresses."""
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes)):
        return repr(value)
    if isinstance(value, torch.Tensor):
        return f"tensor:{content_digest(value)}"
    if inspect.ismodule(value):
        return f"module:{value.__name__}"
    if inspect.isroutine(value) or inspect.isclass(value):
        return f"code:{_qualified(value)}"
    if id(value) in seen:
        return "..."
    seen = seen | {id(value)}
    if isinstance(value, functools.partial):
        return f"partial:{_qualified(value.func)}({_value_text((value.args, value.keywords), seen)})"
    if isinstance(value, dict):
        items = sorted((_value_text(k, seen), _value_text(v, seen)) for k, v in value.items())
        return "{" + ",".join(f"{k}:{v}" for k, v in items) + "}"
    if isinstance(value, (set, frozenset)):  # in sorted order: a set's order changes with the hash seed
        return "{" + ",".join(sorted(_value_text(v, seen) for v in value)) + "}"
    if isinstance(value, (list, tuple)):
        return f"{type(value).__name__}[{','.join(_value_text(v, seen) for v in value)}]"
    return f"{_qualified(type(value))}:{_ADDRESS.sub('', repr(value))}"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


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


def _named(obj, tree: ast.Module | None) -> list:
    """The functions and classes that ``obj``'s code names (``helper``, ``blocks.make``), resolved in
    its module's namespace and its closure; decorators are left out (they wrap, not build). Code
    without a syntax tree names what its bytecode names: a module it uses gives its attributes of
    those names (``zoo.build`` gives ``build``), and a class gives its bases and functions."""
    if not (inspect.isfunction(obj) or inspect.isclass(obj)):
        return []
    namespace = dict(vars(sys.modules[obj.__module__])) if obj.__module__ in sys.modules else {}
    if inspect.isfunction(obj):
        namespace.update(obj.__globals__)
        namespace.update(inspect.getclosurevars(obj).nonlocals)
    found = list(obj.__bases__) if inspect.isclass(obj) else []
    if tree is None:
        if inspect.isclass(obj):
            return found + [getattr(v, "__func__", v) for v in vars(obj).values()
                            if inspect.isfunction(getattr(v, "__func__", v))]
        names = sorted(_code_names(obj.__code__))
        for value in (namespace[n] for n in names if n in namespace):
            if inspect.ismodule(value):
                found.extend(getattr(value, n, None) for n in names)
            else:
                found.append(value)
        return found + _held(obj.__defaults__, obj.__kwdefaults__)
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            node.decorator_list = []
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


def _held(*values) -> list:
    """The code in values that code holds (in lists, tuples and dicts too): functions, classes,
    partials and callable objects."""
    out = []
    for value in values:
        if isinstance(value, dict):
            out += _held(*value.values())
        elif isinstance(value, (list, tuple)):
            out += _held(*value)
        elif callable(value):
            out.append(value)
    return out


def _reached(obj) -> bool:
    """Whether code held as a value (a default, a partial's argument, an attribute) counts by its own
    fingerprint: the user's functions and classes, partials, and objects of the user's classes."""
    if isinstance(obj, functools.partial) or _own_code(obj):
        return True
    return callable(obj) and not (inspect.isroutine(obj) or inspect.isclass(obj)) and _own_code(type(obj))


def _bound(fn, tree: ast.Module | None) -> str:
    """What a function's code does not show: the values of its closure's variables (code among them
    counts where it is reached), and of its defaults where its source does not stand for them: a
    lambda's or a function's without a source, and a nested function's (``def build(width=width)``
    in a factory) unless its source spells them out as literals. A module-level function's defaults
    count by their source, as before. Empty for most functions, so their fingerprints stay as they
    were."""
    if not inspect.isfunction(fn):
        return ""
    values = {}
    if (fn.__defaults__ or fn.__kwdefaults__) and (tree is None or "<locals>" in fn.__qualname__):
        node = tree.body[0] if tree is not None and tree.body else None
        spelled = isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and all(
            _literal(d) for d in [*node.args.defaults, *node.args.kw_defaults] if d is not None)
        if not spelled:
            values["defaults"] = (fn.__defaults__, fn.__kwdefaults__)
    cells = {}
    for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or ()):
        try:
            value = cell.cell_contents
        except ValueError:  # not assigned yet
            continue
        if not (inspect.isroutine(value) or inspect.isclass(value) or inspect.ismodule(value)):
            cells[name] = value
    if cells:
        values["closure"] = cells
    return _value_text(values) if values else ""


def _literal(node: ast.AST) -> bool:
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def _describe(obj) -> tuple[str, str, list]:
    """(name, fingerprint, what it reaches) of one piece of code in a closure. A function or class by
    its syntax tree, or its bytecode where it has none (then its name carries the fingerprint, so two
    lambdas of one module stay apart); a ``functools.partial`` by its function and its arguments; a
    callable object (an instance of a class with ``__call__``, a bound method) by its class and its
    attributes."""
    if isinstance(obj, functools.partial):
        state = _digest(_value_text((obj.args, obj.keywords)))
        return (f"functools.partial({_qualified(obj.func)})#{state}", state,
                [x for x in [obj.func, *_held(obj.args, obj.keywords)] if _reached(x)])
    if inspect.ismethod(obj):
        owner = obj.__self__
        state = _digest(_value_text(vars(owner) if hasattr(owner, "__dict__") else {}))
        return f"{_qualified(obj.__func__)}@{state}", state, [x for x in (obj.__func__, type(owner)) if _reached(x)]
    if not (inspect.isfunction(obj) or inspect.isclass(obj) or inspect.ismodule(obj) or inspect.isbuiltin(obj)):
        state = _digest(_value_text(vars(obj) if hasattr(obj, "__dict__") else {}))
        held = _held(vars(obj)) if hasattr(obj, "__dict__") else []
        return f"{_qualified(type(obj))}()#{state}", state, [x for x in [type(obj), *held] if _reached(x)]
    name, tree = _qualified(obj), _syntax_tree(obj)
    try:
        fingerprint = _digest(_code_text(obj, tree)) if tree is not None else code_fingerprint(obj)
    except (OSError, TypeError):  # no source and no bytecode: its name alone
        return name, "?", []
    if tree is None:
        name = f"{name}#{fingerprint}"
    bound = _bound(obj, tree)
    if bound:
        fingerprint = f"{fingerprint}+{_digest(bound)}"
    # code named in a source counts when it is the user's (as it always has); code a compiled
    # function names or holds, also when it is a partial or a callable object of the user's
    return name, fingerprint, [x for x in _named(obj, tree) if (_own_code if tree is not None else _reached)(x)]


def closure_fingerprint(obj) -> str:
    """:func:`code_fingerprint` of ``obj`` and of every function and class its code reaches by name
    (a builder's helpers, a model's blocks, in its module or another), so that editing a helper
    changes the key of what the builder builds. ``obj`` may also be a lambda, a ``functools.partial``
    or a callable object (see :func:`_describe`). Library code counts by version, not here; code whose
    source and bytecode cannot be read counts by its qualified name."""
    try:
        hash(obj)
    except TypeError:  # an unhashable callable object: not cached
        return _closure_fingerprint(obj)
    return _cached_closure_fingerprint(obj)


def _closure_fingerprint(obj) -> str:
    reached: dict[str, str] = {}
    todo, seen = [obj], {}
    while todo:
        item = todo.pop()
        if id(item) in seen:  # reached before (held here, so that its id is not reused)
            continue
        seen[id(item)] = item
        name, fingerprint, named = _describe(item)
        if name in reached:
            continue
        reached[name] = fingerprint
        todo.extend(named)
    h = hashlib.sha256()
    for name in sorted(reached):
        h.update(f"{name}:{reached[name]};".encode())
    return h.hexdigest()[:16]


# once per object and process: the code that runs is the code imported
_cached_closure_fingerprint = functools.lru_cache(maxsize=None)(_closure_fingerprint)


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
