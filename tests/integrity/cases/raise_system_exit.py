# ruff: noqa: F821  (checks: the kernel's)
# Every check raises SystemExit (and the graded function too, see hostile_cases.py).
for _name in [n for n in dir(checks) if n.startswith("check_")]:
    setattr(checks, _name, lambda *a, **k: (_ for _ in ()).throw(SystemExit))
