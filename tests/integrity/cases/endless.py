# Sleeps instead of spinning: the grader stops it the same way (the cell and notebook time
# limits), and it leaves the CPU to the submissions graded beside it.
import time

while True:
    time.sleep(0.1)
