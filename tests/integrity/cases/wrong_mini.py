# ruff: noqa: F821  (math: imported by the mini assignment's setup cell)
# The mini assignment, runnable but wrong.

# %% part_a_area
def circle_area(radius):
    return 2 * math.pi * radius


# %% part_b_mean
def mean(values):
    return sum(values)
