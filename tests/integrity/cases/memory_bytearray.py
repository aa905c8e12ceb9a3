x = bytearray(60 * 2**30)
