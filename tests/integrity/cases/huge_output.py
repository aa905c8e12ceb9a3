# 200 MB of output.
_line = "x" * 2**20
for _ in range(200):
    print(_line)
