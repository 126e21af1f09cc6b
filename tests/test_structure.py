"""The package's shape: no import circle among gan_jax's modules, thin entry points."""

import ast
import pathlib

from tests import helpers

PACKAGE = pathlib.Path(helpers.REPO) / 'gan_jax'


def _module_name(path, package):
    parts = path.relative_to(package.parent).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def import_graph(package=PACKAGE):
    """{module: set of gan_jax modules it imports}, imports inside functions included.

    ``from a import b`` counts as an import of module ``a.b`` when that module
    exists, else of ``a``.
    """
    modules = {_module_name(p, package): p for p in package.rglob('*.py')}
    graph = {}
    for name, path in modules.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [
                    f'{node.module}.{alias.name}'
                    if f'{node.module}.{alias.name}' in modules
                    else node.module
                    for alias in node.names
                ]
            else:
                continue
            edges |= {t for t in targets if t in modules and t != name}
        graph[name] = edges
    return graph


def find_cycle(graph):
    """One import circle as a list of modules (first == last), or None."""
    visiting, done = [], set()

    def visit(node):
        if node in visiting:
            return visiting[visiting.index(node) :] + [node]
        if node in done:
            return None
        visiting.append(node)
        for nxt in sorted(graph[node]):
            cycle = visit(nxt)
            if cycle:
                return cycle
        visiting.pop()
        done.add(node)
        return None

    for node in sorted(graph):
        cycle = visit(node)
        if cycle:
            return cycle
    return None


def test_find_cycle_finds_a_planted_circle():
    graph = {'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': set()}
    assert find_cycle(graph) == ['a', 'b', 'c', 'a']
    assert find_cycle({'a': {'b'}, 'b': set()}) is None


def test_import_graph_reads_lazy_imports(tmp_path):
    package = tmp_path / 'gan_jax'
    package.mkdir()
    (package / '__init__.py').write_text('')
    (package / 'a.py').write_text('def f():\n    from gan_jax import b\n')
    (package / 'b.py').write_text('from gan_jax.a import f\n')
    graph = import_graph(package)
    assert graph['gan_jax.a'] == {'gan_jax.b'} and graph['gan_jax.b'] == {'gan_jax.a'}
    assert find_cycle(graph) == ['gan_jax.a', 'gan_jax.b', 'gan_jax.a']


def test_gan_jax_has_no_import_circle():
    graph = import_graph()
    assert 'gan_jax.train' in graph and graph['gan_jax.train']  # The graph was read.
    assert find_cycle(graph) is None, f'import circle: {" -> ".join(find_cycle(graph))}'
