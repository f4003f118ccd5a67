"""Import graph of srzoo: modules, cycles (strongly connected groups) and function-level
srzoo imports outside the CLI. Usage: python tools/import_graph.py [REPO_ROOT] (default: .).
The same checks run in tests/test_layers.py; this prints the numbers, e.g. for an old commit."""
import sys, grimp, ast, pathlib
sys.setrecursionlimit(10000)
root = sys.argv[1] if len(sys.argv) > 1 else "."; sys.path.insert(0, root)
g = grimp.build_graph("srzoo", cache_dir=None)
mods = sorted(g.modules)
# SCC
index, low, st, on, comps, c = {}, {}, [], set(), [], [0]
def visit(v):
    index[v] = low[v] = c[0]; c[0] += 1; st.append(v); on.add(v)
    for w in g.find_modules_directly_imported_by(v):
        if w not in index: visit(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = st.pop(); on.discard(w); comp.append(w)
            if w == v: break
        if len(comp) > 1: comps.append(comp)
for m in mods:
    if m not in index: visit(m)
fl = 0
for p in pathlib.Path(root, "srzoo").rglob("*.py"):
    t = ast.parse(p.read_text())
    for fn in ast.walk(t):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for s in ast.walk(fn):
                if isinstance(s, ast.ImportFrom) and (s.level or (s.module or "").startswith("srzoo")) and "/cli/" not in str(p):
                    fl += 1
print(f"{root}: {len(mods)} modules, {len(comps)} strongly connected groups (cycles) covering {sum(map(len, comps))} modules; function-level srzoo imports outside cli: {fl}")
for comp in comps: print("  ", sorted(comp)[:12], "..." if len(comp) > 12 else "")
