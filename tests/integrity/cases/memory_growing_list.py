chunks = []
while True:
    chunks.append(b"x" * 2**26)
