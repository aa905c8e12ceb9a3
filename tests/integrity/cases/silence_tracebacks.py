# ruff: noqa: F821  (get_ipython: the kernel's)
_shell = get_ipython()
_shell.showtraceback = lambda *a, **k: None
_shell.set_custom_exc((BaseException,), lambda *a, **k: [])
