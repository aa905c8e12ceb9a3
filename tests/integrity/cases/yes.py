class Yes:
    """An object that equals, exceeds and undercuts everything, and answers any call with itself."""

    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    __lt__ = __le__ = __gt__ = __ge__ = __eq__

    def __bool__(self):
        return True

    def __hash__(self):
        return 0

    def __iter__(self):
        return iter((Yes(), Yes()))

    def __getattr__(self, name):
        return lambda *a, **k: Yes()

    def __call__(self, *a, **k):
        return Yes()

    def __add__(self, other):
        return Yes()

    __radd__ = __mul__ = __rmul__ = __sub__ = __rsub__ = __truediv__ = __add__

    def __float__(self):
        return 0.0

    def __int__(self):
        return 0

    def __index__(self):
        return 0

    def __format__(self, spec):
        return "ok"
